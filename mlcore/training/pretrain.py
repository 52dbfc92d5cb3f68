"""Self-supervised pretraining (SimCLR or MoCo v2) of a backbone on the galaxies themselves, when no pretrained
weights exist.

Each image is viewed twice at random (``mlcore.features.views.GalaxyViews``: any rotation, flips, zoom about the
centre, small shifts, PSF-like blur, brightness/contrast/stretch and per-band jitter, noise; or the older
``mlcore.features.augment.TrainAugment`` with ``views="d4"``); the backbone and a small projection head learn to map
the two views of one galaxy close together and views of different galaxies apart (the NT-Xent loss, Chen et al.
2020). Optionally a second head learns to predict each galaxy's morphology measurements (``targets``, e.g.
``mlcore.features.morphology``) from either view: label-free supervision by what astronomers already measure, which
steers the features towards concentration, asymmetry and arms rather than colour and size alone.
Both heads are thrown away afterwards: the result is an ordinary backbone checkpoint
(``mlcore.features.backbone.save_backbone``), which ``build_backbone(name, weights=path)`` loads for feature
extraction or further fine-tuning; its ``extra`` records the crop extraction should use (``crop_fraction``).

Images come in decoded once (``mlcore.features.augment.decode_all``); every epoch only augments tensors. Runs are
deterministic under ``SSLConfig.seed`` on CPU (on CUDA, up to cuDNN's nondeterministic kernels).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mlcore.features.augment import TrainAugment
from mlcore.features.backbone import BACKBONES, build_backbone, save_backbone
from mlcore.features.extraction import pick_device
from mlcore.features.views import VIEW_CROP, GalaxyViews
from mlcore.training.moco import MomentumContrast


class PretrainingCancelled(Exception):
    """``should_cancel()`` asked pretraining to stop; no checkpoint was written."""


@dataclass
class SSLConfig:
    """Hyperparameters of :func:`pretrain`.

    Attributes:
        epochs: passes over the images.
        batch_size: images per step (2 x batch_size views); larger batches give each view more negatives.
        lr: peak learning rate of AdamW, decayed to 0 along a cosine over all steps.
        weight_decay: AdamW's decoupled weight decay.
        temperature: NT-Xent temperature; lower values weigh the hardest negatives more.
        projection_dim: output size of the projection head.
        image_size: side S of the views the backbone sees (with ``views="d4"`` the images must come in at S).
        views: "galaxy" (``GalaxyViews``; decode the images with ``crop_fraction=SOURCE_CROP`` at a side of at
            least S) or "d4" (``TrainAugment``, the images at S).
        target_weight: weight of the morphology-target loss next to the contrastive one (when ``targets`` are given).
        method: "simclr" (negatives from the batch, NT-Xent) or "moco" (MoCo v2: a momentum key encoder and a queue
            of ``queue_size`` past keys as negatives, ``mlcore.training.moco``).
        queue_size, momentum: MoCo's queue length and key-encoder momentum (ignored by SimCLR).
        seed: seeds the projection head, the backbone's random initialisation, batch order and augmentation.
        threads: CPU threads for torch during the run (restored afterwards); None leaves the caller's setting.
        device: "auto"/None, "cpu" or "cuda[:N]" (``mlcore.features.extraction.pick_device``).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 128
    image_size: int = 64
    views: str = "galaxy"
    target_weight: float = 1.0
    method: str = "simclr"
    queue_size: int = 4096
    momentum: float = 0.99
    seed: int = 0
    threads: int | None = None
    device: str | None = None


@dataclass
class SSLResult:
    """What :func:`pretrain` did.

    Attributes:
        checkpoint: the backbone checkpoint written.
        history: mean NT-Xent loss of each epoch.
        seconds: wall time of the training loop (augmentation included, writing excluded).
        images_per_s: images (not views) per second over the whole run.
        device: where it ran, e.g. "cpu" or "cuda:0".
    """

    checkpoint: Path
    history: list[float]
    seconds: float
    images_per_s: float
    device: str


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy over the 2B views of a batch (SimCLR's loss).

    Row i of ``z1`` and row i of ``z2`` are two views of one image. Every view is L2-normalised; its positive is
    the other view of its image and its negatives are the other 2B - 2 views; the loss is the mean, over all 2B
    views, of ``-log(exp(s_pos / t) / sum over the 2B - 1 other views of exp(s / t))`` with s the cosine similarity.

    Args:
        z1: (B, D) projections of the first views.
        z2: (B, D) projections of the second views.
        temperature: t > 0.

    Returns:
        A scalar tensor (differentiable).

    Raises:
        ValueError: z1 and z2 not of one (B, D) shape with B >= 1, or temperature <= 0.
    """
    if z1.dim() != 2 or z1.shape != z2.shape or z1.shape[0] < 1:
        raise ValueError(f"z1 and z2 must be (B, D) of one shape with B >= 1, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    count = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    # A view is not its own negative: -inf on the diagonal drops it from the softmax's denominator.
    logits = logits.masked_fill(torch.eye(2 * count, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(z.device)
    return F.cross_entropy(logits, positives)


def pretrain(images: torch.Tensor, *, backbone: str = "resnet18", weights: str | os.PathLike = "random",
             config: SSLConfig | None = None, targets: torch.Tensor | None = None,
             progress: Callable[[dict], None] | None = None, should_cancel: Callable[[], bool] | None = None,
             checkpoint_path: str | os.PathLike) -> SSLResult:
    """Train ``backbone`` contrastively on ``images`` and write it as an ordinary backbone checkpoint.

    Args:
        images: float (N, 3, S_in, S_in) normalised images (``mlcore.features.augment.decode_all``), N >= 2;
            S_in >= config.image_size for galaxy views, S_in = config.image_size for d4 views.
        backbone: one of ``mlcore.features.backbone.BACKBONES``.
        weights: where to start: "random" (seeded by config.seed), "imagenet" or a weights file.
        config: hyperparameters; default ``SSLConfig()``.
        targets: optional float (N, K) per-image measurements to predict from every view (standardised here:
            each column to mean 0 and spread 1, clipped at +-5), weighted by ``config.target_weight``.
        progress: called after every step with {"epoch", "epochs", "batch", "batches" (1-based counts), "loss"
            (that step's), "eta_s" (seconds left, extrapolated), "images_per_s" (so far)}.
        should_cancel: checked before every step; returning True raises ``PretrainingCancelled``.
        checkpoint_path: where to write the checkpoint (atomically; parent folders are created). Its ``extra``
            holds {"method": "simclr" or "moco", + "+targets" with targets, "config": SSLConfig as a dict,
            "history", "weights", "images", "seconds", "crop_fraction" (the centred crop extraction should use:
            ``VIEW_CROP`` for galaxy views, 1.0 for d4 views)}.

    Returns:
        An ``SSLResult``.

    Raises:
        ValueError: bad images, backbone or config, or a loss that became NaN or infinite (lower ``lr``).
        PretrainingCancelled: when ``should_cancel()`` returned True; nothing is written.
        OSError: the checkpoint could not be written; the message names the path and no file is left behind.
        WeightsError, WeightsUnavailable: from ``build_backbone`` for the starting weights.
    """
    config = SSLConfig() if config is None else config
    _check(images, backbone, config)
    targets = _standardised(targets, len(images))
    device = pick_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        model, history, seconds = _train(images, targets, backbone, weights, config, device, progress,
                                         should_cancel)
    finally:
        torch.set_num_threads(previous_threads)
    model = model.cpu().eval()
    images_per_s = len(images) * config.epochs / max(seconds, 1e-9)
    # Plain data only (save_backbone refuses anything torch.load(weights_only=True) could not read back).
    settings = {**asdict(config), "device": None if config.device is None else str(config.device)}
    crop = VIEW_CROP if config.views == "galaxy" else 1.0
    extra = {"method": config.method if targets is None else f"{config.method}+targets", "config": settings,
             "crop_fraction": crop, "history": history,
             "weights": weights if weights in ("random", "imagenet") else os.fspath(weights),
             "images": len(images), "seconds": seconds}
    path = Path(checkpoint_path)
    try:
        save_backbone(model, path, name=backbone, image_size=config.image_size, extra=extra)
    except OSError as exc:
        # save_backbone writes to a temporary file and renames it, deleting the temporary file on failure, so no
        # partial checkpoint is left at ``path`` or beside it.
        raise OSError(f"cannot write the pretrained backbone to {path}: {exc}") from exc
    return SSLResult(checkpoint=path, history=history, seconds=seconds, images_per_s=images_per_s, device=str(device))


def _check(images: torch.Tensor, backbone: str, config: SSLConfig) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    for name in ("epochs", "batch_size", "projection_dim", "image_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"config.{name} must be a positive int, got {value!r}")
    if config.batch_size < 2:
        raise ValueError(f"config.batch_size must be at least 2 (a batch needs negatives), got {config.batch_size}")
    for name in ("lr", "temperature"):
        if not getattr(config, name) > 0:
            raise ValueError(f"config.{name} must be > 0, got {getattr(config, name)!r}")
    if config.method not in ("simclr", "moco"):
        raise ValueError(f"config.method must be 'simclr' or 'moco', got {config.method!r}")
    if isinstance(config.queue_size, bool) or not isinstance(config.queue_size, int) or config.queue_size < 1:
        raise ValueError(f"config.queue_size must be a positive int, got {config.queue_size!r}")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"config.momentum must be in [0, 1), got {config.momentum!r}")
    if config.views not in ("galaxy", "d4"):
        raise ValueError(f"config.views must be 'galaxy' or 'd4', got {config.views!r}")
    if not config.target_weight >= 0:
        raise ValueError(f"config.target_weight must be >= 0, got {config.target_weight!r}")
    if not config.weight_decay >= 0:
        raise ValueError(f"config.weight_decay must be >= 0, got {config.weight_decay!r}")
    if config.threads is not None and (not isinstance(config.threads, int) or config.threads < 1):
        raise ValueError(f"config.threads must be None or a positive int, got {config.threads!r}")
    size = config.image_size
    fits = isinstance(images, torch.Tensor) and images.dim() == 4 and images.is_floating_point() \
        and images.shape[1] == 3 and images.shape[2] == images.shape[3] \
        and (images.shape[2] == size if config.views == "d4" else images.shape[2] >= size)
    if not fits:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        wanted = f"(N, 3, {size}, {size})" if config.views == "d4" else f"(N, 3, S, S) with S >= {size}"
        raise ValueError(f"images must be a float {wanted} tensor (config.image_size = {size}, views "
                         f"{config.views!r}), got {shape}")
    if len(images) < 2:
        raise ValueError(f"contrastive pretraining needs at least 2 images, got {len(images)}")


def _standardised(targets: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """Targets as float32 columns of mean 0 and spread 1, clipped at +-5 (one outlier must not rule the loss)."""
    if targets is None:
        return None
    if not isinstance(targets, torch.Tensor) or targets.dim() != 2 or len(targets) != count \
            or not torch.isfinite(targets).all():
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a finite (N, K) tensor with N = {count} images, got {shape}")
    targets = targets.to(torch.float32)
    spread = targets.std(dim=0).clamp(min=1e-6)
    return ((targets - targets.mean(dim=0)) / spread).clamp(-5, 5)


def _batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random partition of 0..count-1 into batches; a last batch of one image (no negatives) joins the one before."""
    parts = list(torch.randperm(count, generator=generator).split(batch_size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def _train(images, targets, backbone, weights, config: SSLConfig, device: torch.device, progress, should_cancel):
    """The training loop; returns (backbone model, per-epoch losses, seconds)."""
    model = build_backbone(backbone, weights, seed=config.seed)
    dim = BACKBONES[backbone]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        projection = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(inplace=True),
                                         torch.nn.Linear(dim, config.projection_dim))
        regression = None if targets is None else torch.nn.Sequential(
            torch.nn.Linear(dim, dim), torch.nn.ReLU(inplace=True), torch.nn.Linear(dim, targets.shape[1]))
    model.to(device=device, memory_format=torch.channels_last).train()
    projection.to(device).train()
    heads = [projection] if regression is None else [projection, regression.to(device).train()]
    augment = GalaxyViews(config.image_size) if config.views == "galaxy" else TrainAugment(config.image_size)
    # One CPU generator drives batch order and augmentation, so a run depends on the seed alone, whatever the device;
    # augmenting on the CPU costs little next to the backbone's forward and backward passes.
    generator = torch.Generator().manual_seed(config.seed)
    source = images.detach().to("cpu", torch.float32)
    parameters = list(model.parameters()) + [value for head in heads for value in head.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    moco = None if config.method != "moco" else MomentumContrast(
        model, projection, queue_size=config.queue_size, momentum=config.momentum, temperature=config.temperature,
        generator=generator, device=device)
    batches_per_epoch = len(_batches(len(source), config.batch_size, torch.Generator().manual_seed(0)))
    total_steps = config.epochs * batches_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)

    history: list[float] = []
    started, steps, seen = time.perf_counter(), 0, 0
    for epoch in range(config.epochs):
        losses, sizes = [], []
        for number, rows in enumerate(_batches(len(source), config.batch_size, generator), start=1):
            if should_cancel is not None and should_cancel():
                raise PretrainingCancelled(f"pretraining stopped at epoch {epoch + 1}, step {number}; "
                                           "nothing was written")
            batch = source[rows]
            views = torch.cat([augment(batch, generator), augment(batch, generator)])
            views = views.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            features = model(views)
            projected = projection(features)
            if moco is None:
                loss = nt_xent(projected[:len(rows)], projected[len(rows):], config.temperature)
            else:  # symmetric: each view is the query of the other's key
                keys = moco.keys(views)
                keys = torch.cat([keys[len(rows):], keys[:len(rows)]])
                loss = moco.loss(projected, keys)
            if regression is not None:
                wanted = targets[rows].to(device).repeat(2, 1)
                loss = loss + config.target_weight * F.mse_loss(regression(features), wanted)
            if not torch.isfinite(loss):
                raise ValueError(f"the loss became {loss.item()} at epoch {epoch + 1}, step {number}; "
                                 f"try a lower lr than {config.lr:g}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if moco is not None:
                moco.follow(keys)
            losses.append(loss.item())
            sizes.append(len(rows))
            steps, seen = steps + 1, seen + len(rows)
            if progress is not None:
                elapsed = time.perf_counter() - started
                progress({"epoch": epoch + 1, "epochs": config.epochs, "batch": number, "batches": batches_per_epoch,
                          "loss": losses[-1], "eta_s": elapsed / steps * (total_steps - steps),
                          "images_per_s": seen / max(elapsed, 1e-9)})
        # Weighted by batch size: the epoch's loss is then the mean over its images, whatever the size of the tail.
        history.append(math.fsum(loss * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes))
    return model, history, time.perf_counter() - started
