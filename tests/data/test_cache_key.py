"""A saved `ImageCache` is reused only for the images it was decoded from."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.data import TopoFlight
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
