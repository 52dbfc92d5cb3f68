"""Image decoding, the model's input transform, D4 views, and a data loader that survives bad files.

Speed. On 2 CPU cores ResNet18 takes ~6 ms per image at 128 px and ~23 ms at 224 px (2 threads), so reading,
decoding, transforming and batching must stay under ~0.6 / ~2.5 ms per image for the whole pipeline to keep 90% of
the bare model's rate (bench/extraction.py measures both). Measured per 256 px file, one thread: ~0.45 ms to decode
at full size, ~0.28 ms with draft decoding to 128 px; ~0.55 ms to resize to 224 px; ~0.08 ms to normalise; ~0.1 ms
to batch. Choices that follow:

- JPEGs are decoded with ``Image.draft``: libjpeg scales by 1/2, 1/4 or 1/8 inside the inverse DCT. It is only used
  while the result stays at least as large as the crop needs (``min_size``), so the resize never upsamples.
- Crop and resize are one ``Image.resize(box=...)`` call; normalisation is numpy arithmetic over whole pixel rows;
  batching is ``numpy.stack``. All stay single-threaded whatever ``torch.set_num_threads`` says: small torch
  operations wake the intra-op thread pool, and on 2 busy cores that cost 10-40 times the work (0.3 ms became
  6-15 ms per 224 px image).
- Pixels stay interleaved (H, W, C) from decoder to batch: the transform returns a (3, S, S) view with
  channels_last strides and the batch is channels_last, the layout the model runs in, so nothing is transposed
  (a torch ``contiguous(channels_last)`` per batch cost ~0.4 ms per image on 2 busy cores).
- ``make_loader`` defaults to ``num_workers=0``: decoding runs in the calling process between forward passes. The
  total work is the same either way, and with 2 cores there is no idle core for a worker process: it takes CPU from
  the model's OpenMP threads. Measured (bench/extraction.py, 2 threads, batch 64), pipeline / bare model: 0.91 in
  process, 0.93 and 0.91 with 1 and 2 workers at 224 px; 0.91, 0.91 and 0.91 at 128 px (0.83 without draft
  decoding): equal within the noise of a shared machine, so the simpler default wins; besides, a django-q worker
  is a daemonic process and may not start DataLoader workers at all. Where spare cores or a GPU exist, pass
  ``num_workers`` > 0.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mlcore.features.pixels import to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 424


def load_rgb(source: str | os.PathLike | bytes, *, min_size: int | None = None) -> Image.Image:
    """Decode an image into 8-bit RGB.

    Greyscale is copied to the three channels; transparency (RGBA, LA, palette with a transparent colour) is
    composited on black, the sky background; 16-bit and 32-bit images are scaled to 8 bits by their own range;
    CMYK and other modes go through Pillow's conversion.

    Args:
        source: a path, or the file's bytes.
        min_size: when given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as both sides stay at least
            ``min_size`` pixels (a cheap reduction inside the decoder).

    Returns:
        A loaded RGB image.

    Raises:
        OSError: the path cannot be read (missing file, permissions).
        ValueError: naming the file, for data that is not a complete, decodable image.
    """
    if isinstance(source, bytes | bytearray):
        name, data = "<bytes>", bytes(source)
    else:
        name = os.fspath(source)
        with open(name, "rb") as handle:
            data = handle.read()
    if not data:
        raise ValueError(f"{name}: empty file")
    try:
        image = Image.open(io.BytesIO(data))
        if min_size and image.format in ("JPEG", "MPO"):  # MPO: multi-picture JPEG from cameras
            image.draft(None, (min_size, min_size))
        image.load()
        return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports truncation and bad headers as OSError/SyntaxError, which would read as disk trouble.
        raise ValueError(f"{name}: not a readable image ({exc})") from exc


class ImageTransform:
    """PIL image -> normalised float32 tensor (3, S, S): centre crop, antialiased resize, ImageNet mean/std.

    Made by ``make_transform``; a class rather than a closure so that DataLoader workers can pickle it.
    """

    def __init__(self, image_size: int, crop_fraction: float):
        self.image_size = image_size
        self.crop_fraction = crop_fraction
        std = np.asarray(IMAGENET_STD, dtype=np.float32)
        # (x / 255 - mean) / std as one multiply and one add per value, with the per-channel constants repeated
        # along a whole row of RGB pixels: numpy then runs long contiguous loops instead of loops of length 3.
        self._scale = np.tile(1.0 / (255.0 * std), image_size)
        self._shift = np.tile(-np.asarray(IMAGENET_MEAN, dtype=np.float32) / std, image_size)

    @property
    def min_decode_size(self) -> int:
        """The smallest shorter side a decoder may reduce an image to without forcing an upsampling resize."""
        return int(np.ceil(self.image_size / self.crop_fraction))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = to_rgb(image)
        width, height = image.size
        side = max(1.0, min(width, height) * self.crop_fraction)
        left, top = (width - side) / 2, (height - side) / 2
        size = self.image_size
        resized = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
        rows = np.asarray(resized).reshape(size, 3 * size)
        normalised = np.multiply(rows, self._scale, dtype=np.float32)
        normalised += self._shift
        # Pixels stay interleaved (H, W, C) in memory: (3, S, S) in channels_last strides, the layout the model
        # runs in, so batching them needs no transposing copy.
        return torch.from_numpy(normalised.reshape(size, size, 3)).permute(2, 0, 1)

    def __repr__(self) -> str:
        return f"ImageTransform(image_size={self.image_size}, crop_fraction={self.crop_fraction})"


def make_transform(image_size: int = 224, crop_fraction: float = 1.0) -> ImageTransform:
    """The model's input transform.

    Args:
        image_size: output side S in pixels, 32..424.
        crop_fraction: side of the centred square crop as a fraction of the shorter side, in (0, 1]; galaxies
            are centred in their cut-outs, so a crop drops sky, not galaxy.

    Returns:
        A callable PIL image -> float32 tensor (3, S, S); its ``min_decode_size`` is the ``min_size`` to give
        ``load_rgb``.

    Raises:
        ValueError: image_size or crop_fraction out of range.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) \
            or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be an int in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE}, got {image_size!r}")
    if isinstance(crop_fraction, bool) or not isinstance(crop_fraction, int | float | np.floating) \
            or not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")
    return ImageTransform(int(image_size), float(crop_fraction))


def d4_views(batch: torch.Tensor) -> list[torch.Tensor]:
    """The 8 images of the dihedral group D4 for each image of a batch: 4 quarter turns, each unflipped and flipped.

    Args:
        batch: (B, C, H, W) with H == W.

    Returns:
        8 tensors shaped like ``batch``; the identity comes first.

    Raises:
        ValueError: not a 4-D batch of square images.
    """
    if batch.dim() != 4 or batch.shape[-1] != batch.shape[-2]:
        raise ValueError(f"d4_views needs a (B, C, S, S) batch of square images, got shape {tuple(batch.shape)}")
    views = []
    for turns in range(4):
        turned = torch.rot90(batch, turns, dims=(-2, -1))
        views += [turned, turned.flip(-1)]
    return views


class ImageFiles(torch.utils.data.Dataset):
    """Image files on disk -> ``(tensor, key, error)`` items; a file that fails to decode does not stop the run.

    Item i is ``(transform(load_rgb(paths[i])), keys[i], "")``, or ``(zeros(3, S, S), keys[i], message)`` when
    the file cannot be read; the message names the file.

    Args:
        paths: image files.
        keys: one integer per path (a galaxy id), carried through to the features.
        transform: from ``make_transform`` (needs ``image_size``; ``min_decode_size`` enables JPEG draft decoding).

    Raises:
        ValueError: paths and keys differ in length, or a transform without ``image_size``.
    """

    def __init__(self, paths: Sequence[str | Path], keys: Sequence[int], transform):
        if len(paths) != len(keys):
            raise ValueError(f"{len(paths)} paths but {len(keys)} keys")
        if not isinstance(getattr(transform, "image_size", None), int):
            raise ValueError(f"transform {transform!r} has no int image_size; use make_transform()")
        self.paths = [os.fspath(path) for path in paths]
        self.keys = np.asarray(keys, dtype=np.int64).reshape(len(self.paths))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        path, key = self.paths[index], int(self.keys[index])
        try:
            image = load_rgb(path, min_size=getattr(self.transform, "min_decode_size", None))
        except (ValueError, OSError) as exc:
            size = self.transform.image_size
            message = str(exc) if path in str(exc) else f"{path}: {exc}"
            return torch.zeros(3, size, size), key, message
        return self.transform(image), key, ""


def collate_images(items: Sequence[tuple[torch.Tensor, int, str]]) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """``(tensor, key, error)`` items -> (images (B, 3, S, S) float32 channels_last, keys int64 (B,), B errors)."""
    if not items:
        raise ValueError("collate_images got an empty batch")
    # numpy's single-threaded copy (torch.stack would wake the intra-op pool, see the module docstring), stacking
    # (H, W, C) pixels into a channels_last batch; items in other layouts are simply copied more slowly.
    images = torch.from_numpy(np.stack([item[0].permute(1, 2, 0).numpy() for item in items])).permute(0, 3, 1, 2)
    keys = np.fromiter((item[1] for item in items), dtype=np.int64, count=len(items))
    return images, keys, [item[2] for item in items]


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int = 64, num_workers: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader over ``(tensor, key, error)`` items, in dataset order, batched by ``collate_images``.

    Args:
        dataset: e.g. ``ImageFiles``.
        batch_size: images per batch.
        num_workers: decoding processes; 0 decodes in the calling process (the best choice on 2 CPU cores, see
            the module docstring). Workers are kept between epochs and each keeps 2 batches in flight.
        pin_memory: page-locked batches for faster copies to a GPU.

    Returns:
        A DataLoader yielding ``(images (B, 3, S, S), keys int64 (B,), errors list[str] of length B)``.

    Raises:
        ValueError: batch_size < 1 or num_workers < 0.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_images,
        pin_memory=pin_memory, persistent_workers=num_workers > 0, prefetch_factor=2 if num_workers else None,
    )
