"""The demo's settings: its flights and runs, `DemoConfig` and the presets of `demo_config`.

The constants name the protocol (the planned flight whose plan gives the training views, the test
flights, the rendered training flight and its split, the two runs); `DemoConfig` holds the sizes of
one demo and builds each run's `TrainConfig`; `demo_config` picks the ``smoke``, ``cpu`` or ``gpu``
preset. `topoloc.experiments.demo` runs a demo, `topoloc.experiments.demo_report` writes its text;
every name here is also importable from `topoloc.experiments.demo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from topoloc._device import resolve_device, usable_cpus
from topoloc.engine.config import TrainConfig

__all__ = ["DemoConfig", "demo_config", "PLANNED_FLIGHT", "TEST_FLIGHTS", "TRAIN_FLIGHT", "TRAIN_SPLIT", "HALF_WIDTH",
           "RUNS", "PLAIN_RUN"]

#: The flight whose plan gives the training views, and the aims' test flight.
PLANNED_FLIGHT = "comballaz-2020-11-06-planned"
#: Real TOPO flights whose poses give the test sets (their renders: synthetic; their "-real" photos: real).
TEST_FLIGHTS = (PLANNED_FLIGHT, "comballaz-2020-11-06-piloted", "comballaz-2021-03-27-winter")
#: The rendered training flight (corridor + envelope LHS around the planned flight).
TRAIN_FLIGHT = "comballaz-demo-train"
#: The CPU preset's ResNet18 stage widths (timm's ``channels``): half of ResNet18's 64, 128, 256, 512.
HALF_WIDTH = [32, 64, 128, 256]
#: The two runs: label -> (folder, augment).
RUNS = {"augmented (SimToReal)": ("augmented", "simtoreal"), "no augmentation": ("no_augmentation", None)}
#: The run without augmentation: its brackets are the report's, and the fine-tune starts from it.
PLAIN_RUN = "no augmentation"
#: The training flight's split: 90 / 10 by blocks of 10 consecutive rows (the corridor's rows follow
#: the flight, so a block is a stretch of it: validation views are not near-copies of training views).
TRAIN_SPLIT: dict[str, Any] = {"split_fractions": (0.9, 0.1, 0.0), "split_block": 10}


@dataclass
class DemoConfig:
    """Sizes of the demo (see `demo_config` for the presets).

    Args:
        preset: label of the preset (``"smoke"``, ``"cpu"``, ``"gpu"``).
        corridor_images: training views jittered around the planned flight (`topoloc.data.corridor`
            with ``corridor_sigma_m`` across / along / up and ``corridor_sigma_deg`` yaw / pitch / roll).
        lhs_images: training views by Latin hypercube inside the planned flight's envelope.
        test_images: poses per test flight, evenly spread (``None``: every pose of the flight); the
            planned flight always uses ``planned_test_images``.
        planned_test_images: poses of the planned flight (``None``: all 447).
        render_size: (W, H) of the rendered images, pixels.
        image_size: (H, W) the model trains at.
        model: `topoloc.models` name; model_kwargs: its arguments.
        epochs, batch_size, lr: training (Adam, cosine decay to 1 %).
        finetune_epochs: 0: the augmented run trains from new weights for ``epochs``, as the
            unaugmented run does. N > 0: the unaugmented run trains first, and the augmented run
            starts from its final weights (`TrainConfig.init_from`) and trains N epochs with
            augmentation (the strength ramped over those N, the learning rate from ``lr`` again):
            the network has learnt the renders' geometry before it learns to ignore their
            appearance. The CPU preset fine-tunes 13 epochs, half the training of the augmented run;
            over three seeds that localises the real photos about 5 m and 1.5 deg worse as trained
            than 26 epochs from new weights, level in metres with AdaBN (docs/RESULTS.md).
        augment_strength: strength of ``augment.SimToReal`` in the augmented run (its last epochs'
            with ``augment_ramp``).
        augment_ramp: ramp the strength up linearly over the run (`TrainConfig.augment_ramp_epochs` =
            ``epochs``): ``augment_strength / epochs`` in the first epoch, ``augment_strength`` in the last.
        augment_fraction: share of each batch that the augmented run augments (the rest stays clean).
            The CPU preset augments every image (1.0): with the strength ramp the first epochs change
            the images' appearance little, apart from the relighting (``relight``) and the edge
            abstraction (a tenth of the images, whole at any strength); the GPU preset keeps half
            (measured there only with half).
        relight: in the augmented run, probability that an augmented image is first relit by a sun
            from a random direction on its surface normals (`augment.RandomSunRelight`; the
            training flight is then rendered with depth maps). 0 turns it off.
        sq: initial log-weight of the rotation term of `AtLocLoss` (learned). The paper's -3 weighs
            rotation 20x; from random weights in a few thousand steps that left the translation nearly
            unlearned (measured on the CPU preset), so the demo starts at 0.
        adabn: also evaluate both runs with their batch-norm statistics re-estimated on each test
            flight's own images (AdaBN, `topoloc.engine.adapt`: unsupervised test-time adaptation, no
            labels), reported beside the runs as ``"<run> + AdaBN"`` with the aims checked again.
        saliency_images: images per domain in the saliency figure.
        saliency_share_images: images per domain for the per-class saliency shares.
        cpu_amp: train under bf16 autocast on a CPU with native bf16 (`TrainConfig.cpu_amp`; float32,
            more slowly, on other CPUs).
        cpu_channels_last: train in channels_last memory format on the CPU
            (`TrainConfig.cpu_channels_last`).
        decode_workers: processes decoding the training renders into the cache (0: in the main
            process; the 2-core CPU preset gains nothing from more).
        side_by_side: train the two runs at the same time, each in its own process with half the
            torch threads (`topoloc.engine.train_side_by_side`), instead of one after the other with
            all of them. 1.3x the steps per second for the full-width ResNet18's float32 steps on a
            2-core Zen 3; no gain at the CPU preset's half width, which trains one after the other
            (BENCHMARKS.md).
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds the poses, the render and both trainings.
    """

    preset: str
    corridor_images: int
    lhs_images: int
    test_images: int | None
    render_size: tuple[int, int]
    image_size: tuple[int, int]
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    planned_test_images: int | None = None
    corridor_sigma_m: tuple[float, float, float] = (15.0, 15.0, 8.0)
    corridor_sigma_deg: tuple[float, float, float] = (15.0, 5.0, 3.0)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    finetune_epochs: int = 0
    augment_strength: float = 0.75
    augment_ramp: bool = True
    augment_fraction: float = 0.5
    relight: float = 0.8
    sq: float = 0.0
    adabn: bool = True
    saliency_images: int = 3
    saliency_share_images: int = 16
    cpu_amp: bool = False
    cpu_channels_last: bool = False
    decode_workers: int = 0
    side_by_side: bool = False
    device: str = "cpu"
    seed: int = 0
    test_flights: tuple[str, ...] = TEST_FLIGHTS

    def __post_init__(self) -> None:
        n = self.finetune_epochs
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"DemoConfig: `finetune_epochs` must be a non-negative int, got {self.finetune_epochs!r}")
        if self.finetune_epochs and self.side_by_side:
            raise ValueError("DemoConfig: `finetune_epochs` starts the augmented run from the unaugmented run's "
                             "weights, so the two cannot train side by side: set `side_by_side=False` or "
                             "`finetune_epochs=0`")

    def train_config(self, out_dir: Path, augment: str | None, cache_file: Path,
                     init_from: Path | None = None) -> TrainConfig:
        """The `TrainConfig` of one run; ``init_from``: the augmented run's first weights (``finetune_epochs``)."""
        epochs = self.finetune_epochs if augment is not None and self.finetune_epochs else self.epochs
        return TrainConfig(
            model=self.model, model_kwargs=dict(self.model_kwargs), epochs=epochs, batch_size=self.batch_size,
            lr=self.lr, lr_schedule="cosine", sq=self.sq, image_size=self.image_size, augment=augment,
            augment_strength=self.augment_strength, augment_fraction=self.augment_fraction,
            init_from=str(Path(init_from).resolve()) if init_from is not None else None,
            augment_ramp_epochs=epochs if self.augment_ramp and augment is not None else 0,
            relight=self.relight if augment is not None else 0.0,
            device=self.device, cpu_amp=self.cpu_amp, cpu_channels_last=self.cpu_channels_last,
            val_every=0, seed=self.seed, out_dir=str(out_dir),
            cache_file=str(cache_file.resolve()), resume=True, tensorboard=False, progress=self.preset != "smoke",
            cache_device="auto", num_workers=self.decode_workers,
        )


def demo_config(smoke: bool = False, device: str = "auto", seed: int = 0) -> DemoConfig:
    """The demo's sizes: ``smoke`` (about a minute on a 2-core CPU), ``cpu`` (7-9 minutes on
    a 2-core AVX2-only CPU without native bf16, 4-5 on a 2-core CPU with AMX-BF16 or AVX512-BF16) or ``gpu``
    (a larger configuration, chosen when CUDA is available).

    Args:
        smoke: the toy-size run (for tests).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        seed: seeds the poses, the render and the trainings.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    dev = resolve_device(device).type  # also refuses 'cuda' without CUDA
    if smoke:
        # 60 training views: 6 blocks of 10 rows (TRAIN_SPLIT), 5 train and 1 validation (none with fewer than 6)
        return DemoConfig("smoke", corridor_images=52, lhs_images=8, test_images=4, planned_test_images=6,
                          render_size=(72, 48), image_size=(48, 72), model="atloc_resnet18",
                          model_kwargs=dict(feat_dim=64), epochs=2, finetune_epochs=2, batch_size=8, saliency_images=2,
                          saliency_share_images=4, device=dev, seed=seed)
    if dev == "cuda":
        # Sized for about 5 minutes on one H100 / H200. Measured on an H200 (BENCHMARKS.md, 2026-12-04):
        # 347 s in all (render 23 s, training 173 s with augmentation and 68 s without, evaluation with
        # AdaBN 44 s, report 6 s, saliency 26 s). With the strength ramp, the planned flight's real photos
        # at 57.2 m / 7.3 deg against 88.3 m / 12.2 deg with SimToReal 0.5 throughout (one seed each;
        # docs/RESULTS.md).
        return DemoConfig("gpu", corridor_images=4500, lhs_images=500, test_images=None, render_size=(384, 256),
                          image_size=(256, 384), model="atloc_resnet34", model_kwargs=dict(feat_dim=512, dropout=0.2),
                          epochs=30, batch_size=64, lr=1e-3, saliency_images=4, saliency_share_images=64,
                          decode_workers=min(8, usable_cpus()), device=dev, seed=seed)
    # 2-core CPU: ResNet18 at half width (timm's `channels` 32-256 instead of 64-512) at 64x96 px (sizes
    # chosen by measurement: see the README's demo section). Half width since 2026-12-01: a float32 step of
    # batch 32 takes 278 ms against 776 ms on two threads of a 2-core Zen 3 (`benchmarks/bench_width.py`),
    # and the three seeds of the augmented run localise as the full width's do (docs/RESULTS.md).
    # SimToReal 0.5 on half of each batch (the default until the ramp below): measured on this preset
    # (planned flight, synthetic / real medians),
    # strength 0.5 gave 43 m / 8.0 deg and 140 m / 54 deg; strength 1.0 gave 61 m / 13 deg and 153 m / 58 deg;
    # strength 1.0 with every op on (p = 1) 70 m / 19 deg and 195 m / 88 deg. On the whole batch, strength
    # 0.5 barely trained in 8 epochs at 48x72 px (training loss 0.74 vs 0.43 unaugmented).
    # 20 epochs, not 14: with relighting, seed 0, the augmented run gave 46.7 m / 9.2 deg synthetic and 110 m /
    # 36 deg real at 14 epochs, 34 m / 5.2 deg and 79 m / 18.5 deg at 20 (real rendered without JPEG); the
    # demo then takes about 12.5 minutes on a quiet 2-core CPU.
    # SimToReal ramped from 0.0375 to 0.75 over the 20 epochs (the default since 2026-12-01), against 0.5 flat,
    # seeds 0, 1, 2 (scratch runs, docs/RESULTS.md): synthetic 26.4 m / 4.5 deg against 34.3 m / 6.4 deg,
    # real 85.4 m / 18.9 deg against 94.5 m / 26.6 deg (AdaBN 73.0 m / 13.8 deg against 87.0 m / 20.4 deg).
    # 26 epochs under bf16 autocast (since 2026-12-01; `TrainConfig.cpu_amp`) in the time 20 took in float32
    # on the 2-core Zen 4; seeds 0, 1, 2 (scratch runs, docs/RESULTS.md): synthetic 25.0 m / 3.8 deg against
    # 26.4 m / 4.5 deg, real 73.9 m / 15.7 deg against 85.4 m / 18.9 deg. On CPUs without native bf16 the same
    # 26 epochs run in float32: 1.3x slower on that Zen 4, 3.1x on a 2-core Zen 3 (AVX2 only; BENCHMARKS.md).
    # The two runs one after the other on all threads: at half width the two runs side by side
    # (`DemoConfig.side_by_side`), one thread each, took as long (5 epochs each on a 2-core Zen 3: 188 s
    # side by side, 187-191 s one after the other; BENCHMARKS.md).
    # At the full width they made 1.3x the steps per second, and the preset used them on CPUs without bf16.
    # channels_last on the CPU (`cpu_channels_last`, since 2026-12-01): the half width's float32 step 1.16x
    # faster on 2 threads of the Zen 3 (`benchmarks/bench_width.py`; the stem's max pooling is 9x faster in
    # channels_last), and the demo's trainings for 3 epochs 1.14-1.16x (BENCHMARKS.md).
    # Every image of the batch augmented (`augment_fraction` 1.0, since 2026-12-02), against half of it, seeds
    # 0, 1, 2 (scratch runs, docs/RESULTS.md): real 64.8 m / 12.0 deg against 77.1 m / 16.0 deg (AdaBN 63.6 m /
    # 10.4 deg against 67.0 m / 12.4 deg), synthetic 32.8 m / 4.6 deg against 23.2 m / 3.4 deg; the augmented
    # run's training takes 1.07-1.12x as long (the augmentation of 32 images a step instead of 16).
    # The augmented run fine-tunes the unaugmented run's weights for 13 epochs (`finetune_epochs`, since
    # 2026-12-02) instead of training 26 from random weights: half its training, about 4 minutes of the demo
    # on the 2-core Zen 3, which brings the demo under 15 minutes there. Seeds 0, 1, 2 (scratch runs,
    # docs/RESULTS.md): real 70.1 m / 13.5 deg against 64.8 m / 12.0 deg (AdaBN 64.8 m / 11.5 deg against
    # 63.6 m / 10.4 deg), synthetic 35.9 m / 4.3 deg against 32.8 m / 4.6 deg.
    return DemoConfig("cpu", corridor_images=1800, lhs_images=200, test_images=150, render_size=(96, 64),
                      image_size=(64, 96), model="atloc_resnet18",
                      model_kwargs=dict(feat_dim=256, dropout=0.2, backbone_kwargs=dict(channels=HALF_WIDTH)),
                      epochs=26, finetune_epochs=13, batch_size=32, augment_fraction=1.0, cpu_amp=True,
                      cpu_channels_last=True,
                      saliency_images=3, saliency_share_images=16, device=dev, seed=seed)


def _side_by_side_threads() -> int:
    """Torch threads of each run side by side: this process's, shared out."""
    return max(1, torch.get_num_threads() // len(RUNS))
