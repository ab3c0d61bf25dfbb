"""Multi-process training helpers: torchrun environment, process group, index sharding."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistInfo", "init_distributed", "epoch_permutation", "shard_indices", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (picks the CUDA device).
        initialized_here: whether `init_distributed` created the process group (and should
            destroy it at the end).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, logs and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment, if any.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``. Without them (or with ``WORLD_SIZE=1``)
    the run is a single process. The backend is NCCL for CUDA and gloo for the CPU. A process
    group that already exists (created by the caller) is used as it is.

    Args:
        device_type: ``"cuda"`` or ``"cpu"``.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("init_distributed: WORLD_SIZE > 1 but torch.distributed is not available")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, True)


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of ``n`` samples for ``epoch``, a pure function of (seed, epoch).

    Being stateless, it is regenerated exactly on resume and is the same on every rank.

    Shape:
        - output: (n,) int64 on the CPU
    """
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=generator)


def shard_indices(perm: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's share of an epoch permutation, as ``DistributedSampler`` does it.

    The permutation is padded by wrapping around to a multiple of ``world_size`` (around it again
    as often as needed when there are fewer samples than ranks) so that every rank gets the same
    number of samples (and takes the same number of steps); rank ``r`` takes positions
    ``r, r + world_size, ...``.

    Shape:
        - perm: (n,)
        - output: (ceil(n / world_size),)
    """
    if world_size == 1:
        return perm
    n = perm.numel()
    total = -(-n // world_size) * world_size
    if total > n:  # wrapped as often as it takes: n may be under half the ranks
        perm = perm.repeat(-(-total // n))[:total]
    return perm[rank:total:world_size]


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for a single process)."""
    if info.distributed:
        # NCCL wants this rank's GPU named (else it guesses one and warns that it may hang)
        dist.barrier(device_ids=[info.local_rank] if dist.get_backend() == "nccl" else None)


def all_reduce_any(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when it is true on any rank."""
    if not info.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(t: Tensor, info: DistInfo) -> Tensor:
    """``t`` replaced, in place, by its mean over the ranks (left alone in a single process): each rank's share of
    the global batch is the same size, so the mean of the ranks' batch means is the global batch's."""
    if info.distributed:
        dist.all_reduce(t)
        t /= info.world_size
    return t


def average_gradients(params: Iterable[Tensor], info: DistInfo) -> None:
    """Average the gradients of ``params`` over the ranks, in one all-reduce (no-op for a single process).

    For parameters that DDP does not hold, which it therefore leaves alone: the loss's learnt weights ``sx`` and
    ``sq``. Without it each rank steps them on its own share of the batch, so the ranks' loss weights drift
    apart and the model's averaged gradient is a mix of differently weighted losses.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not info.distributed or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
