"""DDP: sharding (as DistributedSampler), torchrun's environment, the collectives of two processes by hand, and a
real 2-process gloo run under torchrun equal to one process on the same batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist

from topoloc.engine import TrainConfig, Trainer, load_checkpoint
from topoloc.engine.distributed import (DistInfo, all_reduce_any, average_gradients, barrier, epoch_permutation,
                                        init_distributed, shard_indices)


def test_epoch_permutation_is_a_seeded_permutation():
    a = epoch_permutation(50, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(50))
    assert torch.equal(a, epoch_permutation(50, seed=3, epoch=0))
    assert not torch.equal(a, epoch_permutation(50, seed=3, epoch=1))
    assert not torch.equal(a, epoch_permutation(50, seed=4, epoch=0))


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (5, 1)])
def test_shards_cover_the_epoch_with_equal_sizes(n, world):
    perm = epoch_permutation(n, seed=0, epoch=2)
    shards = [shard_indices(perm, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    union = torch.cat(shards).tolist()
    assert set(union) == set(range(n))
    assert len(union) - n == (-n) % world  # only the wrap-around padding repeats
    # Step s of every rank together is step s of the single-process order (for n divisible by world).
    if n % world == 0:
        b = 2
        for s in range(n // world // b):
            together = sorted(torch.cat([sh[s * b:(s + 1) * b] for sh in shards]).tolist())
            assert together == sorted(perm[s * b * world:(s + 1) * b * world].tolist())


_SCRIPT = textwrap.dedent("""
    import json, os, sys, time, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from conftest import PoseImages
    from topoloc.engine import TrainConfig, Trainer
    cfg = TrainConfig(**json.loads({config!r}))
    def os_threads():  # the process's OS threads (C++ ones too) on Linux; 0 elsewhere
        return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0
    threads_before = os_threads()
    train_set = PoseImages(n=16)
    points = None  # scene_coords: each image's camera position under every pixel
    if cfg.scene_coords > 0:
        points = train_set.xyz.float()[:, :, None, None].expand(16, 3, 32, 32).clone()
    trainer = Trainer(cfg, train_set, PoseImages(n=6, seed=1), scene_points=points)
    result = trainer.fit()
    deadline = time.monotonic() + 10.0  # a worker thread may still be on its way out (torch 2.3: rarely)
    while (threads_after := os_threads()) > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    rank = int(os.environ.get("RANK", 0))
    with open(os.path.join(cfg.out_dir, f"threads{{rank}}.json"), "w") as f:
        json.dump([threads_before, threads_after], f)
    state = {{**trainer.model.state_dict(), **{{"loss." + k: v for k, v in trainer.criterion.state_dict().items()}}}}
    if trainer.scene is not None:
        state.update({{"scene." + k: v for k, v in trainer.scene.head.state_dict().items()}})
    torch.save(state, os.path.join(cfg.out_dir, f"rank{{rank}}.pt"))
    with open(os.path.join(cfg.out_dir, f"history{{rank}}.json"), "w") as f:
        json.dump(result.history, f)
""")


def _launch(tmp_path, name: str, procs: int, **overrides) -> subprocess.CompletedProcess:
    """`_SCRIPT` on a tiny config with out_dir ``tmp_path / name``, under torchrun when ``procs`` > 1."""
    tests = os.path.dirname(__file__)
    # TMPDIR: torchrun's agent leaves a torchelastic_* log folder in the temp dir after each run.
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(tests)), "OMP_NUM_THREADS": "1",
           "TMPDIR": str(tmp_path)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    config = dict(model="atloc_resnet18", model_kwargs={"backbone": "test_vit", "feat_dim": 32, "dropout": 0.0},
                  epochs=2, batch_size=8, lr=1e-3, image_size=[32, 32], device="cpu", cache_device="cpu",
                  progress=False, tensorboard=False, out_dir=str(tmp_path / name), checkpoint_every_steps=1)
    config.update(overrides)
    script = tmp_path / f"{name}.py"
    script.write_text(_SCRIPT.format(tests=tests, config=json.dumps(config)))
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
            str(script)] if procs > 1 else [sys.executable, str(script)])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def test_two_process_gloo_run_matches_one_process(tmp_path):
    # A LayerNorm backbone (no batch statistics) without dropout: two ranks with half batches and
    # averaged gradients take the same steps as one process with the whole batches.
    runs = {}
    for name, procs in (("ddp", 2), ("single", 1)):
        proc = _launch(tmp_path, name, procs)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = tmp_path / name
    rank0 = torch.load(runs["ddp"] / "rank0.pt")
    rank1 = torch.load(runs["ddp"] / "rank1.pt")
    single = torch.load(runs["single"] / "rank0.pt")
    assert {"loss.sax", "loss.saq"} <= set(rank0)  # the learnt loss weights, outside the DDP module
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key  # replicas stay identical
        a, b = rank0[key], single[key]
        if key.endswith("attn.qkv.bias"):
            # The key bias cancels in the softmax: its true gradient is 0, and Adam turns the
            # rounding noise left in it into +-lr steps. Compare the query and value biases.
            third = a.numel() // 3
            a, b = torch.cat([a[:third], a[2 * third:]]), torch.cat([b[:third], b[2 * third:]])
        # atol: a twentieth of one Adam step (lr 1e-3). Under torch 2.3 the translation bias ends 1.2e-5 apart
        # (Adam scales the rounding in a near-zero gradient up); a step that differs moves it by about lr.
        assert torch.allclose(a, b, rtol=1e-4, atol=5e-5), (key, (a - b).abs().max().item())
    for rank in (0, 1):
        # fit() leaves no process-group threads behind: torn down at interpreter exit, gloo's
        # threads could abort the process (a flaky "terminate called without an active exception").
        before, after = json.loads((runs["ddp"] / f"threads{rank}.json").read_text())
        assert after <= before, (rank, before, after)
    state = load_checkpoint(runs["ddp"] / "last.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["global_step"] == 4
    h0 = json.load(open(runs["ddp"] / "history0.json"))
    h1 = json.load(open(runs["ddp"] / "history1.json"))
    hs = json.load(open(runs["single"] / "history0.json"))
    assert h0[-1]["val_median_m"] == h1[-1]["val_median_m"]  # rank 0's validation, broadcast
    assert h0[-1]["val_median_m"] == pytest.approx(hs[-1]["val_median_m"], rel=1e-3)
    for key in ("loss", "t_loss", "q_loss"):  # the global batch's mean losses per step: they were rank 0's share's
        for epoch in (0, 1):
            assert h0[epoch][key] == h1[epoch][key], (key, epoch)
            assert h0[epoch][key] == pytest.approx(hs[epoch][key], rel=1e-4), (key, epoch)


def test_the_scene_coordinate_head_stays_the_same_on_both_ranks(tmp_path):
    # The head is outside the DDP module: its gradients are averaged as the loss weights' are, or each rank would
    # step it on its own half batch and the replicas' heads (and through them the backbones) would drift apart.
    proc = _launch(tmp_path, "ddp", 2, scene_coords=1.0, epochs=1,
                   model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "ddp" / "rank0.pt")
    rank1 = torch.load(tmp_path / "ddp" / "rank1.pt")
    head = [k for k in rank0 if k.startswith("scene.")]
    assert len(head) == 6  # three convolutions' weights and biases
    weights = head + [k for k in rank0 if not k.startswith("scene.") and "running_" not in k and
                      "num_batches" not in k]  # batch-norm statistics are each rank's own (no SyncBatchNorm)
    for key in weights:
        assert torch.equal(rank0[key], rank1[key]), key
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["scene_head"]["stages"] == ["layer2", "layer3", "layer4"]


def test_batch_size_must_divide_among_processes(tmp_path, monkeypatch, pose_images):
    from topoloc.engine.distributed import DistInfo

    cfg = TrainConfig(model="atloc_resnet18", model_kwargs={"backbone": "test_resnet"}, batch_size=5,
                      image_size=(32, 32), device="cpu", progress=False, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="divisible"):
        Trainer(cfg, pose_images(n=4))._setup(DistInfo(rank=0, world_size=2))


def test_a_refused_two_process_run_reports_its_own_error(tmp_path):
    # Both ranks refuse an out_dir holding another run before building their model; leaving the
    # process group must not replace that error with another.
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "last.pt").write_bytes(b"x")
    proc = _launch(tmp_path, "taken", 2)
    assert proc.returncode != 0
    message = f"FileExistsError: TrainConfig.out_dir: {str(tmp_path / 'taken')!r} holds another run"
    # Once per rank that got there: torchrun stops the other rank when one fails, and on a loaded machine
    # rank 1 may be stopped before it reaches the refusal (it then reports nothing of its own).
    assert proc.stderr.count(message) in (1, 2), proc.stderr[-3000:]
    if "[rank0]:" in proc.stderr:  # newer torchruns prefix each rank's lines (torch 2.3's does not)
        reported = [rank for rank in (0, 1) if f"[rank{rank}]: {message}" in proc.stderr]
        assert len(reported) == proc.stderr.count(message), proc.stderr[-3000:]
    assert "AttributeError" not in proc.stderr


# ------------------------------------------------------------------------------ shards as DistributedSampler's
@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (5, 1), (2, 3), (1, 4), (2, 5), (3, 8)])
def test_shards_are_distributed_samplers_on_the_permutation(n, world):
    # torch's DistributedSampler (shuffle=False) over positions 0..n-1, read through the epoch's permutation:
    # the same padding (wrapped from the start, repeated when the ranks outnumber the images) and the same strides.
    from torch.utils.data import DistributedSampler

    perm = epoch_permutation(n, seed=5, epoch=1)
    for rank in range(world):
        positions = list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False))
        assert shard_indices(perm, rank, world).tolist() == perm[positions].tolist(), rank


def test_fewer_images_than_processes_still_give_every_rank_a_share():
    # One image, four ranks: each rank steps on that image (an empty shard would be a step on no image).
    perm = torch.tensor([0])
    assert [shard_indices(perm, r, 4).tolist() for r in range(4)] == [[0], [0], [0], [0]]
    # Two images, five ranks: 0, 1, 0, 1, 0 by rank (padded by wrapping around the permutation, twice).
    perm = torch.tensor([1, 0])
    assert [shard_indices(perm, r, 5).tolist() for r in range(5)] == [[1], [0], [1], [0], [1]]


def test_epoch_orders_of_other_seeds_are_not_shifted_epochs():
    # seed + epoch as the generator's seed would make seed 1's epoch 0 seed 0's epoch 1: 25 (seed, epoch)
    # pairs give 25 different orders.
    orders = {tuple(epoch_permutation(40, seed=s, epoch=e).tolist()) for s in range(5) for e in range(5)}
    assert len(orders) == 25


# ------------------------------------------------------------------------------ the process's place
def test_rank_zero_of_the_whole_run_is_main_not_rank_zero_of_each_machine():
    assert DistInfo().is_main and not DistInfo().distributed
    second_machine_first_gpu = DistInfo(rank=4, world_size=8, local_rank=0)
    assert not second_machine_first_gpu.is_main and second_machine_first_gpu.distributed
    assert DistInfo(rank=0, world_size=8, local_rank=0).is_main


def _clear_torchrun_env(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)


def test_without_torchrun_or_with_one_process_the_run_is_single(monkeypatch):
    _clear_torchrun_env(monkeypatch)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: pytest.fail(f"joined a group {kw}"))
    assert init_distributed("cpu") == DistInfo()
    monkeypatch.setenv("WORLD_SIZE", "1")  # `torchrun --nproc_per_node=1` (RANK set or not)
    assert init_distributed("cpu") == DistInfo()


@pytest.mark.parametrize("device_type, backend", [("cpu", "gloo"), ("cuda", "nccl")])
def test_torchruns_environment_is_read_rank_by_rank(monkeypatch, device_type, backend):
    # The third process of the second machine of two, four processes each: global rank 6, local rank 2.
    _clear_torchrun_env(monkeypatch)
    joined, devices = [], []
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: joined.append(kw))
    monkeypatch.setattr(torch.cuda, "set_device", devices.append)
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "6")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert init_distributed(device_type) == DistInfo(rank=6, world_size=8, local_rank=2, initialized_here=True)
    assert joined == [{"backend": backend, "rank": 6, "world_size": 8}]
    assert devices == ([2] if device_type == "cuda" else [])
    # without LOCAL_RANK (one machine), the local rank is the rank
    monkeypatch.delenv("LOCAL_RANK")
    assert init_distributed("cpu") == DistInfo(rank=6, world_size=8, local_rank=6, initialized_here=True)


def test_a_group_made_by_the_caller_is_used_and_left_to_it(monkeypatch):
    _clear_torchrun_env(monkeypatch)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: pytest.fail(f"joined a group {kw}"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert init_distributed("cpu") == DistInfo(rank=3, world_size=4, local_rank=1, initialized_here=False)
    monkeypatch.delenv("LOCAL_RANK")
    assert init_distributed("cpu") == DistInfo(rank=3, world_size=4, local_rank=0, initialized_here=False)


def test_the_collectives_of_a_single_process_need_no_group():
    cpu = torch.device("cpu")
    assert not dist.is_initialized()
    barrier(DistInfo())
    assert all_reduce_any(True, DistInfo(), cpu) is True and all_reduce_any(False, DistInfo(), cpu) is False
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([1.0, -3.0])
    average_gradients([p], DistInfo())
    assert p.grad.tolist() == [1.0, -3.0]


_COLLECTIVES = textwrap.dedent("""
    import json, os, sys, time, torch
    import torch.distributed as dist
    from topoloc.engine.distributed import all_reduce_any, average_gradients, barrier, init_distributed
    info = init_distributed("cpu")
    r, cpu = info.rank, torch.device("cpu")
    out = {{"info": [info.rank, info.world_size, info.local_rank, info.initialized_here]}}
    out["any"] = [all_reduce_any(r == 1, info, cpu), all_reduce_any(r == 0, info, cpu),
                  all_reduce_any(False, info, cpu), all_reduce_any(True, info, cpu)]
    a, b, c = (torch.zeros(2, 2, requires_grad=True), torch.zeros(1, requires_grad=True),
               torch.zeros(3, requires_grad=True))
    a.grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]]) * (r + 1)
    c.grad = torch.tensor([10.0, -2.0, 0.5]) if r == 0 else torch.tensor([0.0, 4.0, 1.5])
    average_gradients([b], info)  # nothing to average (e.g. loss weights that are not learnt)
    average_gradients([a, b, c], info)  # b has no gradient
    out["grads"] = [a.grad.tolist(), b.grad is None, c.grad.tolist()]
    flag = os.path.join({folder!r}, "rank1_was_here")
    if r == 1:
        time.sleep(1.0)
        open(flag, "w").close()
    barrier(info)
    out["after_barrier"] = os.path.exists(flag)
    dist.destroy_process_group()
    with open(os.path.join({folder!r}, f"rank{{r}}.json"), "w") as f:
        json.dump(out, f)
""")


def test_the_collectives_of_two_processes_by_hand(tmp_path):
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(tests)), "OMP_NUM_THREADS": "1",
           "TMPDIR": str(tmp_path)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    script = tmp_path / "collectives.py"
    script.write_text(_COLLECTIVES.format(folder=str(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        out = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert out["info"] == [rank, 2, rank, True]
        assert out["any"] == [True, True, False, True]  # true on either rank is true on both
        # the mean of the ranks' gradients: 1.5 x a's; (10 + 0) / 2, (-2 + 4) / 2, (0.5 + 1.5) / 2
        assert out["grads"] == [[[1.5, 3.0], [4.5, 6.0]], True, [5.0, 1.0, 1.0]]
        assert out["after_barrier"]  # rank 1 had written its file before either passed the barrier
