"""The benchmark script runs end to end on tiny inputs (speed itself is measured by the script, not here)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("albumentations")
pytest.importorskip("cv2")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_augment.py"


def test_bench_augment_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_augment", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "table.md"
    bench.main(
        ["--device", "cpu", "--batch", "2", "--size", "16", "--iters", "1", "--warmup", "0",
         "--albu-images", "1", "--albu-seconds", "0.01", "--markdown", str(out)]
    )
    text = out.read_text()
    for name in ("RandomClouds", "SimToReal", "RandomFog", "RandomSnow", "ratio"):
        assert name in text
    assert "| RandomHaze |" in capsys.readouterr().out
