"""train_side_by_side: the same weights as `train` in this process, errors and crashes brought back."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import queue as queue_module
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from topoloc.data.cache import as_cache
from topoloc.engine import ResumeSettingsError, load_checkpoint, train, train_side_by_side

side_by_side = importlib.import_module("topoloc.engine.side_by_side")


@pytest.fixture
def cache(pose_images):
    # an ImageCache, not the conftest's dataset: the spawned processes must be able to import what they unpickle
    return as_cache(pose_images(n=16, size_hw=(32, 32)), (32, 32))


def _weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model_state"]


def test_side_by_side_runs_train_the_weights_of_runs_in_this_process(tiny_config, cache, tmp_path):
    configs = {"a": tiny_config(out_dir=str(tmp_path / "a"), seed=0),
               "b": tiny_config(out_dir=str(tmp_path / "b"), seed=1, lr=3e-3)}
    side = train_side_by_side(configs, cache, threads=1, progress=False)
    assert set(side) == {"a", "b"}
    for label, cfg in configs.items():
        here = train(cfg.replace(out_dir=str(tmp_path / f"here_{label}")), cache)  # one thread (conftest)
        ours, ref = _weights(side[label]), _weights(here.final_checkpoint)
        assert ours.keys() == ref.keys()
        for key in ref:
            assert torch.equal(ours[key], ref[key]), (label, key)
    # and the two runs did differ (different seed and rate), so the comparison is not between copies
    a, b = _weights(side["a"]), _weights(side["b"])
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_a_refused_resume_comes_back_with_its_run_and_stops_the_others(tiny_config, cache, tmp_path):
    train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1, lr=1e-3), cache)
    configs = {"a": tiny_config(out_dir=str(tmp_path / "a"), epochs=1, lr=2e-3, resume=True),  # another rate
               "b": tiny_config(out_dir=str(tmp_path / "b"), epochs=400)}           # minutes, were it not stopped
    t0 = time.perf_counter()
    with pytest.raises(ResumeSettingsError) as info:
        train_side_by_side(configs, cache, threads=1, progress=False)
    assert info.value.run == "a"
    assert ("lr", 1e-3, 2e-3) in info.value.changes
    assert any("in the process of run 'a'" in note for note in info.value.__notes__)
    assert time.perf_counter() - t0 < 120
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("topoloc-train-")]


def test_a_killed_run_is_named_and_the_others_stopped(tiny_config, cache, tmp_path):
    configs = {"a": tiny_config(out_dir=str(tmp_path / "a"), epochs=400),
               "b": tiny_config(out_dir=str(tmp_path / "b"), epochs=400)}

    def kill_a():  # as the kernel's OOM killer would: no word from the process
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for p in multiprocessing.active_children():
                if p.name == "topoloc-train-a" and (tmp_path / "b" / "config.yaml").is_file():
                    p.kill()
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a)
    killer.start()
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"process of run 'a' ended without a result \(exit code -9"):
        train_side_by_side(configs, cache, threads=1, progress=False)
    killer.join()
    assert time.perf_counter() - t0 < 60  # found out at once, although b's steps kept the queue busy
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("topoloc-train-")]  # b stopped


def test_refusals(tiny_config, cache, tmp_path):
    with pytest.raises(ValueError, match="configs: expected at least one"):
        train_side_by_side({}, cache)
    same = tiny_config(out_dir=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="each run needs its own out_dir"):
        train_side_by_side({"a": same, "b": same}, cache)
    with pytest.raises(ValueError, match=r"threads: expected a positive int, got 0"):
        train_side_by_side({"a": same}, cache, threads=0)
    # a list of configs (the README's "train_side_by_side(configs, train_set)") failed deep inside, on .items()
    with pytest.raises(TypeError, match=r"configs: expected a mapping of run label -> TrainConfig.*got list"):
        train_side_by_side([same], cache)
    with pytest.raises(TypeError, match=r"configs: expected a mapping .*got a mapping holding \['dict'\]"):
        train_side_by_side({"a": {"epochs": 1}}, cache)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the runs' processes in /proc (Linux)")
def test_runs_stop_when_the_process_that_started_them_is_killed(tmp_path, monkeypatch):
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, torch\n"
        "from topoloc.data.cache import ImageCache\n"
        "from topoloc.engine import TrainConfig, train_side_by_side\n"
        "if __name__ == '__main__':\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    c2w = torch.eye(4, dtype=torch.float64).repeat(16, 1, 1)\n"
        "    c2w[:, :3, 3] = torch.rand(16, 3, generator=g, dtype=torch.float64) * 40\n"
        "    cache = ImageCache(torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8, generator=g), c2w)\n"
        "    cfg = dict(model='atloc_resnet18', model_kwargs={'backbone': 'test_resnet', 'feat_dim': 32}, epochs=400,\n"
        "               batch_size=8, image_size=(32, 32), device='cpu', progress=False, tensorboard=False)\n"
        "    configs = {k: TrainConfig(out_dir=sys.argv[1] + '/' + k, **cfg) for k in 'ab'}\n"
        "    train_side_by_side(configs, cache, threads=1, progress=False)\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / k / "config.yaml").is_file() for k in "ab"):  # both runs are training
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        runs = _children(parent.pid)
        assert len(runs) >= 2
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in runs):
        assert time.monotonic() < deadline, "the runs went on training after their parent was killed"
        time.sleep(0.2)
    # The killed parent could not remove its data file; the next call removes it, not a live process's.
    (left,) = tmp.glob("topoloc-side-by-side-*.pkl")
    live = tmp / f"topoloc-side-by-side-{os.getpid()}-x.pkl"
    older = tmp / "topoloc-side-by-side-k2_9xq1a.pkl"  # a name without the process id, from before
    live.write_bytes(b"")
    older.write_bytes(b"")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    mine = Path(side_by_side._write_data_file([1, 2], None))
    assert not left.exists() and not older.exists() and live.exists()
    assert mine.parent == tmp and pickle.loads(mine.read_bytes()) == ([1, 2], None)


def test_a_script_without_the_main_guard_gets_an_error_not_a_hang(tmp_path):
    # Each run's process imports the calling script again; at its top level the call starts processes
    # from inside that import, which Python refuses. The data (here 3 MiB of numpy normals: more than a
    # pipe holds) once went with the process and left the parent blocked for ever in `Process.start`.
    script = tmp_path / "no_guard.py"
    script.write_text(
        "import sys, numpy, torch\n"
        "from topoloc.data.cache import ImageCache\n"
        "from topoloc.engine import TrainConfig, train_side_by_side\n"
        "g = torch.Generator().manual_seed(0)\n"
        "c2w = torch.eye(4, dtype=torch.float64).repeat(256, 1, 1)\n"
        "c2w[:, :3, 3] = torch.rand(256, 3, generator=g, dtype=torch.float64) * 40\n"
        "cache = ImageCache(torch.randint(0, 255, (256, 3, 32, 32), dtype=torch.uint8, generator=g), c2w)\n"
        "cfg = dict(model='atloc_resnet18', model_kwargs={'backbone': 'test_resnet', 'feat_dim': 32}, epochs=1,\n"
        "           batch_size=8, image_size=(32, 32), device='cpu', progress=False, tensorboard=False)\n"
        "configs = {k: TrainConfig(out_dir=sys.argv[1] + '/' + k, **cfg) for k in 'ab'}\n"
        "train_side_by_side(configs, cache, normals=numpy.zeros((256, 3, 32, 32), numpy.float32), threads=1,\n"
        "                   progress=False)\n")
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("train_side_by_side hung in a script without the `if __name__ == '__main__':` guard")
    assert done.returncode != 0
    assert "ended without a result (exit code 1" in done.stderr
    assert "put the call under `if __name__ == \"__main__\":`" in done.stderr
    assert "can only join a started process" not in done.stderr  # the child's own error is not hidden


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the parent's pid, after the state
            found.append(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_runs_steps_count_towards_all_of_its_epochs():
    news = queue_module.Queue()
    relay = side_by_side._Relay(news, "a", os.getppid())
    trainer = SimpleNamespace(config=SimpleNamespace(epochs=3), steps_per_epoch=5)
    relay.step({"trainer": trainer, "global_step": 7})
    assert news.get_nowait() == ("step", "a", 7, 15)  # 3 epochs x 5 steps


def test_a_runs_process_trains_on_its_threads_with_the_normals_relight_needs(tiny_config, tmp_path, monkeypatch):
    seen = {}

    def fake_train(config, train_set, callbacks, normals):
        seen.update(threads=torch.get_num_threads(), train_set=train_set, normals=normals)
        return SimpleNamespace(final_checkpoint=tmp_path / "last.pt")

    monkeypatch.setattr(importlib.import_module("topoloc.engine.train"), "train", fake_train)
    data_file = tmp_path / "data.pkl"
    data_file.write_bytes(pickle.dumps(("images", "normals")))
    news = queue_module.Queue()
    threads, root = torch.get_num_threads(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        side_by_side._run("a", tiny_config(relight=0.5), str(data_file), threads + 2, news, os.getppid(), None)
    finally:
        torch.set_num_threads(threads)
        root.handlers[:], root.level = handlers, level
    assert news.get_nowait() == ("done", "a", str(tmp_path / "last.pt"))
    assert seen == {"threads": threads + 2, "train_set": "images", "normals": "normals"}


def test_a_process_that_ended_cleanly_without_a_result_is_an_error_once_the_queue_is_drained():
    procs = {"a": SimpleNamespace(is_alive=lambda: False, exitcode=0)}
    side_by_side._check_alive(procs, {}, drained=False)  # its result may still be in the queue
    with pytest.raises(RuntimeError, match="run 'a' ended without a result"):
        side_by_side._check_alive(procs, {}, drained=True)


class _Started(Exception):
    """Raised where a run's process would be made; its argument: the run's torch threads."""


class _NoProcesses:
    """A multiprocessing context that makes no process: `_Started` with the first run's threads."""

    def Queue(self):
        return queue_module.Queue()

    def Process(self, target, name, args):
        raise _Started(args[3])


@pytest.fixture
def no_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(side_by_side.multiprocessing, "get_context", lambda method: _NoProcesses())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the data file is written here


def test_more_runs_than_threads_get_one_thread_each(tiny_config, tmp_path, monkeypatch, no_processes, caplog):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    configs = {k: tiny_config(out_dir=str(tmp_path / k)) for k in "abc"}
    with pytest.raises(_Started) as started, caplog.at_level(logging.WARNING, logger="topoloc.engine"):
        train_side_by_side(configs, [], progress=False)
    assert started.value.args == (1,)  # 2 threads // 3 runs, at least 1
    assert "3 runs side by side on 2 torch threads: each gets one" in caplog.text


def test_the_threads_left_over_go_to_the_first_runs(tiny_config, tmp_path, monkeypatch, scripted):
    # 16 threads, 3 runs: 6, 5, 5 (16 // 3 = 5 each left one idle before)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    context = scripted([("done", k, f"{k}.pt") for k in "abc"])
    train_side_by_side({k: tiny_config(out_dir=str(tmp_path / k)) for k in "abc"}, [], progress=False)
    assert context.threads == {"a": 6, "b": 5, "c": 5}


def test_a_cuda_run_is_refused_where_cuda_is_available(tiny_config, monkeypatch, no_processes):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match=r"configs\['a'\].device: side-by-side runs share the CPU, got 'cuda'"):
        train_side_by_side({"a": tiny_config(device="cuda")}, [], progress=False)


class _Scripted:
    """A multiprocessing context whose runs 'send' ``news`` at once and end: no process is made."""

    def __init__(self, news):
        self.news, self.configs, self.threads = news, {}, {}

    def Queue(self):
        q = queue_module.Queue()
        for item in self.news:
            q.put(item)
        q.close = lambda: None
        return q

    def Process(self, target, name, args):
        self.configs[args[0]] = args[1]
        self.threads[args[0]] = args[3]
        return SimpleNamespace(start=lambda: None, is_alive=lambda: False, exitcode=0, pid=None)


class _Bar:
    """A tqdm stand-in that keeps its last count and total."""

    def __init__(self, **kwargs):
        self.n, self.total = 0, None

    def refresh(self):
        pass

    def write(self, text):
        pass

    def close(self):
        pass


@pytest.fixture
def scripted(tmp_path, monkeypatch):
    """``scripted(news)`` -> the context the next `train_side_by_side` uses, its bars recorded in ``bars``."""
    bars = []
    monkeypatch.setattr("tqdm.auto.tqdm", lambda **kwargs: bars.append(_Bar(**kwargs)) or bars[-1])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def make(news):
        context = _Scripted(news)
        context.bars = bars
        monkeypatch.setattr(side_by_side.multiprocessing, "get_context", lambda method: context)
        return context

    return make


def test_the_bar_counts_the_steps_of_all_runs_and_the_results_come_in_the_configs_order(tiny_config, tmp_path,
                                                                                       scripted):
    context = scripted([("step", "a", 3, 10), ("step", "b", 4, 12), ("done", "b", "b.pt"), ("done", "a", "a.pt")])
    configs = {k: tiny_config(out_dir=str(tmp_path / k), progress=True) for k in "ab"}
    result = train_side_by_side(configs, [], progress=True)
    assert (context.bars[0].n, context.bars[0].total) == (7, 22)  # 3 + 4 of 10 + 12 steps
    assert list(result.items()) == [("a", Path("a.pt")), ("b", Path("b.pt"))]
    assert [c.progress for c in context.configs.values()] == [False, False]  # the runs' own bars are off
    assert list(tmp_path.glob("*.pkl")) == []  # the data file is removed


def test_no_bar_at_all_without_progress(tiny_config, tmp_path, scripted):
    # Not even a disabled one: a disabled tqdm starts tqdm's monitor thread, which outlives it.
    context = scripted([("step", "a", 3, 10), ("done", "a", "a.pt")])
    train_side_by_side({"a": tiny_config(out_dir=str(tmp_path / "a"))}, [], progress=False)
    assert context.bars == []


class _TwoArguments(Exception):
    """An error that pickles but does not unpickle: its constructor takes an argument of its own."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


def test_a_runs_error_says_which_run_it_came_from(tiny_config, tmp_path, scripted):
    # the CLI and the study recipe print str(err) alone: "training stopped: loss nan ..." named no run
    nan = FloatingPointError("training stopped: loss nan at step 2 (epoch 1)")
    scripted([("done", "b", "b.pt"), ("error", "a", pickle.dumps(nan), "in the process of run 'a':\n...")])
    configs = {k: tiny_config(out_dir=str(tmp_path / k)) for k in "ab"}
    with pytest.raises(FloatingPointError) as info:
        train_side_by_side(configs, [], progress=False)
    assert str(info.value) == "run 'a': training stopped: loss nan at step 2 (epoch 1)" and info.value.run == "a"
    # pickled in the run's process, not unpicklable here: its traceback's last line, named
    payload = pickle.dumps(_TwoArguments("folder refused", "x"))
    with pytest.raises(TypeError):
        pickle.loads(payload)
    note = "in the process of run 'b':\nTraceback ...\ntest_side_by_side._TwoArguments: folder refused\n"
    scripted([("error", "b", payload, note)])
    with pytest.raises(RuntimeError) as info:
        train_side_by_side(configs, [], progress=False)
    assert str(info.value) == "run 'b': test_side_by_side._TwoArguments: folder refused" and info.value.run == "b"


def test_a_warning_every_run_gives_is_shown_once(tiny_config, tmp_path, scripted, caplog):
    scripted([("log", "a", "topoloc.x", logging.WARNING, "slow"), ("log", "b", "topoloc.x", logging.WARNING, "slow"),
              ("done", "a", "a.pt"), ("done", "b", "b.pt")])
    configs = {k: tiny_config(out_dir=str(tmp_path / k)) for k in "ab"}
    with caplog.at_level(logging.WARNING, logger="topoloc.x"):
        train_side_by_side(configs, [], progress=False)
    assert [r.getMessage() for r in caplog.records if r.name == "topoloc.x"] == ["slow"]
