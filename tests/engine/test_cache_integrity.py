"""The image cache file against damage that keeps its length, two writers at once, and an unwritable path."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from topoloc.data import ImageCache
from topoloc.data.cache import UnreadableCacheError


def _samples(n: int = 3) -> list[dict]:
    """Sample dicts (no poses(), no image files): image i is filled with 10 * i."""
    return [{"image": torch.full((3, 8, 8), 10 * i, dtype=torch.uint8), "c2w": torch.eye(4, dtype=torch.float64)}
            for i in range(n)]


def test_bytes_changed_in_place_are_found_and_decoded_again(tmp_path, caplog):
    # torch's zip reader checks no CRC: 64 zeroed pixel bytes loaded as they were, with no log line
    path = tmp_path / "cache.pt"
    ref = ImageCache.from_dataset(_samples(), (8, 8), path=path)
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(ref.images.numpy().tobytes()[64:128])  # image 0 is zeros: look inside image 1
    assert at > 0
    raw[at:at + 16] = bytes([255]) * 16
    path.write_bytes(bytes(raw))
    with pytest.raises(UnreadableCacheError, match=r"differ from the digest written with them"):
        ImageCache.load(path)
    with caplog.at_level(logging.WARNING, logger="topoloc.data"):
        again = ImageCache.from_dataset(_samples(), (8, 8), path=path)
    assert "differ from the digest" in caplog.text and "decoding again" in caplog.text
    assert torch.equal(again.images, ref.images) and torch.equal(ImageCache.load(path).images, ref.images)


def test_each_process_writes_its_own_temporary_file(tmp_path, monkeypatch):
    # every writer used "cache.pt.tmp": of two runs saving one cache at once, one failed with "No such file"
    names = []
    real_save = torch.save

    def recording(obj, f, *args, **kwargs):
        names.append(Path(f).name)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording)
    ImageCache.from_dataset(_samples(), (8, 8), path=tmp_path / "cache.pt")
    assert names == [f".cache.pt.{os.getpid()}.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.pt"]


def test_an_unwritable_path_is_refused_before_the_decode(tmp_path):
    # it failed after decoding every image, with torch's "[enforce fail at inline_container.cc:747]" text
    (tmp_path / "file").write_text("x")

    class Counting(list):
        reads = 0

        def __getitem__(self, i):
            Counting.reads += 1
            return super().__getitem__(i)

    with pytest.raises(ValueError, match=rf"^ImageCache.from_dataset: path '{tmp_path / 'file' / 'cache.pt'}': "):
        ImageCache.from_dataset(Counting(_samples()), (8, 8), path=tmp_path / "file" / "cache.pt")
    assert Counting.reads == 0
