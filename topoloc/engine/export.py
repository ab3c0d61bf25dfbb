"""Export a trained model to ONNX for the drone's computer, with a pose decoder that needs no torch.

`export_onnx` writes three files side by side:

- ``model.onnx``: images in, pose code out. The input normalisation is inside the graph: the input
  ``images`` is uint8 RGB (B, 3, H, W) in [0, 255] (or float32 in [0, 1] with
  ``input_dtype="float"``) at the model's training size (H, W); the graph divides by 255 and applies
  the backbone's mean / std. Resizing is not in the graph: resize photos to (H, W) first, bilinear
  with antialiasing and no crop, as training did (`topoloc.data.cache.resize_uint8`). The batch
  axis is dynamic. The output ``code`` is float32 (B, 3 + k), decoded by `topoloc.pose_decoder`.
  Default opset 17 (TensorRT 8.5+ on Jetson reads it), exported with torch's TorchScript-based
  exporter (``dynamo=False``): it runs offline and needs no onnxscript.
- ``model.json``: the decoder's statistics (`PoseNormalizer.state_dict()` with the rotation code
  type), the training frame, the input contract and the opset; the same JSON is in the ONNX
  metadata under the key ``topoloc``.
- ``topoloc_pose_decoder.py``: a copy of `topoloc.pose_decoder` (numpy only).

Needs the ``export`` extra (``pip install "topoloc[export]"``: onnx, onnxruntime).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from topoloc import pose_decoder
from topoloc._paths import check_output
from topoloc._tempfiles import write_atomically, write_text_atomically
from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.localise import resolve_frame, resolve_model
from topoloc.evaluation.localisation import checked_geoid_offset

__all__ = ["export_onnx", "ExportedModel", "OnnxPoseNet", "EXPORT_FORMAT", "DEFAULT_OPSET", "INPUT_DTYPES"]

EXPORT_FORMAT = "topoloc.onnx/1"
DEFAULT_OPSET = 17
INPUT_DTYPES = ("uint8", "float")


class OnnxPoseNet(nn.Module):
    """The network with its input normalisation: raw RGB images in, pose code out.

    Args:
        model: a trained `AtLoc` (anything with ``image_mean``, ``image_std`` and a (B, 3 + k) output).
        input_dtype: ``"uint8"`` (images in [0, 255]) or ``"float"`` (float32 in [0, 1]).

    Shape:
        - images: (B, 3, H, W) uint8 or float32 RGB
        - output: (B, 3 + k) float32 pose code (`topoloc.pose_decoder.decode_pose`)
    """

    mean: Tensor  # (1, 3, 1, 1) buffers: the model's normalisation
    std: Tensor

    def __init__(self, model: nn.Module, input_dtype: str = "uint8") -> None:
        super().__init__()
        if input_dtype not in INPUT_DTYPES:
            raise ValueError(f"input_dtype: expected one of {INPUT_DTYPES}, got {input_dtype!r}")
        self.model = model
        self.input_dtype = input_dtype
        mean, std = cast(Tensor, model.image_mean), cast(Tensor, model.image_std)  # an AtLoc's properties
        self.register_buffer("mean", mean.detach().float().clone().reshape(1, 3, 1, 1))
        self.register_buffer("std", std.detach().float().clone().reshape(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        x = images.float()
        if self.input_dtype == "uint8":
            x = x / 255.0
        return self.model((x - self.mean) / self.std).float()


@dataclass
class ExportedModel:
    """Paths written by `export_onnx` and the metadata stored with them."""

    onnx: Path
    stats: Path
    decoder: Path
    metadata: dict[str, Any]


def _require_onnx():
    try:
        import onnx  # noqa: PLC0415 - deferred: optional extra (pip install "topoloc[export]")
    except ImportError as err:
        raise ImportError("topoloc export needs the optional 'export' extra: pip install \"topoloc[export]\" "
                          "(onnx, onnxruntime)") from err
    return onnx


def export_onnx(
    checkpoint_or_model: Any,
    path: str | PathLike,
    *,
    normalizer: PoseNormalizer | None = None,
    image_size: tuple[int, int] | None = None,
    frame: Any = None,
    opset: int = DEFAULT_OPSET,
    input_dtype: str = "uint8",
    geoid_offset_m: float = DEFAULT_GEOID_OFFSET_M,
) -> ExportedModel:
    """Write ``path`` (ONNX), its statistics JSON and the numpy pose decoder beside it.

    Args:
        checkpoint_or_model: a checkpoint path, a ``(model, normalizer, config)`` triple from
            `load_model`, or a model (then ``normalizer`` is required, and ``image_size`` unless
            the model records it).
        path: the ``.onnx`` file; the JSON is ``path`` with the suffix ``.json``.
        normalizer: the training `PoseNormalizer` (default: the checkpoint's).
        image_size: (H, W) of the graph's input, pixels (default: the checkpoint's training size).
        frame: the training frame (see `topoloc.engine.localise.resolve_frame`).
        opset: ONNX opset version.
        input_dtype: ``"uint8"`` ([0, 255]) or ``"float"`` (float32 in [0, 1]).
        geoid_offset_m: the geoid undulation N (m) written to the JSON for heights above sea level ``h - N``
            (default: western Switzerland's 49.5 m, warned of for a frame far from it, as `localise` does).

    Returns:
        An `ExportedModel` with the three paths and the metadata dict.
    """
    onnx = _require_onnx()
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"output {str(path)!r}: expected a file name ending in .onnx")
    check_output(path, "output")  # before the model is traced, with the two files written beside it
    check_output(path.with_suffix(".json"), "output's metadata file")
    check_output(path.parent / "topoloc_pose_decoder.py", "output's decoder file")
    if isinstance(opset, bool) or not isinstance(opset, int) or not 11 <= opset <= 21:
        raise ValueError(f"opset: expected an ONNX opset between 11 and 21, got {opset!r}")
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype: expected one of {INPUT_DTYPES}, got {input_dtype!r}")
    model, normalizer, size, recorded, source = resolve_model(checkpoint_or_model, normalizer, image_size, "cpu",
                                                              where="export_onnx")
    if not callable(getattr(normalizer, "state_dict", None)):
        raise TypeError(f"normalizer: expected the PoseNormalizer the model was trained with, got "
                        f"{type(normalizer).__name__} (PoseNormalizer.from_state_dict(d) reads a dict)")
    frame = resolve_frame(frame, recorded, source)
    geoid_offset_m = checked_geoid_offset(geoid_offset_m, frame, stacklevel=3)
    # A copy: the caller's model keeps its device and its training mode (an export from a training callback).
    net = OnnxPoseNet(copy.deepcopy(model).to("cpu"), input_dtype).eval()
    h, w = (int(s) for s in size)
    dtype = torch.uint8 if input_dtype == "uint8" else torch.float32
    example = torch.zeros(2, 3, h, w, dtype=dtype)
    with torch.no_grad():
        code_size = int(net(example).shape[-1])
    norm_state = normalizer.state_dict()
    rotation = cast(str, norm_state.get("rotation", "log_quat"))
    if code_size != 3 + pose_decoder.ROTATION_SIZES.get(rotation, -3):
        raise ValueError(f"{source}: the model outputs {code_size} numbers but its normaliser's {rotation!r} code "
                         f"needs {3 + pose_decoder.ROTATION_SIZES.get(rotation, 0)}; expected a matching pair")
    stats = {
        "format": EXPORT_FORMAT,
        "normalizer": norm_state,
        "rotation": rotation,
        "code_size": code_size,
        "frame": frame.to_dict(),
        "geoid_offset_m": geoid_offset_m,
        "input": {"name": "images", "dtype": "uint8" if input_dtype == "uint8" else "float32",
                  "range": "0..255" if input_dtype == "uint8" else "0..1", "layout": "NCHW", "channels": "RGB",
                  "height": h, "width": w,
                  "resize": "resize photos to height x width first: bilinear, antialiased, no crop (as training)"},
        "output": {"name": "code", "dtype": "float32", "shape": ["batch", code_size],
                   "decode": "topoloc_pose_decoder.decode_pose(code, stats) -> (B, 4, 4) camera-to-world, "
                             "training frame ENU metres, OpenCV camera axes"},
        "opset": opset,
        "model": getattr(model, "config", None),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_name(f".{path.name}.graph.{os.getpid()}.tmp")  # the graph before its metadata: never at `path`
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            torch.onnx.export(net, (example,), str(raw), dynamo=False, opset_version=opset, input_names=["images"],
                              output_names=["code"], dynamic_axes={"images": {0: "batch"}, "code": {0: "batch"}})
        proto = onnx.load(str(raw))
    finally:
        raw.unlink(missing_ok=True)
    meta = json.dumps(stats, default=str)
    del proto.metadata_props[:]
    for key, value in (("topoloc", meta), ("topoloc.format", EXPORT_FORMAT)):
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    proto.doc_string = (f"topoloc pose regressor: images {stats['input']['dtype']} (batch, 3, {h}, {w}) RGB -> "
                        f"code float32 (batch, {code_size}); decode with topoloc_pose_decoder.decode_pose")
    onnx.checker.check_model(proto)
    # Whole files or none: a failed or killed export leaves the previous ones (or none), never half of one.
    write_atomically(path, lambda tmp: onnx.save(proto, str(tmp)))
    stats_path = write_text_atomically(path.with_suffix(".json"), json.dumps(stats, indent=2, default=str))
    decoder_path = path.parent / "topoloc_pose_decoder.py"
    write_atomically(decoder_path, lambda tmp: shutil.copyfile(pose_decoder.__file__, tmp))
    return ExportedModel(path, stats_path, decoder_path, stats)
