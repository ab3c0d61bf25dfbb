"""The training side of `TrainConfig.scene_coords`: the auxiliary head, its targets, loss and state.

`SceneHeadTraining` taps the backbone's stages (`topoloc.models.scene_coords`), builds the head for
their shapes at the training size, and holds every training image's target: the mean world point
of each cell of the head's grid, about the points' centre, in units of `SCENE_SCALE_M`. The trainer
adds ``scene_coords * loss(idx)`` to each step's pose loss, puts the head in its optimiser and its
`state` in the checkpoint; the saved model stays the plain `AtLoc`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from topoloc.data.geometry import (flight_parts, flight_scene_points, geometry_path, pool_scene_points,
                                   refuse_other_lens)
from topoloc.engine.inputs import blank_forward
from topoloc.models.atloc import AtLoc
from topoloc.models.scene_coords import SCENE_SCALE_M, SceneCoordHead, StageTap, scene_coord_loss, scene_stages

__all__ = ["SceneHeadTraining", "check_scene_source", "image_means", "targets_match", "TARGETS_TOLERANCE_M"]

log = logging.getLogger("topoloc.engine")


#: How far (m) an image's mean target point may move between a checkpoint and its resume: the same geometry
#: pooled on another device or torch release differs by float rounding, far less than this.
TARGETS_TOLERANCE_M = 0.01


def image_means(cells: Tensor) -> Tensor:
    """Each image's mean valid cell point (m), (N, 3) float64 on the CPU (0 for an image with none): what a
    checkpoint keeps of the head's targets, to tell other geometry on resume.

    Shape:
        cells: (N, 3, h, w), NaN where a cell has no point -> (N, 3)
    """
    cells = cells.detach().cpu().double()
    valid = torch.isfinite(cells).all(1, keepdim=True)
    total = torch.where(valid, cells, 0.0).sum((2, 3))
    return total / valid.sum((2, 3)).clamp_min(1)


def targets_match(saved: Tensor, mine: Tensor) -> bool:
    """Whether a checkpoint's `image_means` and this run's are of the same images, within `TARGETS_TOLERANCE_M`."""
    return saved.shape == mine.shape and bool(((saved.double() - mine).abs() <= TARGETS_TOLERANCE_M).all())


def check_scene_source(train_set: Any, points: Tensor | None) -> None:
    """Refuse (before any image is decoded) a run of ``TrainConfig.scene_coords`` with no world points to
    train on: neither ``scene_points`` nor a training set of renders with geometry files, or a render of
    it without its geometry file (named)."""
    if points is not None:
        return
    if getattr(train_set, "render_paths", None) is None and getattr(train_set, "datasets", None) is None:
        raise TypeError("TrainConfig.scene_coords needs the training renders' world points: pass `scene_points` "
                        "(topoloc.data.flight_scene_points) with an ImageCache, or the TopoFlight itself (got "
                        f"{type(train_set).__name__})")
    for flight in flight_parts(train_set):
        refuse_other_lens(flight, "TrainConfig.scene_coords")  # before any image is decoded
        for render in getattr(flight, "render_paths", None) or []:
            geometry_path(render)  # two file checks per render; the files are read after the images are decoded


class SceneHeadTraining:
    """The auxiliary scene-coordinate head of one run.

    Args:
        model: the run's `AtLoc` (unwrapped), with its training input size recorded.
        image_size: (H, W) of the training images.
        train_set: the training set, whose renders' geometry files give the targets (a `TopoFlight` or a
            `FlightCollection` of them), unless ``points`` is given.
        points: the training images' world points, (N, 3, H', W') float local ENU metres, NaN where
            nothing is hit, at any resolution, in the training set's order; or None to read them.
        n_images: the number of training images (``points`` must have as many).
        device: the run's device (the head's); ``target_device``: where the targets are kept.

    Attributes:
        head: the `SceneCoordHead`; ``tap``: the `StageTap` on the backbone; ``grid``: (h, w) of its
        cells; ``centre_m``: the mean of the valid cell points (east, north, up) m.

    Raises:
        TypeError: no ``points`` and a training set without renders (an `ImageCache`).
        ValueError: ``points`` of another shape, count or aspect than the images; no cell with a point; a
            backbone without convolutional stages (`scene_stages`).
        FileNotFoundError: a render without a geometry file (named).
    """

    def __init__(self, model: AtLoc, image_size: tuple[int, int], train_set: Any, points: Tensor | None,
                 n_images: int, device: torch.device, target_device: torch.device) -> None:
        stages = scene_stages(model)
        self.tap = StageTap(model, stages)
        shapes = self._stage_shapes(model, image_size, device)
        self.grid = (int(shapes[0][1]), int(shapes[0][2]))
        self.head = SceneCoordHead([c for c, _, _ in shapes]).to(device)
        self.device = device
        cells = self._cells(train_set, points, n_images, image_size)
        valid = torch.isfinite(cells).all(1)
        if not bool(valid.any()):
            raise ValueError("TrainConfig.scene_coords: no cell of any training image has a scene point (every "
                             "geometry value is 'nothing hit'): there is nothing to train the head on")
        self.centre_m = [float(v) for v in cells.permute(0, 2, 3, 1)[valid].double().mean(0)]
        # which targets: a resume onto other geometry (files re-rendered or replaced since the kill) is refused
        self.image_means_m = image_means(cells)
        self.scale_m = SCENE_SCALE_M
        self.targets = self._normalised(cells).to(target_device)
        self.stages = stages

    def _stage_shapes(self, model: AtLoc, image_size: tuple[int, int], device: torch.device
                      ) -> list[tuple[int, int, int]]:
        """(channels, h, w) of each tapped stage, from one blank image in eval mode (no batch-norm
        statistics move, no RNG is drawn)."""
        self.tap.active = True
        try:
            blank_forward(model, image_size, device)
            return [(int(f.shape[1]), int(f.shape[2]), int(f.shape[3])) for f in self.tap.features()]
        finally:
            self.tap.active = False

    def _cells(self, train_set: Any, points: Tensor | None, n_images: int, image_size: tuple[int, int]) -> Tensor:
        if points is None:
            check_scene_source(train_set, points)
            cells = flight_scene_points(train_set, self.grid, device=self.device)
        else:
            if not isinstance(points, Tensor) or points.ndim != 4 or points.shape[1] != 3 \
                    or not points.is_floating_point():
                got = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
                raise ValueError(f"train: `scene_points` must be a float (N, 3, H, W) tensor of local ENU metres "
                                 f"(NaN where nothing is hit), got {got}")
            (h, w), (ih, iw) = points.shape[-2:], image_size
            if abs(w / h - iw / ih) > 0.01 * iw / ih:  # aspect ratios 1 % apart
                raise ValueError(f"train: `scene_points` are {w}x{h} (W x H) per image, not the training images' "
                                 f"{iw}x{ih} (TrainConfig.image_size) or a scaling of it; their cells would not "
                                 "line up with the images")
            cells = pool_scene_points(points, self.grid).cpu()
        if cells.shape[0] != n_images:
            raise ValueError(f"train: `scene_points` has {cells.shape[0]} images' points, the training set "
                             f"{n_images} images")
        return cells

    def _normalised(self, cells: Tensor) -> Tensor:
        centre = torch.tensor(self.centre_m, dtype=torch.float32).view(1, 3, 1, 1)
        return (cells - centre) / self.scale_m

    def start(self) -> None:
        """Keep the stages' outputs of the next forward pass (a training step's)."""
        self.tap.active = True

    def loss(self, idx: Tensor) -> Tensor:
        """The head's `scene_coord_loss` on the last forward pass, whose images are ``idx``."""
        self.tap.active = False
        features = self.tap.features()
        target = self.targets.index_select(0, idx.to(self.targets.device))
        target = target.to(self.device, non_blocking=self.device.type == "cuda")
        return scene_coord_loss(self.head(features), target)

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps (``scene_head``): the weights, stages, centre and scale."""
        return {"state": self.head.state_dict(), "stages": list(self.stages), "centre_m": list(self.centre_m),
                "scale_m": self.scale_m, "image_means_m": self.image_means_m}

    def load(self, state: dict[str, Any], path: Any, allow_new_targets: bool = False) -> None:
        """Take a checkpoint's head (its centre too: the head's outputs are about it).

        Raises:
            ValueError: the head does not fit this model, or was trained in other units, or (unless
                ``allow_new_targets``, `TrainConfig.resume_changes` ``"allow"``) on other targets.
        """
        saved = state.get("image_means_m")  # absent from checkpoints before 2026-12-07
        if saved is not None and not targets_match(saved, self.image_means_m):
            what = ("the scene-coordinate head's targets differ from those the run was trained on: the training "
                    "renders' geometry files (or `scene_points`) changed since the checkpoint")
            if not allow_new_targets:
                raise ValueError(f"resume: {path}: {what}; put them back, start a new run, or pass "
                                 "resume_changes='allow' to go on with the new targets")
            log.warning("resume: %s: %s; going on with the new targets (resume_changes='allow')", path, what)
        if list(state.get("stages", [])) != self.stages:
            raise ValueError(f"resume: {path}: the scene-coordinate head reads the backbone stages "
                             f"{state.get('stages')}, this model's are {self.stages}")
        try:
            self.head.load_state_dict(state["state"])
        except RuntimeError as err:
            raise ValueError(f"resume: {path}: the scene-coordinate head's weights do not fit: {err}") from err
        if float(state.get("scale_m", self.scale_m)) != self.scale_m:  # its outputs would be in other units
            raise ValueError(f"resume: {path}: the scene-coordinate head was trained with targets in units of "
                             f"{state['scale_m']} m, this version's are {self.scale_m} m; start a new run")
        if [round(v, 3) for v in state["centre_m"]] != [round(v, 3) for v in self.centre_m]:
            cells = self.targets.cpu() * self.scale_m + torch.tensor(self.centre_m).view(1, 3, 1, 1)
            self.centre_m = [float(v) for v in state["centre_m"]]
            self.targets = self._normalised(cells).to(self.targets.device)

    def close(self) -> None:
        """Remove the hooks from the backbone."""
        self.tap.remove()
