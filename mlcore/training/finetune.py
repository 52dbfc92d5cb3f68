"""Fine-tuning the backbone with a class head and a vote head: the training step of a retrain cycle.

Each batch's loss is

    mean over labelled galaxies of (cross-entropy x label weight)
    + soft_vote_weight x mean over galaxies with votes of (Dirichlet-multinomial NLL of their vote counts per vote)

where labels are expert labels (weight 1) or pseudo-labels (weight ``pseudo_weight``, filled in by the caller), and
the vote term is Zoobot's likelihood over the decision tree divided by the galaxy's votes
(``mlcore.training.losses.vote_loss_per_vote``: nats per vote, on the scale of the cross-entropy per label). Images
are decoded once (``mlcore.features.augment.decode_all``) and augmented per batch (``TrainAugment``). AdamW with a
short linear warm-up, then cosine decay, over all steps.

Reproducibility. Under one ``config.seed`` a run on the CPU is bitwise repeatable: the heads and a random backbone
are seeded, epochs are drawn and images augmented from generators derived from the seed, and
``torch.use_deterministic_algorithms(True)`` is on for the run. On CUDA the run is seeded and cuDNN is put in its
deterministic mode, but ``use_deterministic_algorithms`` is left off: it would make cuBLAS raise unless
``CUBLAS_WORKSPACE_CONFIG`` was set before CUDA started, which a library cannot guarantee. These switches, the thread
count (``config.threads``) and the global RNG are process-wide; all are restored when ``train`` returns.

Nothing is written until training has finished, so a cancelled or failed run leaves no file behind; the model and
its heads are then written as described in ``mlcore.training.galaxy_model``.

Several processes. Started under torchrun (``mlcore.training.launch``) with more than one process, ``train`` runs each
global batch split over the processes through ``DistributedDataParallel``; rank 0 alone reports progress, decides to
stop and writes the checkpoint. How and why: ``mlcore.training.distributed``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlcore.features.augment import TrainAugment
from mlcore.features.extraction import pick_device
from mlcore.training.data import TrainData, batches_per_epoch, epoch_batches, sampling_weights
from mlcore.training.distributed import (
    Ranks,
    agreed_stop,
    check_shares_fit,
    current_ranks,
    rank_share,
    summed,
    wrap_for_training,
)
from mlcore.training.galaxy_model import (
    CheckpointError,
    GalaxyModel,
    heads_path,
    load_model,
    predict,
    pseudo_labels,
    save_model,
)
from mlcore.training.losses import hard_label_loss, vote_loss_per_vote
from mlcore.training.probe_init import init_class_head
from mlcore.training.run_setup import make_optimizer, run_settings, seeded_generator, warmup_cosine

__all__ = ["CheckpointError", "GalaxyModel", "TrainConfig", "TrainData", "TrainResult", "TrainingCancelled",
           "heads_path", "load_model", "predict", "pseudo_labels", "train"]


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
        balance: draw labelled galaxies class-balanced (see ``mlcore.training.data.sampling_weights``).
        seed: seeds initialisation, sampling and augmentation.
        threads: ``torch.set_num_threads`` for the run (restored afterwards); None keeps the current setting.
        device: "cpu", "cuda[:N]", or None / "auto" for CUDA when available (``pick_device``).
        augment: apply ``TrainAugment`` (D4, small rotation, mild crop, noise) to every batch.
        crop_fraction: the centred crop the images were decoded with (recorded in the checkpoint's extra, so that
            extraction with the trained weights crops the same way; see ``mlcore.features.backbone.input_crop``).
        probe_init: start the class head from a logistic regression on the starting backbone's features of the
            labelled images (``mlcore.training.probe_init``) instead of at random.

    Raises:
        ValueError: naming the field, for a value out of range.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    image_size: int = 96
    soft_vote_weight: float = 1.0
    pseudo_weight: float = 0.5
    balance: bool = True
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    augment: bool = True
    crop_fraction: float = 1.0
    probe_init: bool = False

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
        if isinstance(self.crop_fraction, bool) or not 0 < self.crop_fraction <= 1:
            raise ValueError(f"TrainConfig.crop_fraction must be in (0, 1], got {self.crop_fraction!r}")
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
        device: where it ran, e.g. "cpu" (this process's device when several ran).
        model: the trained model (in eval mode), for evaluation without reading the files back.
        processes: how many processes trained it together (``mlcore.training.distributed``).
    """

    checkpoint: Path | None
    heads: Path | None
    history: list[dict]
    seconds: float
    images_per_s: float
    device: str
    model: GalaxyModel = field(repr=False)
    processes: int = 1


def train(data: TrainData, *, backbone: str = "resnet18", weights: str = "random", config: TrainConfig,
          progress: Callable[[dict], None] | None = None, should_cancel: Callable[[], bool] | None = None,
          checkpoint_path: str | Path | None = None) -> TrainResult:
    """Fine-tune ``backbone`` (initialised from ``weights``) with a class head and a vote head on ``data``.

    Args:
        data: the training set (held-out galaxies excluded by the caller).
        backbone: architecture, one of ``mlcore.features.backbone.BACKBONES``.
        weights: "random", "imagenet" or a weights file, e.g. the active model's checkpoint.
        config: hyperparameters.
        progress: called after every batch with {"epoch", "epochs", "batch", "batches", "loss", "eta_s",
            "images_per_s"} (epoch and batch count from 1; batches per epoch); on rank 0 only.
        should_cancel: checked before every batch; True raises ``TrainingCancelled``. Under several processes rank
            0's answer is sent to all, which stop at the same batch.
        checkpoint_path: where to write the backbone checkpoint (heads beside it, see ``heads_path``); None writes
            nothing. Under several processes only rank 0 writes.

    Returns:
        A TrainResult.

    Raises:
        TrainingCancelled: on request; nothing is written.
        CheckpointError: a checkpoint file could not be written (e.g. full disk); no partial file is left.
        ValueError: image size differing from ``config.image_size``; bad backbone name or device; batches too
            small to share between the processes; and from ``build_backbone`` (WeightsError) for an unusable weights
            file.
    """
    if data.image_size != config.image_size:
        raise ValueError(f"images are {data.image_size} px but config.image_size is {config.image_size}")
    device = pick_device(config.device)
    ranks = current_ranks()
    started = time.perf_counter()
    with run_settings(seed=config.seed, threads=config.threads, device=device):
        model = GalaxyModel(backbone, weights, n_classes=len(data.classes), question_slices=data.question_slices,
                            seed=config.seed)
        model.to(device=device, memory_format=torch.channels_last)
        if config.probe_init and model.classifier is not None:
            init_class_head(model, data.images, data.hard, data.hard_weight, seed=config.seed)
        history, images_per_s = _fit(model, data, config, device, ranks, progress if ranks.is_main else None,
                                     should_cancel)
    model.eval()
    checkpoint = heads = None
    # Every process ends with the same weights (DDP keeps them in step), so one file says it all; two writers of
    # the same path would race.
    if checkpoint_path is not None and ranks.is_main:
        extra = {"classes": list(data.classes), "history": history, "config": dataclasses.asdict(config),
                 "initial_weights": str(weights), "crop_fraction": float(config.crop_fraction),
                 "trained_on": {"images": len(data.hard), "labelled": int(data.has_label.sum()),
                                "with_votes": int(data.has_votes.sum())}}
        checkpoint, heads = save_model(model, checkpoint_path, image_size=config.image_size, extra=extra)
    return TrainResult(checkpoint=checkpoint, heads=heads, history=history, seconds=time.perf_counter() - started,
                       images_per_s=images_per_s, device=str(device), model=model, processes=ranks.world)


def _fit(model: GalaxyModel, data: TrainData, config: TrainConfig, device: torch.device, ranks: Ranks,
         progress: Callable[[dict], None] | None, should_cancel: Callable[[], bool] | None) -> tuple[list[dict], float]:
    """The epochs; returns the history and the training images per second (of all processes together)."""
    weights = sampling_weights(data, balance=config.balance)
    # Batch counts depend only on how many galaxies are drawable, so the schedule's length is known up front.
    batch_count = batches_per_epoch(weights, config.batch_size)
    check_shares_fit(int((weights > 0).sum()) // batch_count, ranks)
    # Every process draws the same epochs (so all know each global batch and take disjoint shares of it), but
    # augments its own images with its own stream.
    sampler, augmenter = seeded_generator(config.seed, 1), seeded_generator(config.seed, 2, ranks.rank)
    augment = TrainAugment(config.image_size) if config.augment else None
    has_label, has_votes = data.has_label, data.has_votes
    network = wrap_for_training(model, device, ranks)
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * batch_count
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps))
    history: list[dict] = []
    step = images_done = 0
    loop_start = time.perf_counter()
    network.train()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        sums = np.zeros(3)  # loss, hard part, vote part
        correct = labelled_seen = 0
        batches = epoch_batches(weights, config.batch_size, sampler, balance=config.balance)
        for number, rows in enumerate(batches, start=1):
            if agreed_stop(should_cancel, ranks, device):
                raise TrainingCancelled(f"training cancelled at epoch {epoch}, batch {number} of {len(batches)}")
            share = rank_share(rows, ranks)
            images = data.images[share].to(device, non_blocking=True)
            if augment is not None:
                images = augment(images, augmenter)
            logits, vote_outputs, _ = network(images.contiguous(memory_format=torch.channels_last))
            # Each part is this process's sum over the counts of the whole batch, so the parts of all processes add
            # up to the batch's means. Every row goes through both heads (a row without a label or votes adds exactly
            # 0), so every parameter takes part in every step of every process, as DDP requires.
            parts = [images.new_zeros(()), images.new_zeros(())]
            hit = 0
            if logits is not None:
                hard = data.hard[share].to(device)
                parts[0] = hard_label_loss(logits, hard, data.hard_weight[share].to(device)).sum() \
                    / max(1, int(has_label[rows].sum()))
                hit = int(((logits.argmax(dim=1) == hard) & has_label[share].to(device)).sum())
            if vote_outputs is not None:
                parts[1] = vote_loss_per_vote(vote_outputs, data.votes[share].to(device),
                                              model.question_slices).sum() \
                    / max(1, int(has_votes[rows].sum()))
            loss = parts[0] + config.soft_vote_weight * parts[1]
            optimizer.zero_grad(set_to_none=True)
            # DDP averages the processes' gradients; times the number of processes, that average is their sum: the
            # gradient of the whole batch's loss.
            (loss * ranks.world).backward()
            optimizer.step()
            scheduler.step()
            step += 1
            images_done += len(rows)
            batch_loss, hard_loss, vote_part, hits = summed(
                [loss.detach(), parts[0].detach(), parts[1].detach(), hit], ranks, device)
            sums += [batch_loss, hard_loss, vote_part]
            correct += round(hits)
            labelled_seen += int(has_label[rows].sum())
            if progress is not None:
                elapsed = time.perf_counter() - loop_start
                progress({"epoch": epoch, "epochs": config.epochs, "batch": number, "batches": len(batches),
                          "loss": batch_loss, "eta_s": elapsed / step * (total_steps - step),
                          "images_per_s": images_done / elapsed if elapsed > 0 else 0.0})
        mean = sums / len(batches)
        history.append({"epoch": epoch, "loss": float(mean[0]), "hard_loss": float(mean[1]),
                        "vote_loss": float(mean[2]),
                        "train_accuracy": correct / labelled_seen if labelled_seen else None,
                        "seconds": time.perf_counter() - epoch_start})
    elapsed = time.perf_counter() - loop_start
    return history, images_done / elapsed if elapsed > 0 else 0.0
