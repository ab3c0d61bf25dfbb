"""topoloc.engine.checkpoint by hand: durable writes, load refusals, frames, RNG states, data records, load_model."""

from __future__ import annotations

import hashlib
import os
import random
import re
import stat
import warnings

import numpy as np
import pytest
import torch

from topoloc.data import PoseNormalizer
from topoloc.data.cache import ImageCache
from topoloc.engine import TrainConfig, train
from topoloc.engine.checkpoint import (CHECKPOINT_FORMAT, TrainingState, capture_rng_state, check_frame, data_record,
                                       frame_record, frames_differ, load_checkpoint, load_model, recorded_frame,
                                       restore_rng_state, save_checkpoint)
from topoloc.geodesy import LocalFrame
from topoloc.models import create_model

EPFL = {"name": "epfl", "lat_deg": 46.5191, "lon_deg": 6.5668, "h_m": 390.0}


# ----------------------------------------------------------------------------------- saving
def test_the_checkpoint_is_on_disk_whole_before_it_replaces_the_previous_one(tmp_path, monkeypatch):
    """A run killed by a power cut must find the previous checkpoint or the new one whole: the new file is
    flushed and fsynced, all of it, while the previous one is still in place."""
    path = tmp_path / "last.pt"
    save_checkpoint({"value": torch.tensor([1.0])}, path)
    before = path.read_bytes()
    synced, real_fsync = [], os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        synced.append(("folder" if stat.S_ISDIR(st.st_mode) else st.st_size, path.read_bytes() == before))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    save_checkpoint({"value": torch.arange(5000.0)}, path)  # ~20 kB, beyond Python's 8 kB write buffer
    monkeypatch.undo()
    # the new file whole while the previous one is in place, then the folder (the rename) once it is replaced
    assert synced == [(path.stat().st_size, True), ("folder", False)]
    assert torch.equal(load_checkpoint(path)["value"], torch.arange(5000.0))


# ----------------------------------------------------------------------------------- loading
def test_a_missing_checkpoint_or_a_folder_is_named_with_what_it_is(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(err.value) == f"load_checkpoint '{tmp_path / 'nope.pt'}': no such file"
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint(tmp_path)
    assert str(err.value) == f"load_checkpoint '{tmp_path}': a folder, expected a file"


def test_a_training_run_folder_given_as_the_checkpoint_names_the_checkpoints_in_it(tmp_path):
    # load_model("demo/runs/augmented") said only "a folder, expected a file"
    for name in ("last.pt", "best.pt", "log.csv"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint(tmp_path)
    assert str(err.value) == (f"load_checkpoint '{tmp_path}': a training run's folder, expected its checkpoint: "
                              f"'{tmp_path / 'best.pt'}' or '{tmp_path / 'last.pt'}'")


def test_a_checkpoint_written_on_a_gpu_loads_onto_the_cpu_by_default(tmp_path, monkeypatch):
    # torch.save records each storage's device ("cuda:0" for a GPU run's tensors) and torch.load puts it back there
    # unless map_location says otherwise: without map_location="cpu" this machine would refuse the file (no CUDA)
    # or fill a GPU. The file is written here as a GPU run writes it, its storages tagged "cuda:0".
    import torch.serialization

    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    path = save_checkpoint({"value": torch.arange(3.0)}, tmp_path / "gpu.pt")
    monkeypatch.undo()
    value = load_checkpoint(path)["value"]
    assert value.device == torch.device("cpu") and value.tolist() == [0.0, 1.0, 2.0]


def test_map_location_moves_the_tensors_where_asked(tmp_path):
    path = save_checkpoint({"value": torch.arange(3.0)}, tmp_path / "a.pt")
    assert load_checkpoint(path, map_location="meta")["value"].device == torch.device("meta")


def test_a_torch_file_that_is_not_a_topoloc_checkpoint_is_refused_naming_it_and_the_format_expected(tmp_path):
    expected = (" is not a topoloc checkpoint (expected format 'topoloc.checkpoint/1'; original AtLoc checkpoints "
                "load with AtLoc.from_atloc_checkpoint)")
    assert CHECKPOINT_FORMAT == "topoloc.checkpoint/1"
    for name, content in (("weights.pt", {"model_state": {"w": torch.zeros(2)}}),  # a dict without the format
                          ("other.pt", {"format": "topoloc.checkpoint/0"}),
                          ("tensor.pt", torch.zeros(2))):  # not a dict at all
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError) as err:
            load_checkpoint(tmp_path / name)
        assert str(err.value) == f"load_checkpoint: '{tmp_path / name}'" + expected


def test_an_empty_file_is_named_with_torchs_error(tmp_path):
    # torch.load of a 0-byte file raises EOFError with no message: the type alone, no dangling ": "
    empty = tmp_path / "last.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError) as err:
        load_checkpoint(empty)
    assert str(err.value) == (f"load_checkpoint: could not read '{empty}' as a torch checkpoint: not a file written by "
                              "torch.save (EOFError)")
    assert isinstance(err.value.__cause__, EOFError)


def test_a_checkpoint_cut_short_is_called_cut_short(tmp_path):
    # a copy that stopped part way: torch says "failed finding central directory", and the file was
    # called "not a file written by torch.save", which it is
    whole = save_checkpoint({"value": torch.arange(1000.0)}, tmp_path / "whole.pt").read_bytes()
    assert whole[:4] == b"PK\x03\x04"  # torch.save writes a zip archive
    cut = tmp_path / "last.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError) as err:
        load_checkpoint(cut)
    assert str(err.value) == (f"load_checkpoint: could not read '{cut}' as a torch checkpoint: a zip archive that "
                              "is cut short or damaged, as a torch.save that did not finish or a copy that stopped "
                              "part way leaves it; it cannot be read")


def test_torchs_error_is_given_as_its_type_and_first_line_without_colours(tmp_path, monkeypatch):
    path = save_checkpoint({}, tmp_path / "last.pt")
    cause = OSError("\x1b[1mread failed\x1b[0m at byte 12\nsecond line of advice")

    def failing_load(*args, **kwargs):
        raise cause

    monkeypatch.setattr(torch, "load", failing_load)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert str(err.value) == (f"load_checkpoint: could not read '{path}' as a torch checkpoint: not a file written by "
                              "torch.save (OSError: read failed at byte 12)")
    assert err.value.__cause__ is cause


# ----------------------------------------------------------------------------------- frames
def test_frame_record_of_an_origin_that_is_not_topos_has_no_name():
    assert frame_record(LocalFrame(46.0, 7.0, 500.0)) == {"name": None, "lat_deg": 46.0, "lon_deg": 7.0, "h_m": 500.0}
    assert frame_record(None) is None


@pytest.mark.parametrize("key", ["lat_deg", "lon_deg", "h_m"])
def test_frames_differ_in_any_one_coordinate_either_way_beyond_1e_9(key):
    for offset, differ in ((1.0, True), (-1.0, True), (1e-8, True), (-1e-8, True), (1e-10, False), (-1e-10, False)):
        other = {**EPFL, key: EPFL[key] + offset}
        assert frames_differ(EPFL, other) is differ, (key, offset)
        assert frames_differ(other, EPFL) is differ, (key, offset)


class _Model:
    def __init__(self, frame):
        self.config = {"frame": frame}


def test_check_frame_names_the_checkpoint_both_frames_and_the_frame_to_pass():
    with pytest.raises(ValueError) as err:
        check_frame(_Model(EPFL), LocalFrame.named("comballaz"), "runs/a/last.pt")
    assert str(err.value) == ("frame: runs/a/last.pt was trained in the epfl frame, not in comballaz; its predictions "
                              "are positions about the epfl origin. Evaluate with frame='epfl' (CLI: --frame)")


def test_check_frame_gives_an_unnamed_origin_by_its_coordinates():
    custom = {"name": None, "lat_deg": 46.0, "lon_deg": 7.0, "h_m": 500.0}
    with pytest.raises(ValueError) as err:
        check_frame(_Model(custom), LocalFrame.named("epfl"), "runs/a/last.pt")
    assert str(err.value) == ("frame: runs/a/last.pt was trained in the lat 46.0, lon 7.0, h 500.0 m frame, not in "
                              "epfl; its predictions are positions about the lat 46.0, lon 7.0, h 500.0 m origin. "
                              "Evaluate with frame='LocalFrame(...)' (CLI: --frame)")


def test_check_frame_without_a_frame_to_check_accepts_the_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_frame(_Model(EPFL), None, "runs/a/last.pt")
        check_frame(_Model(EPFL), LocalFrame.named("epfl"), "runs/a/last.pt")


def test_check_frame_warns_naming_the_checkpoint_when_the_model_records_no_frame():
    for model in (_Model(None), object()):  # a frame of None, and a model with no config at all
        with pytest.warns(UserWarning) as record:
            check_frame(model, LocalFrame.named("epfl"), "runs/a/last.pt")
        assert [str(w.message) for w in record] == [
            "runs/a/last.pt: the checkpoint does not record the local frame it was trained in; evaluating in "
            f"{LocalFrame.named('epfl')} on trust"]


# ----------------------------------------------------------------------------------- RNG states
def test_rng_round_trip_keeps_the_cached_gaussians():
    # numpy's legacy generator and Python's random.gauss make normals in pairs and keep the second for the next
    # call: a resumed run must draw that same cached value, not start a new pair.
    np.random.seed(3)
    random.seed(3)
    np.random.standard_normal()
    random.gauss(0.0, 1.0)
    assert np.random.get_state()[3] == 1 and random.getstate()[2] is not None  # a normal is cached in each
    state = capture_rng_state()
    first = (np.random.standard_normal(), random.gauss(0.0, 1.0), torch.randn(2))
    np.random.seed(4)
    random.seed(4)
    torch.manual_seed(4)
    restore_rng_state(state)
    again = (np.random.standard_normal(), random.gauss(0.0, 1.0), torch.randn(2))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])


def test_rng_restore_on_another_number_of_gpus_restores_the_shared_indices(monkeypatch):
    # A checkpoint written on a 2-GPU machine, resumed on a 1-GPU one: device 0's generator (a one-process run's)
    # continues; the state of device 1, which this machine lacks, is dropped. The CUDA calls are recorded here,
    # as this machine may have no GPU.
    state = capture_rng_state()
    state["cuda"] = [torch.full((16,), 7, dtype=torch.uint8), torch.full((16,), 9, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda new_state, device="cuda": restored.append((device, new_state)))
    restore_rng_state(state)
    assert [device for device, _ in restored] == [0]
    assert torch.equal(restored[0][1], torch.full((16,), 7, dtype=torch.uint8))
    # and on a 3-GPU machine the two recorded devices are restored, each its own state
    restored.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    restore_rng_state(state)
    assert [(device, int(new_state[0])) for device, new_state in restored] == [(0, 7), (1, 9)]


# ----------------------------------------------------------------------------------- data records
def _cache():
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[0, 0, 0, 0], images[0, 2, 1, 1] = 200, 100  # pixel sum 300
    images[1] = 255  # pixel sum 255 * 12 = 3060
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([1.5, -2.0, 30.0])
    return ImageCache(images, c2w)


def test_data_record_is_the_sha256_of_the_poses_then_each_images_pixel_sum():
    # worked by hand from the documented layout: the (N, 4, 4) poses as float64 bytes, then one little-endian
    # int64 per image, its pixel sum (300 and 3060 here)
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[1, :3, 3] = [1.5, -2.0, 30.0]
    expected = hashlib.sha256(poses.astype("<f8").tobytes() + np.array([300, 3060], dtype="<i8").tobytes())
    poses_only = hashlib.sha256(poses.astype("<f8").tobytes())  # the poses alone, which evaluate compares
    assert data_record(_cache()) == {"images": 2, "sha256": expected.hexdigest(),
                                     "poses_sha256": poses_only.hexdigest()}


def test_data_record_changes_with_one_pixel_one_pose_or_the_order():
    base = data_record(_cache())
    pixel, pose, order = _cache(), _cache(), _cache()
    pixel.images[1, 1, 0, 0] = 254
    pose.c2w[1, 2, 3] = 30.001
    order.images, order.c2w = order.images.flip(0), order.c2w.flip(0)
    records = [data_record(c) for c in (pixel, pose, order)]
    assert all(r["images"] == 2 and r["sha256"] != base["sha256"] for r in records)
    assert [r["poses_sha256"] != base["poses_sha256"] for r in records] == [False, True, True]


# ----------------------------------------------------------------------------------- reading back
def test_a_checkpoint_predating_the_frame_and_data_records_resumes(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    state = load_checkpoint(run / "last.pt")
    del state["frame"], state["training_data"]  # written before either was recorded
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, run / "last.pt")
    read = TrainingState.read(run / "last.pt")
    assert (read.frame, read.training_data, read.epoch, read.step) == (None, None, 1, 0)
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), ds).history) == 2


def test_a_checkpoint_predating_the_poses_digest_resumes_without_a_data_change(tiny_config, pose_images, tmp_path):
    # its training_data record has no poses_sha256: the keys it has agree, so nothing to refuse
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    state = load_checkpoint(run / "last.pt")
    del state["training_data"]["poses_sha256"]
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, run / "last.pt")
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), ds).history) == 2


def test_recorded_frame_is_the_top_level_one_else_the_configs():
    comballaz = frame_record(LocalFrame.named("comballaz"))
    assert recorded_frame({"frame": EPFL, "config": {"frame": comballaz}}) == EPFL
    assert recorded_frame({"frame": None, "config": {"frame": comballaz}}) == comballaz
    assert recorded_frame({"config": {"lr": 1e-3}}) is None and recorded_frame({}) is None


KWARGS = {"backbone": "test_resnet", "feat_dim": 32}


def _write(path, model_kwargs=KWARGS, model=None):
    """A checkpoint of an untrained tiny AtLoc (weights of ``model``, else of one built from KWARGS)."""
    torch.manual_seed(0)
    model = model if model is not None else create_model("atloc_resnet18", **KWARGS)
    poses = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    poses[:, :3, 3] = torch.arange(3.0, dtype=torch.float64)[:, None]  # 0, 1, 2 m along each axis
    normalizer = PoseNormalizer.fit(poses)
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=KWARGS, image_size=(32, 48), device="cpu")
    state = {"model_name": "atloc_resnet18", "model_kwargs": model_kwargs, "model_state": model.state_dict(),
             "normalizer": normalizer.state_dict(), "config": cfg.to_dict()}
    return save_checkpoint(state, path), model


def test_load_model_does_not_load_the_backbone_weights_a_run_started_from(tmp_path):
    # A run started from a local weights file (pretrained=path), loaded where that file is not: the checkpoint
    # holds every weight, and the file is neither needed nor read.
    gone = str(tmp_path / "gone" / "resnet.pth")
    path, trained = _write(tmp_path / "last.pt", {**KWARGS, "pretrained": gone})
    model, _, _ = load_model(path)
    assert not model.training
    mine = model.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in trained.state_dict().items())


def test_load_model_names_the_file_and_the_model_when_the_weights_do_not_fit(tmp_path):
    path, _ = _write(tmp_path / "last.pt", {**KWARGS, "feat_dim": 64})  # weights of a feat_dim=32 model
    with pytest.raises(ValueError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(f"load_model: the weights in '{path}' do not fit atloc_resnet18(")
    assert "'feat_dim': 64" in message and "size mismatch" in message


def test_load_model_refuses_weights_that_are_not_finite(tmp_path):
    # `topoloc export` wrote an ONNX model of such weights and exited 0; localise and evaluate failed later, on
    # its NaN poses, without naming the checkpoint
    model = create_model("atloc_resnet18", **KWARGS)
    with torch.no_grad():
        model.projection.weight[3, 5] = float("nan")
    path, _ = _write(tmp_path / "last.pt", model=model)
    with pytest.raises(ValueError, match=re.escape(f"load_model: the weights in '{path}' are not finite "
                                                   "('projection.weight' holds NaN or inf)")):
        load_model(path)
    with torch.no_grad():
        model.projection.weight[3, 5] = float("-inf")
    path, _ = _write(tmp_path / "inf.pt", model=model)
    with pytest.raises(ValueError, match="'projection.weight' holds NaN or inf"):
        load_model(path)


def test_load_model_names_the_file_and_the_missing_keys(tmp_path):
    # a checkpoint of the right format without its normaliser ended in a KeyError traceback
    path, _ = _write(tmp_path / "last.pt")
    state = torch.load(path, weights_only=False)
    del state["normalizer"], state["config"]
    torch.save(state, tmp_path / "cut.pt")
    with pytest.raises(ValueError, match=re.escape(f"load_model: '{tmp_path / 'cut.pt'}' is a topoloc checkpoint "
                                                   "without ['normalizer', 'config']: damaged")):
        load_model(tmp_path / "cut.pt")


def test_load_model_names_the_file_of_a_config_it_does_not_know(tmp_path):
    path, _ = _write(tmp_path / "last.pt")
    state = torch.load(path, weights_only=False)
    state["config"]["a_later_field"] = 1
    torch.save(state, tmp_path / "later.pt")
    with pytest.raises(ValueError) as err:
        load_model(tmp_path / "later.pt")
    message = str(err.value)
    assert message.startswith(f"load_model: '{tmp_path / 'later.pt'}': TrainConfig: unknown field(s) ['a_later_field']")
    assert message.endswith("(a checkpoint of a newer topoloc?)")


def test_load_model_puts_the_model_on_the_device_asked(tmp_path):
    path, _ = _write(tmp_path / "last.pt")
    model, _, _ = load_model(path, device="meta")
    assert {p.device for p in model.parameters()} == {torch.device("meta")}
