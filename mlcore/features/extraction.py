"""Batched feature extraction: a backbone over a loader of images, one FeatureBatch per batch.

The caller appends each batch to a store as it arrives; after a crash it builds a loader over the keys not yet
stored, which is how an extraction resumes. Files that fail to decode are reported in ``FeatureBatch.failed``
rather than stopping a long run.

The forward pass runs under ``torch.inference_mode`` in channels_last memory format, which oneDNN's convolutions
prefer on CPU and cuDNN's on recent GPUs; ``mlcore.features.images`` batches arrive in that layout already. Defaults,
from bench/extraction.py on 2 cores: batches of 64 (``make_loader``), decoding in this process between batches, no
prefetch thread (there is no idle core to overlap with). That keeps ~0.91 of the bare model's images/s at 128 and
224 px (ResNet18: ~135 and ~38 images/s on a quiet machine).

The number of CPU threads is the caller's choice (``torch.set_num_threads``): a web process and a worker sharing
2 cores should not both take both, as OpenMP threads that get descheduled stall every layer (tiny test models ran
20 times slower with 2 threads than with 1 while other processes were busy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from mlcore.features.images import d4_views


@dataclass
class FeatureBatch:
    """Features of one loader batch.

    Attributes:
        keys: int64 (n,), the keys of the images that were decoded.
        vectors: float32 (n, d), raw (not normalised) features, row i for keys[i].
        failed: (key, reason) for the images that could not be decoded; they are not in keys/vectors.
    """

    keys: np.ndarray
    vectors: np.ndarray
    failed: list[tuple[int, str]] = field(default_factory=list)


class Cancelled(Exception):
    """``should_stop()`` asked extraction to stop; batches already yielded are complete."""


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to extract on: CUDA when available, unless ``prefer`` says otherwise.

    Args:
        prefer: None or "auto" (CUDA if available, else CPU), "cpu", or "cuda" / "cuda:N".

    Raises:
        ValueError: an unknown preference, or CUDA asked for where there is none.
    """
    if prefer in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if prefer == "cpu":
        return torch.device("cpu")
    if prefer == "cuda" or str(prefer).startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} asked for, but CUDA is not available here")
        return torch.device(prefer)
    raise ValueError(f"unknown device preference {prefer!r}; use 'auto', 'cpu' or 'cuda[:N]'")


def extract(model: torch.nn.Module, loader: Iterable, *, device: str | torch.device | None = None,
            d4: bool = False, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Iterator[FeatureBatch]:
    """Run ``model`` over every batch of ``loader`` and yield the features batch by batch.

    The model is moved to ``device``, converted to channels_last and put in eval mode (in place).

    Args:
        model: maps (B, 3, S, S) to (B, d), e.g. from ``mlcore.features.backbone.build_backbone``.
        loader: yields ``(images (B, 3, S, S), keys int64 (B,), errors list[str])`` as
            ``mlcore.features.images.make_loader`` does; an item with a non-empty error is reported as failed.
            ``len(loader.dataset)`` gives the total.
        device: where to compute; default ``pick_device()``.
        d4: average each image's feature over the 8 rotations/flips of D4 (8 forward passes per batch), making it
            invariant to quarter turns and flips.
        progress: called as ``progress(done, total)`` once a batch has been handed over (when the caller asks for
            the next one), done counting failed images too.
        should_stop: checked before each batch; returning True raises ``Cancelled``.

    Yields:
        One FeatureBatch per loader batch, in loader order.

    Raises:
        Cancelled: when ``should_stop()`` returns True.
        ValueError: a batch that is not (images (B, 3, H, W), keys (B,), errors of length B), or a model output
            that is not (B, d).
    """
    device = pick_device() if device is None else torch.device(device)
    model.to(device=device, memory_format=torch.channels_last).eval()
    dataset = getattr(loader, "dataset", None)
    total = len(dataset) if dataset is not None else None
    done = 0
    for batch in loader:
        if should_stop is not None and should_stop():
            raise Cancelled(f"extraction stopped after {done} images")
        images, keys, errors = _check_batch(batch)
        # The whole batch goes through the model, placeholders of failed files included: the output then always
        # has its (B, d) shape, and failures are rare enough that the wasted rows cost nothing.
        vectors = _features(model, images.to(device, non_blocking=True), d4)
        good = np.array([not error for error in errors], dtype=bool)
        yield FeatureBatch(
            keys=keys[good],
            vectors=np.ascontiguousarray(vectors[good]),
            failed=[(int(key), error) for key, error in zip(keys, errors, strict=True) if error],
        )
        done += len(keys)
        if progress is not None:
            progress(done, total if total is not None else done)


# A decorator, not a `with` around the loop: a context entered in a generator would stay on in the caller's code
# while the generator is suspended at `yield`.
@torch.inference_mode()
def _features(model: torch.nn.Module, images: torch.Tensor, d4: bool) -> np.ndarray:
    views = d4_views(images) if d4 else [images]
    total = None
    for view in views:
        output = model(view.contiguous(memory_format=torch.channels_last))
        if output.dim() != 2 or output.shape[0] != images.shape[0]:
            raise ValueError(f"model output has shape {tuple(output.shape)}, expected ({images.shape[0]}, d)")
        total = output.float() if total is None else total + output.float()
    return (total / len(views)).cpu().numpy()


def _check_batch(batch) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    try:
        images, keys, errors = batch
    except (TypeError, ValueError):
        raise ValueError("a loader batch must be (images, keys, errors); "
                         "use mlcore.features.images.make_loader") from None
    keys = np.asarray(keys, dtype=np.int64)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) tensor, got {shape}")
    if keys.shape != (images.shape[0],) or len(errors) != images.shape[0]:
        raise ValueError(f"batch of {images.shape[0]} images with keys of shape {keys.shape} and "
                         f"{len(errors)} errors")
    return images, keys, list(errors)
