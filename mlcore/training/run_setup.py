"""The pieces a fine-tuning run is set up with (``mlcore.training.finetune``): optimizer, learning-rate schedule, seeded
generators, and the process-wide switches (threads, seed, determinism) that are restored when the run ends."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

# The warm-up lasts 5% of the steps, at most 100: long enough to keep the first AdamW steps (whose second-moment
# estimate is still noisy) from wrecking a pretrained backbone, short enough not to matter in a short run.
_WARMUP_FRACTION, _MAX_WARMUP_STEPS = 0.05, 100


def make_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with decay on weights (matrices, kernels) only."""
    # Decaying biases and BatchNorm scales only pulls them towards 0, which hurts and regularises nothing (the usual
    # practice since "Bag of Tricks", He et al. 2019).
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def warmup_cosine(total_steps: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up to 1, then cosine decay towards 0 at the last step."""
    warmup = max(1, min(_MAX_WARMUP_STEPS, round(_WARMUP_FRACTION * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return factor


def seeded_generator(seed: int, stream: int, rank: int = 0) -> torch.Generator:
    """An independent CPU generator per purpose (sampling, augmentation) and per process, derived from the seed.

    Rank 0 gets the stream a single-process run gets, so running in one process changes nothing.
    """
    entropy = [seed, stream] if rank == 0 else [seed, stream, rank]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@contextlib.contextmanager
def run_settings(*, seed: int, threads: int | None, device: torch.device) -> Iterator[None]:
    """Threads, seed and determinism for the run; every process-wide setting is restored afterwards."""
    previous_threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if threads is not None:
                torch.set_num_threads(threads)
            if device.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            else:
                torch.use_deterministic_algorithms(True)
            yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
