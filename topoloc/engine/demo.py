"""The one-command demo: render a small Mini-Comballaz, train with and without the sim-to-real
augmentations, evaluate on synthetic and real test flights beside the retrieval baseline, explain
with saliency maps, and write ``report.md``.

Every stage reuses what an interrupted run already finished: the renderer skips images on disk,
training resumes from ``last.pt`` (a finished run returns at once), and the decoded training
images are cached in a file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topoloc.engine.config import TrainConfig

__all__ = ["DemoConfig", "demo_config", "run_demo"]

log = logging.getLogger(__name__)

#: Real TOPO flights whose poses give the test sets (their renders: synthetic; their "-real" photos: real).
TEST_FLIGHTS = ("comballaz-2020-11-06-planned", "comballaz-2021-03-27-winter")
TRAIN_FLIGHT = "comballaz-LHS"


@dataclass
class DemoConfig:
    """Sizes of the demo (see `demo_config` for the presets).

    Args:
        preset: label of the preset (``"smoke"``, ``"cpu"``, ``"gpu"``).
        train_images: renders of the LHS flight (training poses).
        test_images: renders and real photos per test flight.
        render_size: (W, H) of the rendered images, pixels.
        image_size: (H, W) the model trains at.
        model: `topoloc.models` name; model_kwargs: its arguments.
        epochs, batch_size, lr: training.
        augment_strength: strength of ``augment.SimToReal``. Measured on the CPU preset: strength
            1.0 kept the translation loss flat over 20 epochs; in 10 epochs 0.3 gave 325 m / 428 m
            median errors on synthetic / real test images and 0.6 gave 428 m / 365 m (no
            augmentation, 20 epochs: 283 m / 638 m); the demo uses 0.5.
        sq: initial log-weight of the rotation term of `AtLocLoss` (learned). The paper's -3 weighs
            rotation 20x; from random weights in a few hundred steps that leaves the translation
            nearly unlearned (measured on the CPU preset without augmentation: translation L1 0.83 ->
            0.76 in 7 epochs with -3, 0.77 -> 0.55 in 5 epochs with 0), so the demo starts at 0.
        saliency_images: images per domain in the saliency figure.
        saliency_share_images: images per domain for the per-class saliency shares.
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds the render and both trainings.
    """

    preset: str
    train_images: int
    test_images: int
    render_size: tuple[int, int]
    image_size: tuple[int, int]
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-4
    augment_strength: float = 0.5
    sq: float = 0.0
    saliency_images: int = 3
    saliency_share_images: int = 16
    device: str = "cpu"
    seed: int = 0
    test_flights: tuple[str, ...] = TEST_FLIGHTS

    def train_config(self, out_dir: Path, augment: str | None, cache_file: Path) -> TrainConfig:
        return TrainConfig(
            model=self.model, model_kwargs=dict(self.model_kwargs), epochs=self.epochs, batch_size=self.batch_size,
            lr=self.lr, lr_schedule="cosine", sq=self.sq, image_size=self.image_size, augment=augment,
            augment_strength=self.augment_strength,
            device=self.device, val_every=0, seed=self.seed, out_dir=str(out_dir), cache_file=str(cache_file),
            resume=True, tensorboard=False, progress=self.preset != "smoke", cache_device="auto",
        )


def demo_config(smoke: bool = False, device: str = "auto", seed: int = 0) -> DemoConfig:
    """The demo's sizes: ``smoke`` (about a minute on a 2-core CPU), ``cpu`` (under 15 minutes on
    a 2-core CPU) or ``gpu`` (a larger configuration, chosen when CUDA is available).

    Args:
        smoke: the toy-size run (for tests).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        seed: seeds the render and the trainings.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but CUDA is not available")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    dev = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    if smoke:
        return DemoConfig("smoke", train_images=24, test_images=4, render_size=(72, 48), image_size=(48, 72),
                          model="atloc_resnet18", model_kwargs=dict(feat_dim=64), epochs=2, batch_size=8,
                          lr=1e-3, saliency_images=2, saliency_share_images=4, device=dev, seed=seed)
    if dev == "cuda":
        return DemoConfig("gpu", train_images=3000, test_images=120, render_size=(384, 256), image_size=(256, 384),
                          model="atloc_resnet34", epochs=60, batch_size=64, lr=2e-4, saliency_images=4,
                          saliency_share_images=64, device=dev, seed=seed)
    # 2-core CPU: ResNet18 at 64x96 px trains at 80-100 images/s on a quiet machine (SimToReal adds
    # about 15 %); 500 images x 20 epochs x 2 runs take about 4 minutes, 12 on a loaded machine.
    return DemoConfig("cpu", train_images=500, test_images=40, render_size=(96, 64), image_size=(64, 96),
                      model="atloc_resnet18", model_kwargs=dict(feat_dim=256, dropout=0.2), epochs=20,
                      batch_size=16, lr=1e-3, saliency_images=3, saliency_share_images=16, device=dev, seed=seed)


# ---------------------------------------------------------------------------------- stages
def _render(cfg: DemoConfig, data_dir: Path) -> None:
    from topoloc.procedural.writer import render_flights  # noqa: PLC0415

    flights = [f"{TRAIN_FLIGHT}:{cfg.train_images}"] + [f"{f}:{cfg.test_images}" for f in cfg.test_flights]
    render_flights(data_dir, flights, size=cfg.render_size, seed=cfg.seed, device=cfg.device,
                   progress=cfg.preset != "smoke")


def _datasets(cfg: DemoConfig, data_dir: Path):
    from topoloc.data import TopoFlight  # noqa: PLC0415

    train = TopoFlight(data_dir, TRAIN_FLIGHT, domain="synthetic", frame="comballaz")
    tests = []
    for f in cfg.test_flights:
        for domain in ("synthetic", "real"):
            tests.append(TopoFlight(data_dir, f, domain=domain, frame="comballaz"))
    return train, tests


def _saliency_section(cfg: DemoConfig, out: Path, runs: dict[str, tuple[Path, TrainConfig]], test_sets) -> str:
    """Saliency figures and per-class shares of the headline run (see `saliency_report`)."""
    from topoloc.engine.checkpoint import load_model  # noqa: PLC0415
    from topoloc.models import create_model  # noqa: PLC0415
    from topoloc.saliency_figures import saliency_report  # noqa: PLC0415

    headline, (ckpt, tcfg) = next(iter(runs.items()))
    after, _, _ = load_model(ckpt, device=cfg.device)
    torch.manual_seed(tcfg.seed)  # the untrained model: the run's initial weights (same seed)
    before = create_model(tcfg.model, **tcfg.model_kwargs).to(cfg.device).eval()
    return saliency_report(before, after, test_sets, out, image_size=cfg.image_size,
                           figure_images=cfg.saliency_images, share_images=cfg.saliency_share_images,
                           device=cfg.device, run_label=headline)


def run_demo(
    out: str | PathLike,
    smoke: bool = False,
    device: str = "auto",
    seed: int = 0,
    config: DemoConfig | None = None,
) -> Path:
    """Runs the whole demo into ``out`` and returns the path of ``out/report.md``.

    Layout: ``out/data`` (the Mini-Comballaz render), ``out/runs/augmented`` and
    ``out/runs/no_augmentation`` (checkpoints, config.yaml, log.csv), ``out/cache`` (decoded
    training images), ``out/plots``, ``out/predictions``, ``out/summary.json``, ``out/report.md``.

    Args:
        out: the demo folder (created; an earlier, interrupted run in it is continued).
        smoke: toy size (about a minute on a CPU), for tests.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: seeds the render and the trainings.
        config: explicit sizes instead of the preset of `demo_config`.
    """
    from topoloc.data.cache import ImageCache  # noqa: PLC0415
    from topoloc.engine.checkpoint import load_model  # noqa: PLC0415
    from topoloc.engine.evaluate import evaluate  # noqa: PLC0415
    from topoloc.engine.predict import as_cache  # noqa: PLC0415
    from topoloc.engine.train import train  # noqa: PLC0415
    from topoloc.geodesy import LocalFrame  # noqa: PLC0415
    from topoloc.report import write_report  # noqa: PLC0415

    cfg = config if config is not None else demo_config(smoke, device, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()

    def lap(stage: str) -> None:
        timings[stage] = time.perf_counter() - sum(timings.values()) - t0
        log.info("demo: %s done in %.1f s", stage, timings[stage])
        print(f"[demo] {stage}: {timings[stage]:.1f} s", flush=True)

    data_dir = out / "data"
    _render(cfg, data_dir)
    lap("render")

    train_set, test_sets = _datasets(cfg, data_dir)
    frame = LocalFrame.named("comballaz")
    cache_file = out / "cache" / f"train_{cfg.image_size[0]}x{cfg.image_size[1]}.pt"
    runs: dict[str, tuple[Path, TrainConfig]] = {}
    for label, folder, augment in (("augmented (SimToReal)", "augmented", "simtoreal"),
                                   ("no augmentation", "no_augmentation", None)):
        print(f"[demo] training {label}: {cfg.epochs} epochs of {len(train_set)} images", flush=True)
        tcfg = cfg.train_config(out / "runs" / folder, augment, cache_file)
        result = train(tcfg, train_set)
        runs[label] = (Path(result.final_checkpoint), tcfg)
        lap(f"train {folder}")

    test_caches = [as_cache(ds, cfg.image_size) for ds in test_sets]
    train_cache = ImageCache.from_dataset(train_set, cfg.image_size, path=cache_file)  # the file training wrote
    evaluations = {}
    for label, (ckpt, tcfg) in runs.items():
        model, normalizer, _ = load_model(ckpt, device=cfg.device)
        evaluations[label] = evaluate(model, normalizer, test_caches, frame=frame, train_set=train_cache,
                                      device=cfg.device, image_size=cfg.image_size, method=label)
    lap("evaluate")

    saliency_md = _saliency_section(cfg, out, runs, test_sets)
    lap("saliency")

    total = time.perf_counter() - t0
    intro = _intro(cfg, train_set, test_sets, timings, total, _cpu_seconds() - cpu0) + "\n\n" + _headline(evaluations)
    report = write_report(out, evaluations, title="topoloc demo: Mini-Comballaz, synthetic training, real test",
                          intro=intro, retrieval_run=next(iter(evaluations)),
                          extra_sections={"Saliency": saliency_md})
    (out / "demo.json").write_text(json.dumps({"config": asdict(cfg), "timings_s": timings,
                                               "total_s": time.perf_counter() - t0,
                                               "cpu_s": _cpu_seconds() - cpu0, "torch_threads": torch.get_num_threads()},
                                              indent=2, default=str))
    print(f"[demo] report: {report} ({time.perf_counter() - t0:.1f} s in all)", flush=True)
    return report


def _headline(evaluations: dict[str, Any]) -> str:
    """One line per domain: median errors of each run and of the retrieval baseline."""
    lines = ["**Headline** (median translation / rotation error):", ""]
    first = next(iter(evaluations.values()))
    for domain in ("real", "synthetic"):
        if not first.model.mask(domain=domain).any():
            continue
        parts = []
        for label, res in evaluations.items():
            s = res.model.summary(domain=domain)
            parts.append(f"{label} {s.median_m:.0f} m / {s.median_deg:.1f} deg")
        if first.retrieval is not None:
            s = first.retrieval.summary(domain=domain)
            parts.append(f"retrieval baseline {s.median_m:.0f} m / {s.median_deg:.1f} deg")
        lines.append(f"- {domain} test images: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (s)."""
    import resource  # noqa: PLC0415

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _intro(cfg: DemoConfig, train_set, test_sets, timings: dict[str, float], total: float, cpu: float) -> str:
    tests = ", ".join(f"{ds.flight} {ds.domain} ({len(ds)})" for ds in test_sets)
    model_desc = f"`{cfg.model}`" + (f" ({', '.join(f'{k}={v}' for k, v in cfg.model_kwargs.items())})"
                                     if cfg.model_kwargs else "")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    return (
        f"Preset `{cfg.preset}` on `{cfg.device}`, seed {cfg.seed}. Mini-Comballaz (a procedural stand-in for "
        f"the Comballaz scene) rendered at {cfg.render_size[0]}x{cfg.render_size[1]} px.\n\n"
        f"- Training: {len(train_set)} synthetic renders of `{TRAIN_FLIGHT}` (poses from TOPO's LHS flight), "
        f"{model_desc} from random weights at {cfg.image_size[1]}x{cfg.image_size[0]} px, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, Adam lr {cfg.lr:g} with cosine decay to 1 %, learned loss weights starting at sx = 0, sq = {cfg.sq:g}; "
        "two runs with identical settings and seed, with "
        f"`augment.SimToReal(strength={cfg.augment_strength:g})` and without augmentation.\n"
        f"- Test: {tests}: the poses of real TOPO flights; their \"real\" images are Mini-Comballaz's real "
        "appearance (other season, sky, haze, camera), their synthetic images the render of the same pose.\n"
        "- The real flights' heights sit up to about 50 m lower, relative to the ground, than the LHS poses "
        "imply (their altitudes are likely above sea level, not ellipsoidal: a vertical datum difference in "
        "TOPO's poses); the coverage table shows how far the test poses are from every training pose.\n"
        f"- Time: {times} ({total:.0f} s wall before the report, {cpu:.0f} s of CPU time, "
        f"{torch.get_num_threads()} torch threads)."
    )
