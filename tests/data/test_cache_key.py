"""A saved `ImageCache` is reused only for the images it was decoded from."""

from __future__ import annotations

import functools
import logging
import os
import time
import re

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.data import FlightCollection, TopoFlight
from topoloc.data.cache import ImageCache


def test_synthetic_cache_is_not_reused_for_real_images(tmp_path, make_topo_flight, image_domain, caplog):
    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=5, real_size_hw=(16, 24))
    path = tmp_path / "cache.pt"
    synthetic = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="synthetic")
    real = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="real")
    first = ImageCache.from_dataset(synthetic, (8, 12), path=path)
    assert {image_domain(im) for im in first.images} == {"synthetic"}
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        second = ImageCache.from_dataset(real, (8, 12), path=path)
    assert {image_domain(im) for im in second.images} == {"real"}
    assert set(second.domains) == {"real"}
    assert "decoding again" in caplog.text and str(path) in caplog.text


def test_edited_image_on_disk_is_decoded_again(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    before = ImageCache.from_dataset(ds, (8, 12), path=path)
    render = folder / "comballaz-LHS_00002_img.png"
    Image.fromarray(np.full((16, 24, 4), 255, dtype=np.uint8), "RGBA").save(render)
    st = render.stat()
    os.utime(render, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later modification time, whatever the clock
    after = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=path)
    assert int(before.images[2].min()) < 255 and int(after.images[2].min()) == 255
    assert torch.equal(after.images[[0, 1, 3]], before.images[[0, 1, 3]])


def test_a_cache_write_killed_before_its_end_leaves_no_temporary_behind(tmp_path, make_topo_flight):
    # a training killed while it wrote its cache file (the whole decoded cache) left .<name>.<pid>.tmp in the cache's
    # folder for good: only the run folder's own temporaries were removed
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    folder = tmp_path / "caches"
    folder.mkdir()
    killed = folder / ".train_cache.pt.999999999.tmp"  # no process has that id
    killed.write_bytes(b"half a cache")
    others = [folder / ".notes.txt.999999999.tmp", folder / f".train_cache.pt.{os.getppid()}.tmp"]
    for other in others:  # another file's temporary; this file's, being written by a live process (our parent)
        other.write_bytes(b"")
    for _ in range(2):  # decoded and written, then reused
        ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=folder / "train_cache.pt")
        assert not killed.exists() and all(other.exists() for other in others)
        killed.write_bytes(b"half a cache")


def test_unchanged_flight_reuses_the_cache(tmp_path, make_topo_flight, monkeypatch):
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=path)
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    monkeypatch.setattr(TopoFlight, "__getitem__", lambda self, i: pytest.fail("decoded again"))
    again = ImageCache.from_dataset(ds, (8, 12), path=path)
    assert len(again) == 4


def test_mixed_sizes_in_one_flight_warn_with_counts_and_files(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    odd = folder / "comballaz-LHS_00001_img.png"
    Image.fromarray(np.zeros((30, 20, 4), dtype=np.uint8), "RGBA").save(odd)
    with pytest.warns(UserWarning, match=r"3 of 24x16 \(e\.g\. .*comballaz-LHS_00000_img\.png\), "
                                         r"1 of 20x30 \(e\.g\. .*comballaz-LHS_00001_img\.png\)"):
        ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12))


# ----------------------------------------------------------------- pinned by mutation testing
def _reuse_forbidden(monkeypatch):
    monkeypatch.setattr(TopoFlight, "__getitem__", lambda self, i: pytest.fail("decoded again"))


def test_a_cache_file_without_the_record_of_its_files_is_decoded_again(tmp_path, make_topo_flight, caplog):
    # a cache written without source_key (an older file) would otherwise be trusted for any images of these poses
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    path = tmp_path / "cache.pt"
    ImageCache(torch.zeros(4, 3, 8, 12, dtype=torch.uint8), torch.from_numpy(ds.poses())).save(path)
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        cache = ImageCache.from_dataset(ds, (8, 12), path=path)
    assert f"{path} was built from other images (a cache file without the record of its image files)" in caplog.text
    assert all(int(im.max()) > 0 for im in cache.images)


def test_the_record_survives_the_move_to_the_cache_device(tmp_path, make_topo_flight, monkeypatch):
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    cache = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), device="cpu")
    assert re.fullmatch(r"[0-9a-f]{64}", cache.source_key or "")  # a sha256
    assert cache.to("cpu").source_key == cache.source_key
    cache.save(tmp_path / "cache.pt")
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    _reuse_forbidden(monkeypatch)
    assert len(ImageCache.from_dataset(ds, (8, 12), path=tmp_path / "cache.pt")) == 4


def test_another_read_size_is_decoded_again(tmp_path, make_topo_flight, caplog):
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=path)
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", image_size=(4, 6)), (8, 12), path=path)
    assert "(other image files, domain, or edited images); decoding again" in caplog.text


def test_another_transform_is_decoded_again(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    before = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=path)

    def negative(sample):
        return {**sample, "image": 255 - sample["image"]}

    after = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=negative), (8, 12), path=path)
    assert torch.equal(after.images, 255 - before.images)


def _halve(sample, by):
    return {**sample, "image": sample["image"] // by}


def _scaled(factor):
    return lambda sample: {**sample, "image": sample["image"] // factor}


class _Divide:
    """A callable transform without a repr of its own: ``<_Divide object at 0x7f...>``."""

    def __init__(self, by):
        self.by = by

    def __call__(self, sample):
        return {**sample, "image": sample["image"] // self.by}

    def apply(self, sample):
        return self(sample)


class _Gain(torch.nn.Module):
    """A transform with a weight: its repr, ``_Gain()``, is the same whatever the weight."""

    def __init__(self, gain):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain), requires_grad=False)

    def forward(self, sample):
        return {**sample, "image": (sample["image"] * self.gain).to(torch.uint8)}


def _looked_up(table):
    return lambda sample: {**sample, "image": torch.as_tensor(table)[sample["image"].long()]}


def _then(step):
    return lambda sample: step(sample)


_BIG = np.zeros(2048, dtype=np.uint8)  # over 1,000 values: numpy's repr shows the first and last three only
_BIG[:256] = np.arange(256)
_BIG_OTHER = _BIG.copy()
_BIG_OTHER[3:256] //= 2


@pytest.mark.parametrize("first, second", [
    (lambda s: {**s, "image": 255 - s["image"]}, lambda s: {**s, "image": s["image"] // 2}),  # both `<lambda>`
    (_scaled(2), _scaled(4)),  # one function, other values in its closure
    (functools.partial(_halve, by=2), functools.partial(_halve, by=4)),  # one function, other arguments
    (_Divide(2), _Divide(4)),  # one class, other attributes: the key was the class name
    (_Divide(2).apply, _Divide(4).apply),  # one method, other objects: the key was the function's
    (_looked_up(_BIG), _looked_up(_BIG_OTHER)),  # tables alike at both ends: the key was numpy's elided repr
    (_then(_scaled(2)), _then(_scaled(4))),  # closures over other functions: the key was "tuple"
    (_Gain(1.0), _Gain(0.5)),  # one module, other weights: the key was its repr
])
def test_another_transform_of_the_same_name_is_decoded_again(tmp_path, make_topo_flight, first, second):
    # the cache key held a transform's __qualname__ only: any two lambdas were the same transform
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    plain = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (16, 24))
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=first), (16, 24), path=path)
    after = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=second), (16, 24), path=path)
    assert torch.equal(after.images, second({"image": plain.images})["image"])


_GAIN = 1


def _brightened(sample):
    return {**sample, "image": (sample["image"].int() * _GAIN).clamp(0, 255).to(torch.uint8)}


def test_a_transform_reading_another_module_value_is_decoded_again(tmp_path, make_topo_flight, monkeypatch):
    # its code, defaults and closure were the same: the cache of GAIN = 1 was reused for GAIN = 3
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    plain = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (16, 24))
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_brightened), (16, 24), path=path)
    monkeypatch.setitem(globals(), "_GAIN", 3)
    after = ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_brightened), (16, 24), path=path)
    assert torch.equal(after.images, (plain.images.int() * 3).clamp(0, 255).to(torch.uint8))


def test_the_same_transform_made_again_reuses_the_cache(tmp_path, make_topo_flight, monkeypatch):
    # a key that held an address (a closure's repr) would decode again in every new run
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    path = tmp_path / "cache.pt"
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_scaled(2)), (16, 24), path=path)
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=functools.partial(_halve, by=2)), (16, 24),
                            path=tmp_path / "partial.pt")
    ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_Divide(2).apply), (16, 24),
                            path=tmp_path / "method.pt")
    _reuse_forbidden(monkeypatch)
    assert len(ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_scaled(2)), (16, 24),
                                       path=path)) == 4
    assert len(ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=_Divide(2).apply), (16, 24),
                                       path=tmp_path / "method.pt")) == 4  # another object, the same attributes
    assert len(ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS", transform=functools.partial(_halve, by=2)),
                                       (16, 24), path=tmp_path / "partial.pt")) == 4


@pytest.mark.parametrize("collection", [False, True])
def test_the_same_photos_in_another_domain_are_decoded_again(tmp_path, make_topo_flight, collection):
    # "real" and "paired" read the same photo files at the same poses; each sample's domain differs
    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4)
    path = tmp_path / "cache.pt"

    def data(domain):
        ds = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain=domain)
        return FlightCollection([ds]) if collection else ds

    real, paired = data("real"), data("paired")
    assert real.image_paths == paired.image_paths and np.array_equal(real.poses(), paired.poses())
    ImageCache.from_dataset(real, (8, 12), path=path)
    assert ImageCache.from_dataset(paired, (8, 12), path=path).domains == ["paired"] * 4


def _rewrite(render, colour: int, mtime_ns: int) -> None:
    pixels = np.full((16, 24, 4), colour, dtype=np.uint8)
    pixels[..., 3] = 255
    Image.fromarray(pixels, "RGBA").save(render, compress_level=0)  # stored: the byte size depends on H x W only
    os.utime(render, ns=(mtime_ns, mtime_ns))


def _cached_render(tmp_path, make_topo_flight):
    """A flight's render 2 (all 100) decoded into a cache file; and the decode of the flight through that file."""
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
    render = folder / "comballaz-LHS_00002_img.png"
    _rewrite(render, 100, mtime_ns=10**18)

    def decode():
        return ImageCache.from_dataset(TopoFlight(tmp_path, "comballaz-LHS"), (8, 12), path=tmp_path / "cache.pt")

    decode()
    return render, decode


def test_an_edit_of_the_same_byte_size_is_decoded_again(tmp_path, make_topo_flight):
    render, decode = _cached_render(tmp_path, make_topo_flight)
    size = render.stat().st_size
    _rewrite(render, 200, mtime_ns=10**18 + 10**9)
    assert render.stat().st_size == size
    after = decode()
    assert torch.equal(after.images[2], torch.full((3, 8, 12), 200, dtype=torch.uint8))


def test_an_edit_that_kept_its_modification_time_is_decoded_again(tmp_path, make_topo_flight):
    # a copy that keeps times (cp -p, rsync -t, an unzipped archive) of other content
    render, decode = _cached_render(tmp_path, make_topo_flight)
    size = render.stat().st_size
    Image.fromarray(np.full((16, 24, 3), 200, dtype=np.uint8), "RGB").save(render, compress_level=0)
    os.utime(render, ns=(10**18, 10**18))
    assert render.stat().st_size != size and render.stat().st_mtime_ns == 10**18
    after = decode()
    assert torch.equal(after.images[2], torch.full((3, 8, 12), 200, dtype=torch.uint8))


def test_an_edit_of_the_same_byte_size_and_modification_time_is_decoded_again(tmp_path, make_topo_flight):
    # `tar x` or `touch -r` set an edited file's mtime back; its ctime cannot be set back
    render, decode = _cached_render(tmp_path, make_topo_flight)
    before = render.stat()
    time.sleep(0.02)  # a later ctime, on file systems that keep it to the hundredth of a second
    _rewrite(render, 200, mtime_ns=10**18)
    assert (render.stat().st_size, render.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    after = decode()
    assert torch.equal(after.images[2], torch.full((3, 8, 12), 200, dtype=torch.uint8))


def test_an_image_file_removed_after_the_dataset_was_made_is_named(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=5)
    ds = TopoFlight(tmp_path, "comballaz-LHS")
    (folder / "comballaz-LHS_00003_img.png").unlink()
    with pytest.raises(ValueError, match=r"^ImageCache: could not read sample 3 of TopoFlight: FileNotFoundError: "
                                         r".*comballaz-LHS_00003_img\.png: image file not found$"):
        ImageCache.from_dataset(ds, (8, 12), path=tmp_path / "cache.pt")
