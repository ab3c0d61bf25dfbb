"""The training data a run holds: caches at the training size, relight normals checked, steps per epoch."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from topoloc.data.cache import as_cache
from topoloc.data import cache as cache_module
from topoloc.engine.inputs import caches_device, relight_normals, steps_per_epoch, training_caches


def _config(**changes):
    """The `TrainConfig` fields `training_caches` and `relight_normals` read."""
    values = dict(cache_device="cpu", cache_file=None, image_size=(8, 12), num_workers=0, progress=False, val_every=1)
    values.update(changes)
    return SimpleNamespace(**values)


@pytest.mark.parametrize(("n_images", "world_size", "local_batch", "drop_last", "expected"), [
    (10, 1, 4, True, 2),   # 4 + 4, the last 2 dropped
    (10, 1, 4, False, 3),  # 4 + 4 + 2
    (10, 3, 3, True, 1),   # shards of ceil(10 / 3) = 4 images: one full batch of 3
    (10, 3, 3, False, 2),  # 3 + 1
    (8, 2, 4, True, 1),    # shards of 4: exactly one batch
])
def test_steps_per_epoch_by_hand(n_images, world_size, local_batch, drop_last, expected):
    assert steps_per_epoch(n_images, world_size, local_batch, drop_last) == expected


def test_no_full_batch_with_drop_last_is_refused():
    with pytest.raises(ValueError, match="10 training images give no full batch of 8 per process"):
        steps_per_epoch(10, 2, 8, drop_last=True)  # shards of 5 images
    assert steps_per_epoch(10, 2, 8, drop_last=False) == 1


def test_the_caches_are_at_the_training_size(pose_images, tmp_path):
    cache = as_cache(pose_images(n=4, size_hw=(16, 16)), (16, 16))
    train_cache, val_cache = training_caches(_config(), cache, pose_images(n=3, size_hw=(16, 16)),
                                             torch.device("cpu"), tmp_path, is_main=True)
    assert train_cache.images.shape == (4, 3, 8, 12) and val_cache.images.shape == (3, 3, 8, 12)


def test_cache_device_cuda_means_the_training_device(pose_images, tmp_path):
    train_cache, _ = training_caches(_config(cache_device="cuda"), pose_images(n=2, size_hw=(8, 12)), None,
                                     torch.device("cpu"), tmp_path, is_main=True)
    assert train_cache.images.device.type == "cpu"


def test_a_cpu_run_keeps_its_caches_in_host_memory_with_cache_device_auto(pose_images, tmp_path, monkeypatch):
    # "auto" had been passed on to the cache, which picks GPU memory wherever CUDA is present: a CPU run on a GPU
    # machine then copied each batch back to the host asynchronously and read it before the copy had ended
    asked = []
    resolve = cache_module._resolve_cache_device
    monkeypatch.setattr(cache_module, "_resolve_cache_device", lambda device, nbytes: asked.append(str(device))
                        or resolve(device, nbytes))
    training_caches(_config(cache_device="auto"), pose_images(n=2, size_hw=(8, 12)), pose_images(n=2, size_hw=(8, 12)),
                    torch.device("cpu"), tmp_path, is_main=True)
    assert asked == ["cpu", "cpu"]


def test_where_the_caches_of_a_gpu_run_live():
    gpu = torch.device("cuda", 1)
    assert caches_device("auto", gpu) == "auto"  # GPU memory when the cache fits: the cache's own rule
    assert caches_device("cuda", gpu) == gpu
    assert caches_device("cpu", gpu) == "cpu"
    assert all(caches_device(setting, torch.device("cpu")) == "cpu" for setting in ("auto", "cpu", "cuda"))


def test_a_run_that_never_validates_does_not_decode_its_validation_set(pose_images, tmp_path):
    # val_every=0 (the demo's runs) had decoded every validation image for nothing
    val = pose_images(n=3, size_hw=(8, 12))
    _, val_cache = training_caches(_config(val_every=0), pose_images(n=2, size_hw=(8, 12)), val,
                                   torch.device("cpu"), tmp_path, is_main=True)
    assert val_cache is None
    _, val_cache = training_caches(_config(val_every=2), pose_images(n=2, size_hw=(8, 12)), val,
                                   torch.device("cpu"), tmp_path, is_main=True)
    assert len(val_cache) == 3


def test_only_the_main_process_writes_the_cache_file_under_the_run_folder(pose_images, tmp_path):
    config = _config(cache_file="train.cache")
    training_caches(config, pose_images(n=2, size_hw=(8, 12)), None, torch.device("cpu"), tmp_path, is_main=False)
    assert list(tmp_path.iterdir()) == []
    training_caches(config, pose_images(n=2, size_hw=(8, 12)), None, torch.device("cpu"), tmp_path, is_main=True)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["train.cache"]


def test_empty_training_and_validation_sets_are_refused_by_name(pose_images, tmp_path):
    with pytest.raises(ValueError, match="^train_set: the dataset list is empty"):
        training_caches(_config(), [], None, torch.device("cpu"), tmp_path, is_main=True)
    with pytest.raises(ValueError, match="^validation set: "):
        training_caches(_config(), pose_images(n=2, size_hw=(8, 12)), [], torch.device("cpu"), tmp_path, is_main=True)


def test_relight_normals_must_be_int8_at_the_training_height_and_width(pose_images):
    cache = as_cache(pose_images(n=2, size_hw=(8, 12)), (8, 12))
    normals = torch.zeros(2, 3, 8, 12, dtype=torch.int8)
    assert relight_normals(_config(), cache, normals, cache, torch.device("cpu")) is not None
    with pytest.raises(ValueError, match=r"`normals` must be int8 \(2, 3, 8, 12\)"):
        relight_normals(_config(), cache, normals.float(), cache, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"got torch.int8 \(2, 3, 12, 8\)"):
        relight_normals(_config(), cache, normals.transpose(2, 3), cache, torch.device("cpu"))
    with pytest.raises(TypeError, match="pass `normals`"):
        relight_normals(_config(), cache, None, cache, torch.device("cpu"))


def test_relight_normals_are_read_from_the_renders_at_the_training_height_and_width(tmp_path, lhs_flight):
    from topoloc.data import TopoFlight

    lhs_flight(tmp_path, n=2, size_hw=(32, 48))
    flight = TopoFlight(tmp_path, "comballaz-LHS", frame="comballaz")
    for render in flight.render_paths:  # a depth map per render: every pixel 100 m along the optical axis
        np.save(render.with_name(render.name.replace("_img.png", "_depth.npy")), np.full((32, 48), 100.0, np.float32))
    cache = as_cache(flight, (8, 12))
    normals = relight_normals(_config(), flight, None, cache, torch.device("cpu"))
    assert normals.dtype == torch.int8 and normals.shape == (2, 3, 8, 12)
