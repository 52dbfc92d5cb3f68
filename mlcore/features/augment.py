"""Training-time augmentation of whole batches, and decoding a training set once into one tensor.

Training runs several epochs over the same few thousand galaxies, so images are decoded once (``decode_all``) and
every epoch augments already normalised tensors. A galaxy's morphology does not depend on how the cut-out is turned
or mirrored, nor on a few pixels of framing or a little noise, so ``TrainAugment`` draws, per image:

1. a random element of D4 (a quarter turn, then a horizontal flip or not), applied exactly with ``rot90``/``flip``;
2. a small rotation (uniform in +-max_rotation degrees) and a mild random-resized crop (area fraction uniform in
   ``crop_scale``, aspect ratio within +-10% of 1 as far as the area allows, random position), folded into one
   affine map per image and applied by a single ``affine_grid`` + ``grid_sample`` over the batch; reflection
   padding fills the corners a rotation exposes with sky-like pixels rather than black;
3. Gaussian noise with standard deviation ``noise_std`` in normalised units (ImageNet std, ~0.23 of full range).

Every random number comes from the generator the caller passes, so a seeded generator gives the same batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mlcore.features.images import ImageFiles, make_transform

# The crop's aspect ratio is drawn log-uniformly within this factor of 1: galaxies are round-ish and centred, so a
# strong squash (torchvision's default 3/4..4/3) would change apparent ellipticity, itself a morphology feature.
_ASPECT_JITTER = 1.1
# decode_all reports progress after this many images (and at the end): often enough for a progress bar, rarely
# enough that a callback writing to a database costs nothing next to decoding.
_PROGRESS_EVERY = 64


class TrainAugment:
    """Random D4 element, small rotation, mild crop and noise for a normalised batch (B, 3, S, S).

    A class rather than a closure so that it pickles (like ``mlcore.features.images.ImageTransform``).

    Args:
        image_size: S, the side of the square images it will be given.
        d4: apply a random quarter turn and flip.
        max_rotation: largest extra rotation in degrees (0 disables it).
        crop_scale: (low, high) fraction of the image area kept by the crop, within (0, 1]; (1, 1) disables it.
        noise_std: standard deviation of the added Gaussian noise in normalised units (0 disables it).

    Raises:
        ValueError: image_size < 1, negative max_rotation or noise_std, or crop_scale outside (0, 1] / reversed.
    """

    def __init__(self, image_size: int, *, d4: bool = True, max_rotation: float = 15.0,
                 crop_scale: tuple[float, float] = (0.85, 1.0), noise_std: float = 0.02):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}")
        if not max_rotation >= 0:
            raise ValueError(f"max_rotation must be >= 0 degrees, got {max_rotation!r}")
        low, high = (float(value) for value in crop_scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale!r}")
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
        self.image_size = image_size
        self.d4 = bool(d4)
        self.max_rotation = float(max_rotation)
        self.crop_scale = (low, high)
        self.noise_std = float(noise_std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch.

        Args:
            images: float (B, 3, S, S), normalised like ``mlcore.features.images.ImageTransform`` output; not modified.
            generator: source of every random number; random draws happen on its device, then move to the images'.

        Returns:
            A new tensor shaped like ``images``.

        Raises:
            ValueError: images that are not a floating (B, 3, S, S) batch with S == image_size.
        """
        size = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size) or not images.is_floating_point():
            raise ValueError(f"TrainAugment({size}) needs a float (B, 3, {size}, {size}) batch, got "
                             f"{images.dtype} {tuple(images.shape)}")
        count = images.shape[0]
        if count == 0:
            return images.clone()
        # Draw everything first, in a fixed order and always the same amount, so a batch's randomness does not
        # depend on which augmentations are switched on further down.
        draws = torch.rand(count, 7, generator=generator, device=generator.device).to(images.device, torch.float64)
        output = _random_d4(images, draws[:, 0], draws[:, 1]) if self.d4 else images
        if self.max_rotation > 0 or self.crop_scale != (1.0, 1.0):
            output = self._rotate_and_crop(output, draws[:, 2:])
        if self.noise_std > 0:
            noise = torch.randn(images.shape, generator=generator, device=generator.device, dtype=images.dtype)
            output = output + self.noise_std * noise.to(images.device)
        return output.clone() if output is images else output

    def _rotate_and_crop(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """One affine map per image: output coordinates -> input coordinates, both in [-1, 1]."""
        angle = torch.deg2rad((2 * draws[:, 0] - 1) * self.max_rotation)
        low, high = self.crop_scale
        area = low + (high - low) * draws[:, 1]
        # The aspect jitter shrinks as the area nears 1, so both sides stay within the image and the kept area is
        # exactly the drawn fraction (a full-area crop is the identity).
        jitter = torch.clamp(-torch.log(area), max=math.log(_ASPECT_JITTER))
        aspect = torch.exp((2 * draws[:, 2] - 1) * jitter)
        # Half-extents of the crop window in [-1, 1] coordinates (1 = the whole image).
        half_x, half_y = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
        # The window's centre may move as far as keeps the (unrotated) window inside the image.
        shift_x = (1 - half_x) * (2 * draws[:, 3] - 1)
        shift_y = (1 - half_y) * (2 * draws[:, 4] - 1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([
            torch.stack([half_x * cos, -half_y * sin, shift_x], dim=1),
            torch.stack([half_x * sin, half_y * cos, shift_y], dim=1),
        ], dim=1).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def __repr__(self) -> str:
        return (f"TrainAugment(image_size={self.image_size}, d4={self.d4}, max_rotation={self.max_rotation}, "
                f"crop_scale={self.crop_scale}, noise_std={self.noise_std})")


def _random_d4(images: torch.Tensor, turn_draws: torch.Tensor, flip_draws: torch.Tensor) -> torch.Tensor:
    """Each image turned by a random number of quarter turns and flipped with probability 1/2, exactly (no
    interpolation): at most 8 groups, each handled by one batched ``rot90``/``flip``."""
    turns = (turn_draws * 4).long().clamp(max=3)
    flips = flip_draws < 0.5
    output = torch.empty_like(images)
    for turn in range(4):
        for flip in (False, True):
            chosen = ((turns == turn) & (flips == flip)).nonzero().flatten()
            if len(chosen):
                view = torch.rot90(images[chosen], turn, dims=(-2, -1))
                output[chosen] = view.flip(-1) if flip else view
    return output


def decode_all(paths: Sequence[str | os.PathLike], image_size: int, *, crop_fraction: float = 1.0,
               progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """Decode every image once into one float32 tensor, so training epochs never decode files again.

    Memory: N * 3 * S * S * 4 bytes, e.g. 110 MB for 1,000 images at 96 px.

    Args:
        paths: image files, in the order of the rows to return.
        image_size: S, 32..424 (``mlcore.features.images.make_transform``).
        crop_fraction: centred square crop as a fraction of the shorter side, in (0, 1].
        progress: called as ``progress(done, total)`` every 64 images and once at the end.

    Returns:
        ``(images, failures)``: images float32 (N, 3, S, S), normalised like ``ImageTransform`` output, in
        channels_last memory layout (the model's); failures lists ``(index, message naming the file)`` for images
        that could not be read, whose rows are zeros.

    Raises:
        ValueError: image_size or crop_fraction out of range.
    """
    transform = make_transform(image_size, crop_fraction)
    # ImageFiles already turns unreadable files into a zero image and a message naming the file.
    files = ImageFiles(list(paths), range(len(paths)), transform)
    total = len(files)
    # Filled through numpy in (N, S, S, 3) order: the transform's output is (H, W, C) in memory, so each row is one
    # contiguous single-threaded copy (torch ops on small tensors wake the intra-op pool; see mlcore.features.images).
    pixels = np.empty((total, image_size, image_size, 3), dtype=np.float32)
    failures: list[tuple[int, str]] = []
    for index in range(total):
        image, _, error = files[index]
        pixels[index] = image.permute(1, 2, 0).numpy()
        if error:
            failures.append((index, error))
        if progress is not None and ((index + 1) % _PROGRESS_EVERY == 0 or index + 1 == total):
            progress(index + 1, total)
    return torch.from_numpy(pixels).permute(0, 3, 1, 2), failures
