"""`topoloc export`: the ONNX model matches torch under onnxruntime; the numpy pose decoder matches
`PoseNormalizer.decode`, scipy's rotations and pyproj, and runs where torch cannot be imported."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pyproj import Transformer
from scipy.spatial.transform import Rotation

from topoloc.cli import main
from topoloc.data import PoseNormalizer
from topoloc.data.preset import load_preset
from topoloc.engine import TrainConfig, load_model
from topoloc.engine.checkpoint import save_checkpoint
from topoloc.geodesy import LocalFrame
from topoloc.models import create_model
from topoloc.pose_decoder import c2w_enu_to_ecef, decode_pose, ecef_to_wgs84

onnx = pytest.importorskip("onnx", reason="onnx not installed: pip install 'topoloc[export]'")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'topoloc[export]'")

from topoloc.engine.export import export_onnx  # noqa: E402 - needs the extra

KWARGS = {"backbone": "test_resnet", "feat_dim": 32}
SIZE = (32, 48)
FRAME = LocalFrame.named("comballaz")


def _checkpoint(path: Path, kwargs: dict) -> Path:
    """A checkpoint of a freshly drawn atloc_resnet18 with ``kwargs``, as the trainer writes one."""
    model = create_model("atloc_resnet18", **kwargs).eval()
    normalizer = PoseNormalizer.fit(FRAME.cesium_to_c2w(load_preset("comballaz-LHS")[:60]))
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=kwargs, image_size=SIZE, device="cpu")
    state = {"model_name": "atloc_resnet18", "model_kwargs": kwargs, "model_state": model.state_dict(),
             "normalizer": normalizer.state_dict(), "config": cfg.to_dict(),
             "frame": {"name": "comballaz", **FRAME.to_dict()}}
    return save_checkpoint(state, path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt", KWARGS)


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory):
    return export_onnx(ckpt, tmp_path_factory.mktemp("export") / "model.onnx")


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_torch(ckpt, exported, batch):
    model, _, _ = load_model(ckpt)
    images = torch.randint(0, 256, (batch, 3, *SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = model(model.normalize(images)).numpy()
    got = _session(exported.onnx).run(None, {"images": images.numpy()})[0]
    assert got.shape == (batch, expected.shape[1]) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_an_output_that_cannot_be_a_file_is_named_before_the_model_is_traced(ckpt, tmp_path, monkeypatch):
    # were OSErrors after the export's work, naming a temporary file: "[Errno 21] Is a directory:
    # '.model.onnx.<pid>.tmp' -> 'model.onnx'", "[Errno 17] File exists: 'notes.txt'"
    import topoloc.engine.export as export

    (tmp_path / "model.onnx").mkdir()
    (tmp_path / "notes.txt").write_text("a file")

    def not_traced(*args, **kwargs):
        raise AssertionError("the model was traced before the output was checked")

    monkeypatch.setattr(export, "OnnxPoseNet", not_traced)
    for path, why in ((tmp_path / "model.onnx", "a folder, expected a file name"),
                      (tmp_path / "notes.txt" / "m.onnx", rf"'{tmp_path / 'notes.txt'}' is a file, not a folder")):
        with pytest.raises(ValueError, match=rf"^output '{path}': {why}$"):
            export_onnx(ckpt, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "notes.txt"]
    assert not any((tmp_path / "model.onnx").iterdir())


def test_float_input_variant(ckpt, tmp_path):
    out = export_onnx(ckpt, tmp_path / "f.onnx", input_dtype="float")
    model, _, _ = load_model(ckpt)
    images = torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(model.normalize(images)).numpy()
    got = _session(out.onnx).run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert out.metadata["input"]["dtype"] == "float32"


def test_model_and_normaliser_must_match(ckpt, tmp_path):
    model, normalizer, cfg = load_model(ckpt)
    other = PoseNormalizer(normalizer.mean_m, normalizer.std_m, rotation="quat")
    with pytest.raises(ValueError, match="outputs 9 numbers but its normaliser's 'quat' code needs 7"):
        export_onnx((model, other, cfg), tmp_path / "m.onnx", frame="comballaz")


def test_the_callers_model_is_left_as_it_was(ckpt, tmp_path):
    model, normalizer, cfg = load_model(ckpt)
    model.train()  # as in a training callback: exporting set it to eval mode, and left it there
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx", normalizer=normalizer, image_size=cfg.image_size, frame="comballaz")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="normalizer: expected the PoseNormalizer .* got dict"):
        export_onnx(model, tmp_path / "n.onnx", normalizer={"mean_m": [0, 0, 0]}, image_size=cfg.image_size,
                    frame="comballaz")
    with pytest.raises(ValueError, match="^export_onnx: a model needs `normalizer`"):
        export_onnx(model, tmp_path / "n.onnx", frame="comballaz")


def test_a_failed_export_leaves_the_previous_files(ckpt, tmp_path, monkeypatch):
    # the graph was written to the output path before its metadata was added and checked: a failure in
    # between (or a kill) left an ONNX file without topoloc's metadata where the previous export was
    first = export_onnx(ckpt, tmp_path / "model.onnx")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_check(proto):
        raise onnx.checker.ValidationError("broken graph")

    monkeypatch.setattr(onnx.checker, "check_model", broken_check)
    with pytest.raises(onnx.checker.ValidationError, match="broken graph"):
        export_onnx(ckpt, tmp_path / "model.onnx")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert {first.onnx.name, first.stats.name} <= set(before)


def test_graph_contract_and_metadata(ckpt, exported):
    proto = onnx.load(str(exported.onnx))
    onnx.checker.check_model(proto)
    assert {op.domain or "ai.onnx": op.version for op in proto.opset_import}["ai.onnx"] == 17
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "images" and dims == ["batch", 3, *SIZE]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8 and out.name == "code"
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["topoloc"])
    on_disk = json.loads(exported.stats.read_text())
    _, normalizer, _ = load_model(ckpt)
    assert meta == on_disk and meta["normalizer"] == json.loads(json.dumps(normalizer.state_dict()))
    assert meta["frame"] == {"lat_deg": 46.3705, "lon_deg": 7.065, "h_m": 1410.0} and meta["opset"] == 17


def test_numpy_decoder_matches_the_normaliser(ckpt, exported):
    _, normalizer, _ = load_model(ckpt)
    k = exported.metadata["code_size"]
    assert exported.metadata["rotation"] == normalizer.rotation and k == normalizer.code_dim
    codes = np.random.default_rng(0).normal(size=(50, k))
    expected = normalizer.decode(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(decode_pose(codes, exported.metadata), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rotation", ["6d", "quat", "log_quat"])
def test_numpy_decoder_matches_every_rotation_code(rotation):
    poses = FRAME.cesium_to_c2w(load_preset("comballaz-LHS")[:40])
    normalizer = PoseNormalizer.fit(poses, rotation=rotation)
    codes = np.random.default_rng(1).normal(size=(50, normalizer.code_dim))
    expected = normalizer.decode(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(decode_pose(codes, normalizer.state_dict()), expected, rtol=0, atol=1e-6)
    # The encoded training poses come back through the numpy decoder.
    np.testing.assert_allclose(decode_pose(normalizer.encode(poses), normalizer.state_dict()), poses, atol=1e-6)
    state = normalizer.state_dict()
    if rotation == "log_quat":  # states written before the rotation code existed decode as log_quat
        state.pop("rotation")
        np.testing.assert_allclose(decode_pose(codes, state), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rotation", ["log_quat", "quat", "6d"])
def test_numpy_decoder_against_scipy(rotation):
    rng = np.random.default_rng(1)
    r0 = Rotation.random(random_state=2).as_matrix()
    rel = Rotation.random(20, random_state=3)
    if rotation == "log_quat":  # AtLoc: u = (angle / 2) * axis
        rot_code = rel.as_rotvec() / 2.0
    elif rotation == "quat":  # scipy is scalar-last (x, y, z, w); topoloc (w, x, y, z), any norm
        rot_code = np.roll(rel.as_quat(), 1, axis=1) * rng.uniform(0.5, 2.0, (20, 1))
    else:  # Zhou et al.: the first two columns, column 0 then column 1, any scale / skew of column 1
        m = rel.as_matrix()
        rot_code = np.concatenate([m[:, :, 0] * 3.0, m[:, :, 1] + 0.4 * m[:, :, 0]], axis=1)
    t_code = rng.normal(size=(20, 3))
    stats = {"mean_m": [1.0, 2.0, 3.0], "std_m": [10.0, 20.0, 5.0], "reference_rotation": r0.ravel().tolist(),
             "rotation": rotation}
    c2w = decode_pose(np.concatenate([t_code, rot_code], axis=1), stats)
    np.testing.assert_allclose(c2w[:, :3, :3], r0 @ rel.as_matrix(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(c2w[:, :3, 3], t_code * [10.0, 20.0, 5.0] + [1.0, 2.0, 3.0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., "):
        decode_pose(np.zeros((2, 5)), stats)


def test_decoder_geodesy_against_pyproj():
    rows = load_preset("comballaz-2021-03-27-winter")[::50]
    c2w_enu = FRAME.cesium_to_c2w(rows)
    c2w_ecef = c2w_enu_to_ecef(c2w_enu, FRAME.to_dict())
    np.testing.assert_allclose(c2w_ecef, FRAME.c2w_enu_to_ecef(c2w_enu), rtol=0, atol=1e-6)
    np.testing.assert_allclose(c2w_ecef[:, :3, 3], rows[:, :3], rtol=0, atol=1e-6)
    lon, lat, h = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*rows[:, :3].T)
    got = ecef_to_wgs84(*rows[:, :3].T)
    np.testing.assert_allclose(got[0], lat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[1], lon, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[2], h, rtol=0, atol=1e-4)


def test_copied_decoder_runs_without_torch(exported, tmp_path):
    codes = np.random.default_rng(4).normal(size=(3, exported.metadata["code_size"]))
    np.save(tmp_path / "codes.npy", codes)
    script = (
        "import sys, json, importlib.util, numpy as np\n"
        "sys.modules['torch'] = None  # any `import torch` now fails\n"
        f"spec = importlib.util.spec_from_file_location('dec', {str(exported.decoder)!r})\n"
        "dec = importlib.util.module_from_spec(spec); spec.loader.exec_module(dec)\n"
        f"stats = json.load(open({str(exported.stats)!r}))\n"
        f"c2w = dec.decode_pose(np.load({str(tmp_path / 'codes.npy')!r}), stats)\n"
        "print(json.dumps(c2w.tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)), decode_pose(codes, exported.metadata), atol=1e-12)


def test_cli_export_and_errors(ckpt, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "drone.onnx")]) == 0
    out = capsys.readouterr().out
    assert "opset 17" in out and "uint8 (batch, 3, 32, 48)" in out
    assert {p.name for p in tmp_path.iterdir()} == {"drone.onnx", "drone.json", "topoloc_pose_decoder.py"}
    bad = tmp_path / "notes.txt"
    bad.write_text("not a checkpoint")
    for args, named in ((["--checkpoint", str(bad), "--out", str(tmp_path / "x.onnx")], "notes.txt"),
                        (["--checkpoint", str(ckpt), "--out", str(tmp_path / "x.pt")], "x.pt")):
        with pytest.raises(SystemExit) as exc:
            main(["export", *args])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and named in err and len(err.strip().splitlines()) == 1, err


def test_bench_inference_runs(capsys):
    """The latency benchmark runs end to end at a tiny iteration count (figures are the lead's to take)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_inference.py"
    spec = importlib.util.spec_from_file_location("bench_inference", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--iters", "1", "--warmup", "0", "--cases", "0", "--threads", "1", "--no-cuda"])
    out = capsys.readouterr().out
    assert "torch / ort" in out and "onnxruntime" in out
    (line,) = [row for row in out.splitlines() if row.startswith("demo cpu model 64x96 ")]
    assert "cpu 1 thr" in line and float(line.split()[-1]) > 0
    # the two runtimes give the same pose code, to float32 rounding
    (said,) = [row for row in out.splitlines() if row.startswith("demo cpu model 64x96: largest |torch - onnxruntime|")]
    assert float(said.split()[-1]) < 1e-4, said


def test_bench_predict_runs(capsys, monkeypatch):
    """The channels_last benchmark runs end to end at a tiny size (figures are the lead's to take)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_predict.py"
    spec = importlib.util.spec_from_file_location("bench_predict", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "CASES", bench.CASES[:1])
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["bench_predict.py", "--images", "8", "--repeats", "1", "--batch-size", "4"])
    bench.main()
    (line,) = [row for row in capsys.readouterr().out.splitlines() if row.startswith("| demo cpu model 64x96")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "cpu" and float(cells[2]) > 0 and float(cells[3]) > 0 and float(cells[5]) < 1.0


@pytest.mark.filterwarnings("ignore:Constant folding - Only steps=1:UserWarning")  # torch's exporter on the reflect pad
def test_local_contrast_exports(tmp_path):
    """A model with AtLoc(local_contrast=...) (reflect padding, a fixed blur kernel) gives the same poses under ONNX."""
    torch.manual_seed(1)
    ckpt = _checkpoint(tmp_path / "last.pt", {**KWARGS, "local_contrast": 3.0})
    loaded, _, _ = load_model(ckpt)
    assert loaded.config["local_contrast"] == 3.0
    out = export_onnx(ckpt, tmp_path / "lc.onnx")
    images = torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = loaded(loaded.normalize(images)).numpy()
    got = _session(out.onnx).run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("frame, expected", [
    ("comballaz", r"frame: expected the origin \{'lat_deg', 'lon_deg', 'h_m'\} \(stats\['frame'\] of the export "
                  r"JSON\), "
                  r"got 'comballaz'"),
    ({}, r"frame: expected the origin .* got \{\}"),
    ({"lat_deg": "north", "lon_deg": 7.0, "h_m": 1410.0},
     r"frame: expected numbers for \('lat_deg', 'lon_deg', 'h_m'\)"),
    ({"lat_deg": 7.065, "lon_deg": 246.37, "h_m": 1410.0}, r"longitude in \[-180, 180\]"),
    ({"lat_deg": float("nan"), "lon_deg": 7.0, "h_m": 1410.0}, r"latitude in \[-90, 90\]"),
])
def test_the_standalone_decoder_refuses_a_frame_that_is_not_an_origin_record(frame, expected):
    """The exported decoder runs without topoloc: a frame name (which topoloc itself accepts) or a broken record is
    refused in one line, not a TypeError from indexing a string."""
    with pytest.raises(ValueError, match=expected):
        c2w_enu_to_ecef(np.eye(4), frame)
    with pytest.raises(ValueError, match=r"c2w_enu: expected poses of shape \(\.\.\., 4, 4\), got \(3, 3\)"):
        c2w_enu_to_ecef(np.eye(3), FRAME.to_dict())


def test_decoder_geodesy_on_the_polar_axis_and_far_from_the_surface():
    # On the polar axis x = y = 0, so the latitude's cosine is 0: the height must not be divided by it.
    points = np.array([[0.0, 0.0, 6356752.314245 + 500.0], [0.0, 0.0, -6356752.314245 - 20.0],
                       [1e-3, 0.0, 6356752.314245], [6378137.0 + 99_000.0, 0.0, 0.0]])
    lon, lat, h = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*points.T)
    got = ecef_to_wgs84(*points.T)
    np.testing.assert_allclose(got[0], lat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[2], h, rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[2][:2], [500.0, 20.0], rtol=0, atol=1e-4)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _by_hand(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to the network's input with the ImageNet constants written out: (x / 255 - mean) / std."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def test_onnx_normalises_with_the_models_own_per_channel_mean_and_std(tmp_path):
    # The test backbone's mean = std = 0.5 in every channel hides a swapped mean / std or reversed
    # channels: with ImageNet's constants each channel differs and mean != std.
    torch.manual_seed(1)
    model = create_model("atloc_resnet18", **KWARGS).eval()
    model.set_input_contract(image_size=SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    normalizer = PoseNormalizer.fit(FRAME.cesium_to_c2w(load_preset("comballaz-LHS")[:60]))
    out = export_onnx(model, tmp_path / "imagenet.onnx", normalizer=normalizer, image_size=SIZE, frame="comballaz")
    g = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8, generator=g)
    images[:, 0] //= 4  # channels of clearly different levels: not a grey image
    images[:, 2] = 255 - images[:, 2] // 4
    with torch.no_grad():
        expected = model(_by_hand(images)).numpy()
        # the test can tell: mean and std swapped, or the mean's channels reversed, move the output
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        swapped = model((images.float() / 255.0 - std) / mean).numpy()
        flipped = model((images.float() / 255.0 - mean.flip(1)) / std).numpy()
    assert np.abs(swapped - expected).max() > 1e-2 and np.abs(flipped - expected).max() > 1e-2
    got = _session(out.onnx).run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_load_model_applies_the_normalisation_the_checkpoint_records(tmp_path):
    torch.manual_seed(0)
    model = create_model("atloc_resnet18", **KWARGS).eval()
    assert model.backbone.normalization[0] != pytest.approx(list(IMAGENET_MEAN))  # the default differs
    normalizer = PoseNormalizer.fit(FRAME.cesium_to_c2w(load_preset("comballaz-LHS")[:60]))
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=KWARGS, image_size=SIZE, device="cpu")
    state = {"model_name": "atloc_resnet18", "model_kwargs": KWARGS, "model_state": model.state_dict(),
             "normalizer": normalizer.state_dict(), "config": cfg.to_dict(),
             "model_config": {"image_size": list(SIZE), "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}
    # the weights' buffers still hold the backbone's default: only model_config records ImageNet's
    path = save_checkpoint(state, tmp_path / "imagenet.pt")
    loaded, _, _ = load_model(path)
    pixel = torch.tensor([255, 0, 128], dtype=torch.uint8).view(1, 3, 1, 1)
    hand = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(loaded.normalize(pixel).flatten().numpy(), hand, rtol=1e-6)
    np.testing.assert_allclose(loaded.prepare(pixel).flatten().numpy(), hand, rtol=1e-6)


def test_the_asked_opset_is_the_graphs_and_an_upper_case_suffix_is_an_onnx_file(ckpt, tmp_path):
    out = export_onnx(ckpt, tmp_path / "model.ONNX", opset=18)  # 18: above the default 17, within 11..21
    proto = onnx.load(str(out.onnx))
    assert {op.domain or "ai.onnx": op.version for op in proto.opset_import}["ai.onnx"] == 18
    assert out.metadata["opset"] == 18 and out.stats == tmp_path / "model.json"


def test_float_input_metadata_says_float32_in_zero_to_one(ckpt, tmp_path):
    out = export_onnx(ckpt, tmp_path / "f.onnx", input_dtype="float")
    (inp,) = onnx.load(str(out.onnx)).graph.input
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.metadata["input"]["dtype"] == "float32" and out.metadata["input"]["range"] == "0..1"
    # the geoid undulation of western Switzerland (EGM96/EGM2008 near Comballaz: about 49-50 m), for
    # photos whose EXIF altitude is above sea level
    assert out.metadata["geoid_offset_m"] == pytest.approx(49.5, abs=1.0)


def test_a_model_in_training_mode_exports_the_poses_of_its_eval_mode(ckpt, tmp_path):
    # A training callback exports a model in train(): the graph must be the eval network, its
    # batch-norm running statistics as trained (not moved by a forward pass in training mode).
    model, normalizer, cfg = load_model(ckpt)
    model.train()
    out = export_onnx(model, tmp_path / "m.onnx", normalizer=normalizer, image_size=cfg.image_size, frame="comballaz")
    images = torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(11))
    reference, _, _ = load_model(ckpt)  # in eval mode, untouched
    with torch.no_grad():
        expected = reference(reference.normalize(images)).numpy()
    got = _session(out.onnx).run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_cli_export_flags_reach_the_graph(ckpt, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "f.onnx"), "--opset", "18",
                 "--input-dtype", "float"]) == 0
    proto = onnx.load(str(tmp_path / "f.onnx"))
    assert {op.domain or "ai.onnx": op.version for op in proto.opset_import}["ai.onnx"] == 18
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert "opset 18, input images float32" in capsys.readouterr().out
    # --frame is checked against the checkpoint's (comballaz): another is refused by its flag
    with pytest.raises(SystemExit) as exc:
        main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "e.onnx"), "--frame", "epfl"])
    assert exc.value.code == 2 and "--frame: " in capsys.readouterr().err
    # a checkpoint that records no frame: exported in comballaz's, with the one-line warning saying so
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    del state["frame"]
    bare = save_checkpoint(state, tmp_path / "bare" / "last.pt")
    assert main(["export", "--checkpoint", str(bare), "--out", str(tmp_path / "b.onnx")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "does not record its training frame: assuming 'comballaz'" in err


def test_cli_export_writes_the_geoid_offset_asked_and_warns_of_the_default_far_from_switzerland(ckpt, tmp_path,
                                                                                               capsys):
    # model.json carried 49.5 m (western Switzerland) whatever the frame, and no flag changed it
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "g.onnx"), "--geoid-offset", "47"]) == 0
    assert json.loads((tmp_path / "g.json").read_text())["geoid_offset_m"] == 47.0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "h.onnx"), "--geoid-offset", "500"])
    assert exc.value.code == 2 and "--geoid-offset: expected a geoid undulation in metres within +-120, got 500" in (
        capsys.readouterr().err)
    # a model trained in a frame at Lyon (285 km from Switzerland's centre): the default is warned of, by its flag
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["frame"] = LocalFrame(45.76, 4.84, 200.0).to_dict()
    lyon = save_checkpoint(state, tmp_path / "lyon" / "last.pt")
    assert main(["export", "--checkpoint", str(lyon), "--out", str(tmp_path / "l.onnx")]) == 0
    err = capsys.readouterr().err
    assert "the default 49.5 m is the geoid undulation of Switzerland" in err and "(--geoid-offset)" in err
    assert json.loads((tmp_path / "l.json").read_text())["geoid_offset_m"] == 49.5
