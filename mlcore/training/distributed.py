"""Training in several processes (torchrun + ``DistributedDataParallel``): the few things ``mlcore.training.finetune``
does differently when ``torch.distributed`` is initialised with more than one process.

The design, in one paragraph. Every process holds the whole training set and draws the same epochs from the same
seeded generator, so all of them know every global batch; each takes its own contiguous share of it
(``rank_share``), so the global batch size and the sampling weights are those of a single-process run and each
process computes on batch / processes images. The loss of a share is its sum divided by counts over the *global*
batch, and ``DistributedDataParallel`` averages gradients over processes, so the step is the gradient of the whole
batch's loss (``mlcore.training.finetune`` multiplies by the number of processes to undo the average). Rank 0 alone
decides to stop (``agreed_stop`` broadcasts its answer, so every process leaves at the same batch and none waits forever
in a collective), reports progress and writes the checkpoint; evaluation happens afterwards, outside, from that file.

BatchNorm. On CUDA the model's BatchNorm layers become ``SyncBatchNorm``: the statistics are then those of the
global batch, as in a single-process run, which matters because per-process batches are small (32 over 8 GPUs
is 4 images, whose mean and variance are mostly noise). PyTorch implements SyncBatchNorm for GPUs only, so on the
CPU (gloo, used for tests and small machines) each process normalises over its own share; the step then differs
from the single-process one through the batch statistics only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mlcore.features.extraction import pick_device


@dataclass(frozen=True)
class Ranks:
    """Which process this is (``rank``, from 0) of how many (``world``)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports, decides to stop and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def current_ranks() -> Ranks:
    """This process's place in the initialised process group; ``Ranks(0, 1)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def rank_share(rows: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """This process's contiguous part of a global batch: parts are disjoint, cover ``rows`` and differ in size by at
    most one."""
    return torch.tensor_split(rows, ranks.world)[ranks.rank]


def check_shares_fit(smallest_batch: int, ranks: Ranks) -> None:
    """Refuse a run whose smallest global batch cannot give every process two images.

    Raises:
        ValueError: naming the batch size and the number of processes.
    """
    # Two, because BatchNorm cannot train on one image (per process on the CPU, where it is not synchronised).
    if ranks.distributed and smallest_batch < 2 * ranks.world:
        raise ValueError(f"{ranks.world} processes need batches of at least {2 * ranks.world} images (2 each), but "
                         f"the smallest batch holds {smallest_batch}: use fewer processes, a larger batch_size or "
                         f"more training galaxies")


def wrap_for_training(model: torch.nn.Module, device: torch.device, ranks: Ranks) -> torch.nn.Module:
    """The module to run training steps through: ``model`` itself in one process, else a DDP wrapper around it
    (with its BatchNorm layers made ``SyncBatchNorm`` in place on CUDA; see the module docstring)."""
    if not ranks.distributed:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the layers in place
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index])
    return DistributedDataParallel(model)


def agreed_stop(should_cancel: Callable[[], bool] | None, ranks: Ranks, device: torch.device) -> bool:
    """Rank 0's answer to ``should_cancel()``, the same on every process (other ranks never call it)."""
    wanted = bool(should_cancel()) if ranks.is_main and should_cancel is not None else False
    if not ranks.distributed:
        return wanted
    flag = torch.tensor([int(wanted)], device=_collective_device(device))
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def summed(values: Sequence[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Each value added up over the processes (the values themselves in one process)."""
    if not ranks.distributed:
        return [float(value) for value in values]
    tensor = torch.tensor([float(value) for value in values], dtype=torch.float64, device=_collective_device(device))
    dist.all_reduce(tensor)
    return tensor.tolist()


def _collective_device(device: torch.device) -> torch.device:
    # NCCL only moves CUDA tensors; gloo moves CPU ones.
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def process_device(preference: str | None, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` on its machine: its own GPU when CUDA is used, else the CPU.

    A "cuda:N" preference names the kind of device only; which GPU is the local rank's.

    Raises:
        ValueError: CUDA asked for where there is none, or more processes on this machine than it has GPUs.
    """
    device = pick_device(preference)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ValueError(f"process {local_rank} on this machine has no GPU of its own ({count} visible): start at most "
                         f"{count} processes per machine (--nproc_per_node)")
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def joined_process_group(device_preference: str | None = None) -> Iterator[tuple[Ranks, torch.device]]:
    """Join the process group torchrun describes in the environment, for the duration of the block.

    torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the backend is NCCL on CUDA and gloo
    on the CPU, and a CUDA process uses the GPU of its LOCAL_RANK. Without torchrun's variables (started by hand)
    this is a single process and no group is made.

    Yields:
        (this process's Ranks, its device).

    Raises:
        ValueError: from ``process_device``.
    """
    if "WORLD_SIZE" not in os.environ:
        yield Ranks(), pick_device(device_preference)
        return
    device = process_device(device_preference, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield current_ranks(), device
    finally:
        dist.destroy_process_group()
