"""Fine-tuning the backbone with a class head and a vote head: the training step of a retrain cycle.

Each batch's loss is

    mean over labelled galaxies of (cross-entropy x label weight)
    + soft_vote_weight x mean over galaxies with votes of (Dirichlet-multinomial NLL of their vote counts)

where labels are expert labels (weight 1) or pseudo-labels (weight ``pseudo_weight``, filled in by the caller), and
the vote term is Zoobot's likelihood over the decision tree (``mlcore.losses.vote_loss``). Images are decoded once
(``mlcore.augment.decode_all``) and augmented per batch (``TrainAugment``). AdamW with a short linear warm-up, then
cosine decay, over all steps.

Reproducibility. Under one ``config.seed`` a run on the CPU is bitwise repeatable: the heads and a random backbone
are seeded, epochs are drawn and images augmented from generators derived from the seed, and
``torch.use_deterministic_algorithms(True)`` is on for the run. On CUDA the run is seeded and cuDNN is put in its
deterministic mode, but ``use_deterministic_algorithms`` is left off: it would make cuBLAS raise unless
``CUBLAS_WORKSPACE_CONFIG`` was set before CUDA started, which a library cannot guarantee. These switches, the thread
count (``config.threads``) and the global RNG are process-wide; all are restored when ``train`` returns.

Nothing is written until training has finished, so a cancelled or failed run leaves no file behind; the model and
its heads are then written as described in ``mlcore.galaxy_model``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlcore.augment import TrainAugment
from mlcore.features import pick_device
from mlcore.galaxy_model import CheckpointError, GalaxyModel, heads_path, load_model, predict, pseudo_labels, save_model
from mlcore.losses import hard_label_loss, vote_loss
from mlcore.train_data import TrainData, batches_per_epoch, epoch_batches, sampling_weights

__all__ = ["CheckpointError", "GalaxyModel", "TrainConfig", "TrainData", "TrainResult", "TrainingCancelled",
           "heads_path", "load_model", "predict", "pseudo_labels", "train"]

# The warm-up lasts 5% of the steps, at most 100: long enough to keep the first AdamW steps (whose second-moment
# estimate is still noisy) from wrecking a pretrained backbone, short enough not to matter in a short run.
_WARMUP_FRACTION, _MAX_WARMUP_STEPS = 0.05, 100


class TrainingCancelled(Exception):
    """``should_cancel()`` returned True between two batches; nothing was written."""


@dataclass
class TrainConfig:
    """Hyperparameters of a training run (plain data: it is stored in the checkpoint).

    Attributes:
        epochs: passes over the drawable galaxies.
        batch_size: images per step (batches are evened out, so some may hold one fewer).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled decay, applied to weights but not to biases and BatchNorm parameters.
        image_size: input side in pixels; must match the decoded images.
        soft_vote_weight: weight of the vote (Dirichlet-multinomial) term against the hard-label term.
        pseudo_weight: the label weight the caller gives pseudo-labels (recorded here; ``TrainData.hard_weight``
            carries it).
        balance: draw labelled galaxies class-balanced (see ``mlcore.train_data.sampling_weights``).
        seed: seeds initialisation, sampling and augmentation.
        threads: ``torch.set_num_threads`` for the run (restored afterwards); None keeps the current setting.
        device: "cpu", "cuda[:N]", or None / "auto" for CUDA when available (``pick_device``).
        augment: apply ``TrainAugment`` (D4, small rotation, mild crop, noise) to every batch.

    Raises:
        ValueError: naming the field, for a value out of range.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    image_size: int = 96
    soft_vote_weight: float = 0.3
    pseudo_weight: float = 0.5
    balance: bool = True
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    augment: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size", "image_size"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"TrainConfig.threads must be None or a positive int, got {self.threads!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        for name in ("weight_decay", "soft_vote_weight", "pseudo_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        self.device = None if self.device is None else str(self.device)


@dataclass
class TrainResult:
    """What ``train`` did.

    Attributes:
        checkpoint: the backbone checkpoint written, or None when no path was given.
        heads: the heads file beside it, or None.
        history: per epoch {"epoch", "loss", "hard_loss", "vote_loss", "train_accuracy" (on the augmented training
            draws; None without labels), "seconds"}; losses are means over the epoch's batches.
        seconds: wall time of the whole run, checkpoint included.
        images_per_s: training images per second (forward, backward and augmentation).
        device: where it ran, e.g. "cpu".
        model: the trained model (in eval mode), for evaluation without reading the files back.
    """

    checkpoint: Path | None
    heads: Path | None
    history: list[dict]
    seconds: float
    images_per_s: float
    device: str
    model: GalaxyModel = field(repr=False)


def train(data: TrainData, *, backbone: str = "resnet18", weights: str = "random", config: TrainConfig,
          progress: Callable[[dict], None] | None = None, should_cancel: Callable[[], bool] | None = None,
          checkpoint_path: str | Path | None = None) -> TrainResult:
    """Fine-tune ``backbone`` (initialised from ``weights``) with a class head and a vote head on ``data``.

    Args:
        data: the training set (held-out galaxies excluded by the caller).
        backbone: architecture, one of ``mlcore.backbone.BACKBONES``.
        weights: "random", "imagenet" or a weights file, e.g. the active model's checkpoint.
        config: hyperparameters.
        progress: called after every batch with {"epoch", "epochs", "batch", "batches", "loss", "eta_s",
            "images_per_s"} (epoch and batch count from 1; batches per epoch).
        should_cancel: checked before every batch; True raises ``TrainingCancelled``.
        checkpoint_path: where to write the backbone checkpoint (heads beside it, see ``heads_path``); None writes
            nothing.

    Returns:
        A TrainResult.

    Raises:
        TrainingCancelled: on request; nothing is written.
        CheckpointError: a checkpoint file could not be written (e.g. full disk); no partial file is left.
        ValueError: image size differing from ``config.image_size``; bad backbone name or device; and from
            ``build_backbone`` (WeightsError) for an unusable weights file.
    """
    if data.image_size != config.image_size:
        raise ValueError(f"images are {data.image_size} px but config.image_size is {config.image_size}")
    device = pick_device(config.device)
    started = time.perf_counter()
    with _run_settings(config, device):
        model = GalaxyModel(backbone, weights, n_classes=len(data.classes), question_slices=data.question_slices,
                            seed=config.seed)
        model.to(device=device, memory_format=torch.channels_last)
        history, images_per_s = _fit(model, data, config, device, progress, should_cancel)
    model.eval()
    checkpoint = heads = None
    if checkpoint_path is not None:
        extra = {"classes": list(data.classes), "history": history, "config": dataclasses.asdict(config),
                 "initial_weights": str(weights),
                 "trained_on": {"images": len(data.hard), "labelled": int(data.has_label.sum()),
                                "with_votes": int(data.has_votes.sum())}}
        checkpoint, heads = save_model(model, checkpoint_path, image_size=config.image_size, extra=extra)
    return TrainResult(checkpoint=checkpoint, heads=heads, history=history, seconds=time.perf_counter() - started,
                       images_per_s=images_per_s, device=str(device), model=model)


def _fit(model: GalaxyModel, data: TrainData, config: TrainConfig, device: torch.device,
         progress: Callable[[dict], None] | None, should_cancel: Callable[[], bool] | None) -> tuple[list[dict], float]:
    """The epochs; returns the history and the training images per second."""
    weights = sampling_weights(data, balance=config.balance)
    sampler, augmenter = _generator(config.seed, 1), _generator(config.seed, 2)
    augment = TrainAugment(config.image_size) if config.augment else None
    has_label, has_votes = data.has_label, data.has_votes
    optimizer = _optimizer(model, config)
    # Batch counts depend only on how many galaxies are drawable, so the schedule's length is known up front.
    total_steps = config.epochs * batches_per_epoch(weights, config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(total_steps))
    history: list[dict] = []
    step = images_done = 0
    loop_start = time.perf_counter()
    model.train()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        sums = np.zeros(3)  # loss, hard part, vote part
        correct = labelled_seen = 0
        batches = epoch_batches(weights, config.batch_size, sampler, balance=config.balance)
        for number, rows in enumerate(batches, start=1):
            if should_cancel is not None and should_cancel():
                raise TrainingCancelled(f"training cancelled at epoch {epoch}, batch {number} of {len(batches)}")
            images = data.images[rows].to(device, non_blocking=True)
            if augment is not None:
                images = augment(images, augmenter)
            logits, vote_outputs, _ = model(images.contiguous(memory_format=torch.channels_last))
            labelled, voted = has_label[rows].to(device), has_votes[rows].to(device)
            hard = data.hard[rows].to(device)
            parts = [images.new_zeros(()), images.new_zeros(())]
            if logits is not None and bool(labelled.any()):
                parts[0] = hard_label_loss(logits, hard, data.hard_weight[rows].to(device))[labelled].mean()
                correct += int((logits.argmax(dim=1) == hard)[labelled].sum())
                labelled_seen += int(labelled.sum())
            if vote_outputs is not None and bool(voted.any()):
                counts = data.votes[rows].to(device)
                parts[1] = vote_loss(vote_outputs, counts, model.question_slices)[voted].mean()
            loss = parts[0] + config.soft_vote_weight * parts[1]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            images_done += len(rows)
            sums += [float(loss.detach()), float(parts[0].detach()), float(parts[1].detach())]
            if progress is not None:
                elapsed = time.perf_counter() - loop_start
                progress({"epoch": epoch, "epochs": config.epochs, "batch": number, "batches": len(batches),
                          "loss": float(loss.detach()), "eta_s": elapsed / step * (total_steps - step),
                          "images_per_s": images_done / elapsed if elapsed > 0 else 0.0})
        mean = sums / len(batches)
        history.append({"epoch": epoch, "loss": float(mean[0]), "hard_loss": float(mean[1]),
                        "vote_loss": float(mean[2]),
                        "train_accuracy": correct / labelled_seen if labelled_seen else None,
                        "seconds": time.perf_counter() - epoch_start})
    elapsed = time.perf_counter() - loop_start
    return history, images_done / elapsed if elapsed > 0 else 0.0


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Decaying biases and BatchNorm scales only pulls them towards 0, which hurts and regularises nothing (the usual
    # practice since "Bag of Tricks", He et al. 2019).
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def _warmup_cosine(total_steps: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up to 1, then cosine decay towards 0 at the last step."""
    warmup = max(1, min(_MAX_WARMUP_STEPS, round(_WARMUP_FRACTION * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return factor


def _generator(seed: int, stream: int) -> torch.Generator:
    """An independent CPU generator per purpose (sampling, augmentation), derived from the run's seed."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@contextlib.contextmanager
def _run_settings(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Threads, seed and determinism for the run; every process-wide setting is restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(config.seed)
            if config.threads is not None:
                torch.set_num_threads(config.threads)
            if device.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            else:
                torch.use_deterministic_algorithms(True)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
