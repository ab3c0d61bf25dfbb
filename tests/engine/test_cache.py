"""ImageCache: decode once, resize like PIL, keep names and poses, save / load, name bad files."""

from __future__ import annotations

import argparse

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
                                            r"ImageCache\(images, c2w\), or topoloc.localise for photos without poses$"):
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
