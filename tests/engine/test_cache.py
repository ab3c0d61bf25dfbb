"""ImageCache: decode once, resize like PIL, keep names and poses, save / load, name bad files."""

from __future__ import annotations

import argparse
import errno
import logging
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.data import ImageCache
from topoloc.data.cache import UnreadableCacheError, resize_uint8


def test_resize_matches_pil_antialiased_bilinear():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ours = resize_uint8(torch.from_numpy(image).permute(2, 0, 1), (20, 30)).permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(image).resize((30, 20), Image.BILINEAR))
    diff = np.abs(ours.astype(int) - pil.astype(int))
    assert diff.max() <= 1, diff.max()


def test_resize_keeps_constant_images_and_same_size():
    image = torch.full((3, 30, 40), 77, dtype=torch.uint8)
    assert torch.equal(resize_uint8(image, (7, 9)), torch.full((3, 7, 9), 77, dtype=torch.uint8))
    assert resize_uint8(image, (30, 40)) is image


def test_from_dataset_holds_every_sample_in_order(pose_images):
    ds = pose_images(n=10, size_hw=(32, 32))
    cache = ImageCache.from_dataset(ds, (32, 32), batch_size=3)
    assert len(cache) == 10 and cache.image_size == (32, 32) and cache.images.dtype == torch.uint8
    assert torch.equal(cache.images, ds.images)  # same size: no resampling, bit-exact
    assert torch.equal(cache.c2w, ds.c2w)
    assert cache.names == [f"img_{i:03d}" for i in range(10)]
    assert cache.domains == ["synthetic"] * 10 and cache.flights == ["tiny"] * 10
    assert cache.nbytes == 10 * 3 * 32 * 32
    sample = cache[4]
    assert torch.equal(sample["image"], ds.images[4]) and sample["name"] == "img_004"


def test_batch_gathers_by_index(pose_images):
    ds = pose_images(n=8, size_hw=(16, 16))
    cache = ImageCache.from_dataset(ds, (16, 16))
    idx = torch.tensor([5, 0, 5, 7])
    images, c2w = cache.batch(idx, "cpu")
    assert torch.equal(images, ds.images[[5, 0, 5, 7]])
    assert torch.equal(c2w, ds.c2w[[5, 0, 5, 7]])


def test_decode_with_workers_matches_in_process(pose_images):
    ds = pose_images(n=9, size_hw=(40, 48))
    a = ImageCache.from_dataset(ds, (20, 24), num_workers=0)
    b = ImageCache.from_dataset(ds, (20, 24), num_workers=2, batch_size=2)
    assert torch.equal(a.images, b.images) and a.names == b.names


def test_an_unwritable_cache_file_is_named(tmp_path, pose_images):
    cache = ImageCache.from_dataset(pose_images(n=2, size_hw=(16, 16)), (8, 8))
    # was torch's "[enforce fail at inline_container.cc:...] . open file failed", not naming the file
    with pytest.raises(OSError, match=r"/proc/topoloc-cache.pt: could not write the image cache"):
        cache.save("/proc/topoloc-cache.pt")  # /proc takes no new files, root or not
    with pytest.raises(IsADirectoryError, match=r"the image cache file is a folder"):
        cache.save(tmp_path)
    assert not list(tmp_path.iterdir())  # no temporary left behind


def test_a_bare_tensor_of_images_is_refused_saying_what_to_pass():
    from topoloc.data.cache import as_cache

    # was "ImageCache: could not read sample 0 of Tensor: IndexError"
    with pytest.raises(TypeError, match=r"got a tensor: images without poses go in ImageCache\(images, c2w\)"):
        as_cache(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), (8, 8))


def test_numpy_images_and_text_for_a_dataset_are_named_before_anything_is_written(tiny_config, pose_images,
                                                                                  tmp_path):
    from topoloc.data.cache import as_cache
    from topoloc.data.normalize import PoseNormalizer
    from topoloc.engine import evaluate, predict, train
    from topoloc.models import create_model

    # numpy images and a folder path have len and indexing: they were read as datasets until their first sample
    # failed, "ImageCache: could not read sample 0 of ndarray: IndexError: only integers, slices ..."
    ds = pose_images(n=4, size_hw=(8, 8))
    images = ds.images.numpy()  # uint8 (4, 3, 8, 8)
    array = r"got a numpy array \(as a tensor: torch.from_numpy\(images\)\): images without poses go in ImageCache"
    with pytest.raises(TypeError, match=rf"^predict: data: expected an ImageCache .*, {array}"):
        as_cache(images, (8, 8), name="predict: data")
    with pytest.raises(TypeError, match=r"^predict: data: a list of image arrays is not a dataset"):
        as_cache(list(images), (8, 8), name="predict: data")
    with pytest.raises(TypeError, match=r"^predict: data: expected an ImageCache .*, got str 'data/comballaz-LHS': "
                                        r"open a folder as a dataset first"):
        as_cache("data/comballaz-LHS", (8, 8), name="predict: data")
    run = tmp_path / "run"
    with pytest.raises(TypeError, match=rf"^train_set: expected an ImageCache .*, {array}"):
        train(tiny_config(out_dir=str(run), epochs=1), images)
    assert not run.exists()
    model = create_model("atloc_resnet18", backbone="test_resnet", feat_dim=16)
    normalizer = PoseNormalizer.fit(ds.poses())
    with pytest.raises(TypeError, match=r"^datasets\[0\]: expected a dataset .* got ndarray$"):
        evaluate(model, normalizer, images, frame="comballaz", retrieval=False)
    # the advice given works: the same images and poses as a cache give the dataset's predictions
    cache = ImageCache(torch.from_numpy(images), ds.c2w)
    assert torch.equal(predict(model, cache, normalizer, image_size=(8, 8)), predict(model, ds, normalizer,
                                                                                     image_size=(8, 8)))


def test_save_load_and_reuse(tmp_path, pose_images):
    ds = pose_images(n=6, size_hw=(16, 16))
    path = tmp_path / "cache.pt"
    cache = ImageCache.from_dataset(ds, (8, 8), path=path)
    assert path.is_file()
    loaded = ImageCache.load(path)
    assert torch.equal(loaded.images, cache.images) and loaded.names == cache.names
    # Reused when size, count and poses match: the dataset is not read again.
    class Exploding(type(ds)):
        def __getitem__(self, i):
            raise AssertionError("the dataset was decoded again")
    again = ImageCache.from_dataset(Exploding(n=6, size_hw=(16, 16)), (8, 8), path=path)
    assert torch.equal(again.images, cache.images)
    # Other poses: decoded again.
    other = pose_images(n=6, size_hw=(16, 16), seed=5)
    rebuilt = ImageCache.from_dataset(other, (8, 8), path=path)
    assert torch.equal(rebuilt.c2w, other.c2w)


def test_bad_arguments_are_named(pose_images, tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        ImageCache.from_dataset(pose_images(n=2), (0, 8))
    with pytest.raises(ValueError, match="images"):
        ImageCache(torch.zeros(2, 3, 4, 4), torch.eye(4).repeat(2, 1, 1))
    with pytest.raises(ValueError, match="c2w"):
        ImageCache(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.eye(4).repeat(3, 1, 1))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ImageCache.load(tmp_path / "nope.pt")
    (tmp_path / "other.pt").write_bytes(b"")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an ImageCache"):
        ImageCache.load(tmp_path / "other.pt")


def test_a_truncated_cache_file_is_decoded_again_and_another_file_is_left_alone(tmp_path, pose_images, caplog):
    ds = pose_images(n=6, size_hw=(16, 16))
    path = tmp_path / "cache.pt"
    cache = ImageCache.from_dataset(ds, (8, 8), path=path)
    path.write_bytes(path.read_bytes()[:100])  # a run killed while the file was copied
    with pytest.raises(ValueError, match=f"ImageCache.load: '{path}' could not be read"):
        ImageCache.load(path)
    with caplog.at_level("WARNING"):
        again = ImageCache.from_dataset(ds, (8, 8), path=path)
    assert torch.equal(again.images, cache.images) and "decoding again" in caplog.text
    assert torch.equal(ImageCache.load(path).images, cache.images)  # rewritten
    torch.save({"model_state": {}}, tmp_path / "last.pt")  # a checkpoint named as the cache by mistake
    with pytest.raises(ValueError, match="not an ImageCache"):
        ImageCache.from_dataset(ds, (8, 8), path=tmp_path / "last.pt")
    assert torch.load(tmp_path / "last.pt") == {"model_state": {}}


@pytest.mark.parametrize("content", [{"args": argparse.Namespace(lr=1e-4)}, {"best_loss": np.float64(0.5)},
                                     torch.nn.Linear(2, 2)])
def test_a_torch_file_of_python_objects_is_refused_not_overwritten(tmp_path, pose_images, content):
    # torch's weights-only loading refuses such a file; it was taken for a corrupt cache, decoded again and
    # overwritten: a checkpoint passed as the cache path was lost
    path = tmp_path / "checkpoint.pt"
    torch.save(content, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"^ImageCache.load: '{path}' is not an ImageCache file "
                                         r"\(topoloc.ImageCache/1\): it holds Python objects beyond tensors") as err:
        ImageCache.from_dataset(pose_images(n=2, size_hw=(8, 8)), (8, 8), path=path)
    assert not isinstance(err.value, UnreadableCacheError) and "\x1b" not in str(err.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("num_workers", [0, 1])
def test_unreadable_image_is_named(tmp_path, lhs_flight, num_workers):
    from topoloc.data import TopoFlight

    folder = lhs_flight(tmp_path, n=5)
    bad = folder / "comballaz-LHS_00003_img.png"
    bad.write_bytes(b"this is not a png")
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    with pytest.raises(ValueError, match="comballaz-LHS_00003_img.png") as info:  # the CLI: one line, exit 2
        ImageCache.from_dataset(ds, (16, 16), num_workers=num_workers)
    assert "sample 3" in str(info.value)


def test_topo_flight_decodes_rgb(tmp_path, lhs_flight):
    from topoloc.data import TopoFlight

    folder = lhs_flight(tmp_path, n=4, size_hw=(24, 32))
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    cache = ImageCache.from_dataset(ds, (24, 32))
    png = np.asarray(Image.open(folder / "comballaz-LHS_00002_img.png"))[..., :3]
    assert np.array_equal(cache.images[2].permute(1, 2, 0).numpy(), png)
    assert np.allclose(cache.poses(), ds.poses())


def test_a_list_of_image_tensors_is_refused_saying_what_to_pass(pose_images):
    from topoloc.data.cache import as_cache

    # was "ImageCache: could not read sample 0 of list: IndexError: too many indices for tensor of dimension 3"
    for data in ([torch.zeros(3, 32, 48, dtype=torch.uint8)], (torch.zeros(3, 8, 8, dtype=torch.uint8),) * 2):
        with pytest.raises(TypeError, match=r"^predict: data: a list of image tensors is not a dataset; use "
                                            r"ImageCache\(images, c2w\), or topoloc.localise for photos without "
                                            r"poses$"):
            as_cache(data, (32, 48), name="predict: data")
    ds = pose_images(n=3, size_hw=(8, 8))
    samples = [ds[i] for i in range(3)]  # a list of sample dicts is a dataset
    assert torch.equal(as_cache(samples).images, ds.images)


def test_numpy_arrays_for_a_cache_are_named_as_such():
    # was "`c2w` must be a tensor (4, 4, 4), got (4, 4, 4)": right shape, wrong type, not said
    with pytest.raises(ValueError, match=r"^ImageCache: `c2w` must be a tensor \(4, 4, 4\), got a numpy.ndarray; "
                                         r"pass torch.as_tensor\(c2w\)$"):
        ImageCache(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), np.tile(np.eye(4), (4, 1, 1)))
    with pytest.raises(ValueError, match=r"^ImageCache: `images` must be a uint8 tensor \(N, 3, H, W\), got a "
                                         r"numpy.ndarray; pass torch.as_tensor\(images\)$"):
        ImageCache(np.zeros((4, 3, 8, 8), np.uint8), torch.eye(4).repeat(4, 1, 1))


# ----------------------------------------------------------------- pinned by mutation testing
def _samples(n: int = 3, size_hw: tuple[int, int] = (8, 8), **keys) -> list[dict]:
    """A list of sample dicts (a dataset without poses() or image files): image i is filled with 10 * i."""
    return [{"image": torch.full((3, *size_hw), 10 * i, dtype=torch.uint8), "c2w": torch.eye(4, dtype=torch.float64),
             **keys} for i in range(n)]


@pytest.mark.parametrize("image, got", [(torch.rand(3, 8, 8), "torch.float32 (3, 8, 8)"),
                                        (torch.zeros(4, 8, 8, dtype=torch.uint8), "torch.uint8 (4, 8, 8)"),
                                        (torch.zeros(1, 8, 8, dtype=torch.uint8), "torch.uint8 (1, 8, 8)")])
def test_a_sample_image_not_uint8_rgb_is_refused_naming_the_sample(image, got):
    # a float image in [0, 1] was cast to 0s and 1s, a grey (1, H, W) one broadcast to three channels
    data = _samples(3) + [{"image": image, "c2w": torch.eye(4)}]
    with pytest.raises(ValueError, match=r"^ImageCache: could not read sample 3 of list: ValueError: sample\['image'\] "
                                         rf"must be a uint8 tensor \(3, H, W\), got {re.escape(got)}$"):
        ImageCache.from_dataset(data, (8, 8))


def test_a_sample_pose_not_4x4_is_refused_naming_the_sample():
    data = _samples(2) + [{"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "c2w": torch.eye(4)[:3]}]
    with pytest.raises(ValueError, match=r"^ImageCache: could not read sample 2 of list: ValueError: "
                                         r"sample\['c2w'\] must be \(4, 4\), got \(3, 4\)$"):
        ImageCache.from_dataset(data, (8, 8))


@pytest.mark.parametrize("sample, got", [(7, "int"), ({"img": 1, "pose": 2}, "keys ['img', 'pose']")])
def test_a_sample_that_is_not_a_dict_of_image_and_pose_is_refused_saying_what_a_sample_is(sample, got):
    # `train(cfg, [1, 2, 3])` was a RuntimeError "TypeError: 'int' object is not subscriptable", as if a bug
    data = _samples(2) + [sample]
    with pytest.raises(ValueError, match=r"^ImageCache: could not read sample 2 of list: ValueError: a sample must "
                                         r"be a dict with 'image' \(uint8 \(3, H, W\)\) and 'c2w' \(4, 4\), as "
                                         rf"topoloc's datasets give, got {re.escape(got)}$"):
        ImageCache.from_dataset(data, (8, 8))


def test_samples_without_name_domain_flight_are_named_by_index_with_empty_domains():
    cache = ImageCache.from_dataset(_samples(3), (8, 8))
    assert cache.names == ["0", "1", "2"] and cache.domains == ["", "", ""] and cache.flights == ["", "", ""]
    assert [int(im.max()) for im in cache.images] == [0, 10, 20]


def test_the_dataset_is_read_in_index_order():
    # files read one after the other on disk, and of two bad samples the first is the one named
    read = []

    class Recording(list):
        def __getitem__(self, i):
            read.append(i)
            if i in (3, 7):
                raise OSError(f"bad file {i}")
            return super().__getitem__(i)

    ImageCache.from_dataset(Recording(_samples(3)), (8, 8))
    assert read == [0, 1, 2]
    read.clear()
    with pytest.raises(ValueError, match=r"could not read sample 3 of Recording: OSError: bad file 3$"):
        ImageCache.from_dataset(Recording(_samples(12)), (8, 8), batch_size=16)
    assert read == list(range(12))


def test_the_constructor_names_each_refused_argument():
    images, c2w = torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.eye(4).repeat(2, 1, 1)
    with pytest.raises(ValueError, match=r"^ImageCache: `images` must be a uint8 tensor \(N, 3, H, W\), got "
                                         r"torch.uint8 \(2, 1, 4, 4\)$"):
        ImageCache(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), c2w)
    for name in ("names", "domains", "flights"):
        with pytest.raises(ValueError, match=rf"^ImageCache: `{name}` must have 2 entries, got 3$"):
            ImageCache(images, c2w, **{name: ["a", "b", "c"]})


def test_the_constructor_defaults_and_float64_poses():
    c2w = torch.eye(4, dtype=torch.float32).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.1, 0.2, 0.3])
    cache = ImageCache(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), c2w)
    assert cache.names == ["0", "1", "2"] and cache.domains == ["", "", ""] and cache.flights == ["", "", ""]
    assert cache.c2w.dtype == torch.float64 and cache.poses().dtype == np.float64
    assert np.array_equal(cache.poses()[:, 0, 3], np.float32([0.1, 0.2, 0.3]).astype(np.float64))
    assert cache.source_key is None


def test_a_sample_of_the_cache_keeps_its_domain_flight_and_index():
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([1.0, 2.0, 3.0])
    cache = ImageCache(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), c2w, ["a", "b"], ["real", "synthetic"],
                       ["f1", "f2"])
    sample = cache[1]
    assert (sample["name"], sample["domain"], sample["flight"], sample["index"]) == ("b", "synthetic", "f2", 1)
    assert sample["c2w"][:3, 3].tolist() == [1.0, 2.0, 3.0]


def test_a_dataset_without_poses_or_files_is_reused_saying_edits_are_not_detected(tmp_path, caplog):
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(_samples(3), (8, 8), path=path)
    with caplog.at_level(logging.INFO, logger="topoloc.data"):
        again = ImageCache.from_dataset(_samples(3), (8, 8), path=path)
    assert f"ImageCache: reusing {path}; list lists no image files, so edited images are not detected" in caplog.text
    assert "decoding again" not in caplog.text and len(again) == 3


def test_a_subset_of_the_same_length_but_other_samples_is_decoded_again(tmp_path, caplog):
    # Subset(flight, range(0, 6)) then Subset(flight, range(6, 12)): no files listed, no poses(), the same count;
    # the second got the first's images and poses, and the log said so only at the INFO level
    data = [{"image": torch.full((3, 8, 8), 10 * i, dtype=torch.uint8), "name": f"img_{i:02d}",
             "c2w": torch.eye(4, dtype=torch.float64)}
            for i in range(12)]
    for i, sample in enumerate(data):
        sample["c2w"][0, 3] = float(i)  # 1 m apart along x
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(torch.utils.data.Subset(data, range(0, 6)), (8, 8), path=path)
    with caplog.at_level(logging.INFO, logger="topoloc.data"):
        second = ImageCache.from_dataset(torch.utils.data.Subset(data, range(6, 12)), (8, 8), path=path)
    assert "was built from other images (other samples" in caplog.text
    assert second.names == [f"img_{i:02d}" for i in range(6, 12)]
    assert second.poses()[:, 0, 3].tolist() == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    assert int(second.images[0, 0, 0, 0]) == 60


def test_a_dataset_without_poses_of_another_length_is_decoded_again(tmp_path, caplog):
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(_samples(3), (8, 8), path=path)
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        again = ImageCache.from_dataset(_samples(4), (8, 8), path=path)
    assert f"ImageCache: {path} was built from other images (3 images, now 4); decoding again" in caplog.text
    assert len(again) == 4 and [int(im.max()) for im in again.images] == [0, 10, 20, 30]


def test_poses_in_ecef_metres_a_centimetre_apart_are_other_poses(tmp_path, pose_images):
    # with numpy's default rtol=1e-5 two ECEF positions (~4.3e6 m) 43 m apart would compare equal
    ds = pose_images(n=4, size_hw=(8, 8))
    ds.c2w[:, :3, 3] += torch.tensor([4_346_000.0, 494_000.0, 4_630_000.0], dtype=torch.float64)
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(ds, (8, 8), path=path)
    ds.c2w[2, 0, 3] += 0.01
    again = ImageCache.from_dataset(ds, (8, 8), path=path)
    assert torch.equal(again.c2w, ds.c2w)


def test_poses_of_another_shape_are_other_poses_not_an_error(tmp_path, pose_images, caplog):
    ds = pose_images(n=4, size_hw=(8, 8))
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(ds, (8, 8), path=path)

    class ThreeByFour(type(ds)):
        def poses(self):
            return self.c2w[:, :3].numpy()  # [R | t] rows, as some datasets keep them

    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        again = ImageCache.from_dataset(ThreeByFour(n=4, size_hw=(8, 8)), (8, 8), path=path)
    assert "(other poses); decoding again" in caplog.text and torch.equal(again.c2w, ds.c2w)


def test_mixed_sizes_warn_in_width_x_height_with_the_dataset_as_flight():
    data = _samples(2, (8, 12)) + _samples(1, (12, 8))
    with pytest.warns(UserWarning, match=r"^ImageCache: images of different sizes in one flight, all resized to "
                                         r"12x8 \(other aspect ratios are stretched\): list: 2 of 12x8 \(e\.g\. 0\), "
                                         r"1 of 8x12 \(e\.g\. 2\)$"):
        ImageCache.from_dataset(data, (8, 12))


def test_an_image_size_given_as_width_height_warns_with_the_size_meant_and_other_sizes_do_not():
    # was silent: the renderer's size=(96, 64) is width first, and image_size=(96, 64) (or (360, 240) for renders
    # of 240x360) trained on portrait images stretched from the landscape renders
    data = _samples(3, (64, 96))
    for size, meant in (((96, 64), (64, 96)), ((144, 96), (96, 144))):
        with pytest.warns(UserWarning, match=rf"^ImageCache: image_size \({size[0]}, {size[1]}\) is \(H, W\): the 3 "
                                             r"image\(s\) of 96x64 px \(W x H, e\.g\. 0\) are stretched to "
                                             rf"{size[1]}x{size[0]}, their aspect ratio turned on its side; for their "
                                             rf"aspect ratio give image_size=\({meant[0]}, {meant[1]}\)$"):
            ImageCache.from_dataset(data, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for size in ((64, 96), (32, 48), (64, 64), (64, 80)):  # their aspect, square, or not their aspect turned
            assert ImageCache.from_dataset(data, size).images.shape[-2:] == size


def test_images_upscaled_more_than_twice_warn_with_their_own_size_and_others_do_not():
    # recipes/real_only.yaml's image_size [256, 384] on the CPU demo's 96x64 renders: 4x upscaled, 68 s a step
    data = _samples(3, (16, 24))
    with pytest.warns(UserWarning, match=r"^ImageCache: the 3 images \(the largest 24x16 px, W x H, e\.g\. 0\) are "
                                         r"upscaled 4x to image_size \(64, 96\) \(H, W\): training takes about 16x as "
                                         r"long per image .* give image_size=\(16, 24\) \(a recipe: --override "
                                         r"train\.image_size=\[16,24\]\)$"):
        ImageCache.from_dataset(data, (64, 96))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for size in ((32, 48), (40, 40), (16, 24), (8, 12)):  # 2x, not more than 2x in one direction, same, smaller
            assert ImageCache.from_dataset(data, size).images.shape[-2:] == size


def test_cuda_without_cuda_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^ImageCache: `device` is 'cuda' but CUDA is not available$"):
        ImageCache.from_dataset(_samples(2), (8, 8), device="cuda")


def test_a_failed_write_leaves_the_previous_cache_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(_samples(2), (8, 8), path=path)
    before = path.read_bytes()

    def disk_full(obj, f):
        Path(f).write_bytes(before[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=rf"^{re.escape(str(path))}: could not write the image cache \(\[Errno 28\] "
                                      r"No space left on device\)$"):
        ImageCache(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.eye(4)[None]).save(path)
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == before


def test_as_cache_resizes_a_cache_of_another_size_like_pil_keeping_its_strings():
    from topoloc.data.cache import as_cache

    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    cache = ImageCache(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), c2w, ["a", "b"],
                       ["real", "synthetic"], ["f1", "f2"])
    small = as_cache(cache, (8, 12))
    assert small.image_size == (8, 12)
    for i in range(2):
        pil = np.asarray(Image.fromarray(pixels[i]).resize((12, 8), Image.BILINEAR)).astype(int)
        assert np.abs(small.images[i].permute(1, 2, 0).numpy().astype(int) - pil).max() <= 1
    assert (small.names, small.domains, small.flights) == (["a", "b"], ["real", "synthetic"], ["f1", "f2"])
    assert torch.equal(small.c2w, c2w) and as_cache(cache, (16, 24)) is cache


def test_as_cache_refuses_what_is_not_a_dataset_naming_the_argument():
    from topoloc.data.cache import as_cache

    with pytest.raises(TypeError, match=r"^predict: data: expected an ImageCache or a map-style dataset of sample "
                                        r"dicts, got object$"):
        as_cache(object(), (8, 8), name="predict: data")


def test_as_cache_shows_progress_when_asked(capsys):
    from topoloc.data.cache import as_cache

    as_cache(_samples(3), (8, 8))
    assert "decode" not in capsys.readouterr().err
    as_cache(_samples(3), (8, 8), progress=True)
    assert "decode" in capsys.readouterr().err


@pytest.mark.parametrize("image_size", [None, (8, 8)])
def test_as_cache_names_an_empty_dataset_by_its_argument(image_size):
    from topoloc.data.cache import as_cache

    # was "the dataset list is empty" or "ImageCache.from_dataset: the dataset list is empty", for predict's data too
    with pytest.raises(ValueError, match=r"^predict: data: the dataset list is empty$"):
        as_cache([], image_size, name="predict: data")


def test_a_file_that_is_no_torch_file_is_refused_not_overwritten(tmp_path, pose_images):
    # a plain pickle (or any file torch.save does not write: its files are zip archives) was taken for a
    # corrupt cache, decoded again and overwritten
    path = tmp_path / "cache.pt"
    path.write_bytes(b"\x80\x02garbage")  # pickle protocol 2, then opcode ord("g") == 103 (GET)
    with pytest.raises(ValueError, match=rf"^ImageCache.load: '{re.escape(str(path))}' is not an ImageCache file "
                                         r"\(topoloc.ImageCache/1\): not a torch file at all \(it starts with "
                                         r"b'\\x80\\x02ga'; torch.save writes a zip archive") as err:
        ImageCache.from_dataset(pose_images(n=2, size_hw=(8, 8)), (8, 8), path=path)
    assert not isinstance(err.value, UnreadableCacheError)
    assert path.read_bytes() == b"\x80\x02garbage"


def test_a_corrupt_torch_file_is_named_by_torch_s_reason_in_one_line_without_its_advice(tmp_path, pose_images, caplog):
    # was "(UnpicklingError: Weights only load failed. ... Re-running `torch.load` with `weights_only` set to `False`
    # will likely succeed, but it can result in arbitrary code execution. ...)": advice to unpickle a broken file
    path = tmp_path / "cache.pt"
    torch.save({"a": 1}, path)
    with zipfile.ZipFile(path) as z:
        records = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w") as z:  # torch's archive, its pickle broken
        for name, data in records.items():  # pickle protocol 2, then opcode ord("g") == 103 (GET), refused
            z.writestr(name, b"\x80\x02garbage" if name.endswith("/data.pkl") else data)
    with pytest.raises(UnreadableCacheError, match=rf"^ImageCache.load: '{re.escape(str(path))}' could not be read "
                                                   r"\(UnpicklingError: Unsupported operand 103\)$"):
        ImageCache.load(path)
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        ImageCache.from_dataset(pose_images(n=2, size_hw=(8, 8)), (8, 8), path=path)
    assert "Unsupported operand 103); decoding again" in caplog.text and "weights_only" not in caplog.text
    assert len(ImageCache.load(path)) == 2  # rewritten


def test_from_dataset_refuses_an_empty_dataset_by_its_class():
    # train's training set comes here directly, not through as_cache
    with pytest.raises(ValueError, match=r"^ImageCache.from_dataset: the dataset list is empty$"):
        ImageCache.from_dataset([], (8, 8))
