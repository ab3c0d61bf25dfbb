"""`topoloc.engine.predict`'s argument checks (its poses are tested through training and evaluation)."""

import pytest

from topoloc.engine.predict import predict


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.0])
def test_batch_size_other_than_a_positive_int_is_refused_by_name(batch_size):
    # 0 made range() fail with "arg 3 must not be zero"; True ran batches of one image.
    with pytest.raises(ValueError, match=rf"predict: `batch_size` must be a positive int, got {batch_size!r}"):
        predict(None, [], None, batch_size=batch_size)


def test_a_checkpoint_path_or_load_models_triple_given_as_the_model_is_named(tiny_config, pose_images, tmp_path):
    # were AttributeError: 'str' (or 'tuple') object has no attribute 'parameters' (adapt_batchnorm: 'modules')
    import numpy as np

    from topoloc.engine import adapt_batchnorm, evaluate, load_model, train
    from topoloc.metrics import pose_errors

    data = pose_images(n=8)
    checkpoint = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), data).final_checkpoint
    triple = load_model(checkpoint)
    model, normalizer, _ = triple
    path_hint = r"got (str|PosixPath|WindowsPath): a checkpoint path is read by model, normalizer, config = " \
                r"topoloc.load_model\(path\)$"
    triple_hint = r"got tuple: load_model returns \(model, normalizer, config\); pass its model and its normalizer$"
    for wrong, hint in ((str(checkpoint), path_hint), (checkpoint, path_hint), (triple, triple_hint)):
        with pytest.raises(TypeError, match=r"^predict: `model` must be a torch module \(a trained AtLoc\), " + hint):
            predict(wrong, data, normalizer)
        with pytest.raises(TypeError, match=r"^evaluate: `model` must be a torch module .*" + hint):
            evaluate(wrong, normalizer, data, frame="comballaz", retrieval=False)
        with pytest.raises(TypeError, match=r"^adapt_batchnorm: `model` must be a torch module .*" + hint):
            adapt_batchnorm(wrong, data)
    with pytest.raises(TypeError, match=r"^evaluate: `retrieval_model` must be a torch module .*" + path_hint):
        evaluate(model, normalizer, data, frame="comballaz", train_set=data, retrieval="model",
                 retrieval_model=str(checkpoint))
    # the model as asked: evaluate's errors are those of its predictions against the poses, by pose_errors
    result = evaluate(model, normalizer, data, frame="comballaz", retrieval=False)
    t_m, r_deg = pose_errors(predict(model, data, normalizer).numpy(), data.poses())
    np.testing.assert_allclose(result.model.translation_m, t_m, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.model.rotation_deg, r_deg, rtol=0, atol=1e-9)


def test_each_layer_keeps_its_own_mode_and_no_image_is_refused_by_name():
    # predict put back model.train(was_training), which set every frozen batch-norm layer (eval inside a model in
    # training) to train; an empty cache ended in "torch.cat(): expected a non-empty list of Tensors"
    import torch
    from torch import nn

    from topoloc.data.cache import ImageCache
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.models import create_model

    model = create_model("atloc_resnet18", feat_dim=8).train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()  # frozen
    modes = {name: m.training for name, m in model.named_modules()}
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    normalizer = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    cache = ImageCache(images, torch.eye(4, dtype=torch.float64).repeat(3, 1, 1))
    assert predict(model, cache, normalizer, image_size=(32, 32)).shape == (3, 4, 4)
    assert {name: m.training for name, m in model.named_modules()} == modes
    empty = ImageCache(images[:0], torch.eye(4, dtype=torch.float64).repeat(0, 1, 1))
    with pytest.raises(ValueError, match=r"^predict: `data` holds no image$"):
        predict(model, empty, normalizer, image_size=(32, 32))
