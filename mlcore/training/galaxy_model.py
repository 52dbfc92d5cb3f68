"""The fine-tuned model: a ResNet backbone with a class head and a vote head; its two files; prediction; pseudo-labels.

A trained model is two files side by side:

- ``<checkpoint>``: the backbone, written by ``mlcore.features.backbone.save_backbone``, so feature extraction reads it
  with ``build_backbone(name, weights=path)`` like any other backbone; its ``extra`` holds ``classes``,
  ``question_slices``, ``history``, ``config`` and ``pair_id``.
- ``<checkpoint>.heads.pt``: the classifier and vote heads as plain tensors (``torch.load(weights_only=True)``
  reads it), with the same ``pair_id``, so a backbone is never used with the heads of another run.

Both are written to temporary files first and moved into place with ``os.replace``; a failed write (a full disk)
raises ``CheckpointError`` and leaves neither a partial file nor a new half of the pair.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mlcore.features.backbone import BACKBONES, build_backbone, read_checkpoint, save_backbone
from mlcore.features.extraction import pick_device
from mlcore.features.images import d4_views
from mlcore.training.losses import expected_fractions

HEADS_FORMAT = "galaxy-labeling/heads"
HEADS_VERSION = 1
HEADS_SUFFIX = ".heads.pt"


class CheckpointError(OSError):
    """A checkpoint could not be written (full disk, permissions); the message names the path."""


class GalaxyModel(torch.nn.Module):
    """Backbone features -> class logits and vote-head outputs.

    Args:
        backbone: architecture, one of ``mlcore.features.backbone.BACKBONES``.
        weights: ``"random"``, ``"imagenet"`` or a weights file (see ``build_backbone``).
        n_classes: classes of the classifier head; 0 for none (``classifier`` is None).
        question_slices: each question's ``(start, stop)`` vote columns; empty for no vote head (``votes`` is None).
        seed: makes the random parts (backbone when random, both heads) reproducible; the global RNG is untouched.

    Raises:
        ValueError, WeightsError, WeightsUnavailable: from ``build_backbone``; a negative n_classes.
    """

    def __init__(self, backbone: str, weights: str | os.PathLike = "random", *, n_classes: int,
                 question_slices: Sequence[tuple[int, int]] = (), seed: int | None = None):
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {n_classes}")
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone, weights, seed=seed)
        self.feature_dim = BACKBONES[backbone]
        self.question_slices = [(int(start), int(stop)) for start, stop in question_slices]
        self.n_answers = max((stop for _, stop in self.question_slices), default=0)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed + 1)  # not the backbone's stream: heads differ from its first layers
            self.classifier = torch.nn.Linear(self.feature_dim, n_classes) if n_classes else None
            self.votes = torch.nn.Linear(self.feature_dim, self.n_answers) if self.n_answers else None

    @property
    def n_classes(self) -> int:
        return self.classifier.out_features if self.classifier is not None else 0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """(B, 3, S, S) -> (class logits (B, C) or None, vote outputs (B, T) or None, features (B, d))."""
        features = self.backbone(images)
        logits = self.classifier(features) if self.classifier is not None else None
        vote_outputs = self.votes(features) if self.votes is not None else None
        return logits, vote_outputs, features


def heads_path(checkpoint_path: str | os.PathLike) -> Path:
    """Where the heads of the backbone checkpoint at ``checkpoint_path`` live."""
    path = Path(checkpoint_path)
    return path.with_name(path.name + HEADS_SUFFIX)


def save_model(model: GalaxyModel, checkpoint_path: str | os.PathLike, *, image_size: int,
               extra: dict) -> tuple[Path, Path]:
    """Write the backbone checkpoint and its heads file, each atomically.

    Args:
        model: the trained model.
        checkpoint_path: the backbone file; the heads go to ``heads_path(checkpoint_path)``.
        image_size: the input size trained at.
        extra: plain metadata for the backbone checkpoint; ``classes``, ``question_slices`` and ``pair_id`` are set
            here.

    Returns:
        (checkpoint path, heads path).

    Raises:
        CheckpointError: naming the path, when either file cannot be written; nothing new is left behind.
        ValueError: extra that is not plain data (see ``save_backbone``).
    """
    checkpoint, heads = Path(checkpoint_path), heads_path(checkpoint_path)
    pair_id = uuid.uuid4().hex
    classes = list(extra.get("classes", []))
    slices = [[start, stop] for start, stop in model.question_slices]
    extra = {**extra, "classes": classes, "question_slices": slices, "pair_id": pair_id}
    content = {"format": HEADS_FORMAT, "version": HEADS_VERSION, "pair_id": pair_id, "backbone": model.backbone_name,
               "classes": classes, "question_slices": slices,
               "classifier": _plain_state(model.classifier), "votes": _plain_state(model.votes)}
    # Heads go to a temporary file first and into place only after the backbone is in place, so a failure on
    # either leaves the previous pair (if any) as it was; pair_id catches the instant between the two renames.
    try:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=checkpoint.parent, prefix=f".{heads.name}.", suffix=".tmp")
    except OSError as exc:
        raise CheckpointError(f"cannot write the model checkpoint {checkpoint}: {exc}") from exc
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(content, out)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write the model heads {heads}: {exc}") from exc
    try:
        save_backbone(model.backbone, checkpoint, name=model.backbone_name, image_size=image_size, extra=extra)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"cannot write the model checkpoint {checkpoint}: {exc}") from exc
        raise
    try:
        os.replace(temporary, heads)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write the model heads {heads}: {exc}") from exc
    return checkpoint, heads


def load_model(checkpoint_path: str | os.PathLike) -> tuple[GalaxyModel, dict]:
    """Read a model written by ``save_model`` (through ``mlcore.training.finetune.train``).

    Returns:
        (model in eval mode on the CPU, info) with info = the checkpoint's extra plus ``backbone``, ``feature_dim``
        and ``image_size``.

    Raises:
        ValueError: naming the file, when either file is missing, unreadable, corrupt, or of another run.
    """
    checkpoint, heads = Path(checkpoint_path), heads_path(checkpoint_path)
    metadata = read_checkpoint(checkpoint)  # WeightsError (a ValueError) names the file
    info = {**metadata["extra"], **{key: metadata[key] for key in ("backbone", "feature_dim", "image_size")}}
    content = read_heads(heads)
    if content.get("pair_id") != info.get("pair_id") or content.get("backbone") != info["backbone"]:
        raise ValueError(f"{heads} does not belong to {checkpoint} (written by another training run)")
    slices = [tuple(pair) for pair in content.get("question_slices") or []]
    classes = list(content.get("classes") or [])
    model = GalaxyModel(info["backbone"], checkpoint, n_classes=len(classes), question_slices=slices)
    try:
        for module, state in ((model.classifier, content.get("classifier")), (model.votes, content.get("votes"))):
            if (module is None) != (state is None):
                raise ValueError("heads do not match the classes and questions they list")
            if module is not None:
                module.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"{heads}: corrupt heads file ({exc})") from exc
    return model.eval(), info


def read_heads(path: Path) -> dict:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no heads file beside the checkpoint "
                         "(was it trained by mlcore.training.finetune?)") from None
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        raise ValueError(f"{path}: unreadable or corrupt heads file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict) or content.get("format") != HEADS_FORMAT:
        raise ValueError(f"{path}: not a {HEADS_FORMAT} file")
    if not isinstance(content.get("version"), int) or content["version"] > HEADS_VERSION:
        raise ValueError(f"{path}: heads version {content.get('version')!r}; this code reads up to {HEADS_VERSION}")
    return content


def _plain_state(module: torch.nn.Module | None) -> dict[str, torch.Tensor] | None:
    if module is None:
        return None
    return {key: tensor.detach().to("cpu").clone() for key, tensor in module.state_dict().items()}


@torch.inference_mode()
def predict(model: GalaxyModel, images: torch.Tensor, *, batch_size: int = 64,
            device: str | torch.device | None = None, d4: bool = False) -> dict[str, np.ndarray]:
    """Class probabilities, vote fractions and features of every image, in eval mode (BatchNorm's running stats).

    With ``d4`` each output is the mean over the image's 8 quarter turns and mirror images (``d4_views``): a galaxy
    has no up or left, so the network's answers for the 8 views are equally valid and their mean is less noisy
    (test-time averaging as in Dieleman et al. 2015 on Galaxy Zoo); it costs 8 forward passes per image.

    The model is moved to ``device`` (in place); its train/eval mode is restored afterwards.

    Args:
        model: a GalaxyModel.
        images: float (N, 3, S, S), normalised like ``mlcore.features.images.ImageTransform`` output (e.g. from
        ``decode_all``). batch_size: images per forward pass.
        device: default ``pick_device()``.

    Returns:
        ``{"probs": float32 (N, C) softmax, "vote_fractions": float32 (N, T), "features": float32 (N, d)}``; C or T
        is 0 when the model has no such head.

    Raises:
        ValueError: images not (N, 3, S, S), or batch_size < 1.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, S, S), got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = pick_device() if device is None else torch.device(device)
    was_training = model.training
    model.to(device=device, memory_format=torch.channels_last).eval()
    count = images.shape[0]
    out = {"probs": np.empty((count, model.n_classes), np.float32),
           "vote_fractions": np.empty((count, model.n_answers), np.float32),
           "features": np.empty((count, model.feature_dim), np.float32)}
    try:
        for start in range(0, count, batch_size):
            batch = images[start:start + batch_size].to(device)
            views = d4_views(batch) if d4 else [batch]
            sums = {key: 0.0 for key in out}
            for view in views:
                logits, vote_outputs, features = model(view.contiguous(memory_format=torch.channels_last))
                sums["features"] = sums["features"] + features.float()
                if logits is not None:
                    sums["probs"] = sums["probs"] + torch.softmax(logits.float(), dim=1)
                if vote_outputs is not None:
                    sums["vote_fractions"] = sums["vote_fractions"] + expected_fractions(vote_outputs.float(),
                                                                                         model.question_slices)
            stop = start + len(batch)
            for key, total in sums.items():
                if isinstance(total, torch.Tensor):
                    out[key][start:stop] = (total / len(views)).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def pseudo_labels(probs: np.ndarray, *, threshold: float, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The galaxies the model is confident about, with the class it is confident in.

    Args:
        probs: (N, C) class probabilities.
        threshold: minimum top-class probability, in (0, 1].
        eligible: bool (N,); the caller passes False for held-out and already-labelled galaxies.

    Returns:
        (indices int64 (k,), class indices int64 (k,)) of the eligible rows whose top probability >= threshold.

    Raises:
        ValueError: naming the shapes, for probs not (N, C) with C >= 1, eligible not bool (N,), or a threshold
            outside (0, 1].
    """
    probs = np.asarray(probs)
    eligible = np.asarray(eligible)
    if probs.ndim != 2 or probs.shape[1] == 0:
        raise ValueError(f"probs must be (N, C) with C >= 1, got shape {probs.shape}")
    if eligible.dtype != bool or eligible.shape != (probs.shape[0],):
        raise ValueError(f"eligible must be bool of shape ({probs.shape[0]},), got {eligible.dtype} {eligible.shape}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    chosen = np.flatnonzero(eligible & (probs.max(axis=1) >= threshold))
    return chosen.astype(np.int64), probs[chosen].argmax(axis=1).astype(np.int64)
