"""Random views of galaxy cutouts for self-supervised pretraining: the changes morphology must not depend on.

``TrainAugment`` (mlcore.features.augment) only turns, flips and barely crops; a network can tell two of its views
apart from other galaxies by colour and size alone, without learning shape. ``GalaxyViews`` draws the views the
galaxy literature uses (Hayat et al. 2021, Stein et al. 2021, Walmsley et al. 2022), per image:

1. rotation by any angle and a flip: a galaxy has no preferred orientation;
2. zoom about the centre, the window's side uniform in ``zoom`` (a fraction of the source image's side) with a
   small translation (``shift``, same units): the galaxy sits at the centre of a survey cutout, its size varies
   from cutout to cutout; the source should be decoded with more border than the views keep, so zooming out has
   real sky to show (``SOURCE_CROP`` and ``VIEW_CROP``);
3. a PSF-like Gaussian blur (sigma uniform in ``blur`` pixels of the view): seeing changes from night to night;
4. brightness, contrast and stretch (gamma) jitter of the whole image, and a milder per-band gain: the same galaxy
   at another distance, exposure or colour calibration;
5. Gaussian noise (``noise`` in units of the image's own pixel spread): sky noise.

Everything is drawn from one generator and applied to whole batches (one ``affine_grid``/``grid_sample`` and one
grouped convolution), so views are reproducible under a seed and cost little next to the network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlcore.features.images import IMAGENET_MEAN, IMAGENET_STD

# Pretraining decodes each cutout's central SOURCE_CROP (a fraction of its side) and its views show about
# VIEW_CROP of the cutout on average: SDSS and DECaLS cutouts put the galaxy in the central third to half.
SOURCE_CROP = 0.75
VIEW_CROP = 0.5
_BLUR_TAPS = 7


def source_size(image_size: int) -> int:
    """The side to decode a cutout's central ``SOURCE_CROP`` at, so that views of ``image_size`` pixels showing
    ``VIEW_CROP`` of the cutout need no upsampling (96 for 64 px views)."""
    return int(math.ceil(image_size * SOURCE_CROP / VIEW_CROP))


class GalaxyViews:
    """Random galaxy views of a normalised batch (B, 3, S_in, S_in) at ``image_size`` (module docstring).

    Args:
        image_size: side of the views.
        zoom: (low, high) side of the view window as a fraction of the source image's side.
        shift: largest translation of the window's centre, as a fraction of the source image's side.
        blur: (low, high) sigma of the Gaussian blur in pixels of the view (0 disables it).
        brightness: largest additive change of the mean level, in units of the image's pixel spread.
        contrast: largest relative change of the pixel spread (0.2 = x0.8 to x1.2, drawn log-uniformly).
        stretch: largest gamma change of the [0, 1] pixel values (0.3 = gamma from 1/1.3 to 1.3).
        band_gain: largest relative change of each band's gain.
        noise: (low, high) standard deviation of added noise, in units of the image's pixel spread.

    Raises:
        ValueError: an image_size below 8 or ranges that are reversed or out of bounds.
    """

    def __init__(self, image_size: int, *, zoom: tuple[float, float] = (0.55, 0.8), shift: float = 0.04,
                 blur: tuple[float, float] = (0.0, 1.2), brightness: float = 0.1, contrast: float = 0.2,
                 stretch: float = 0.3, band_gain: float = 0.08, noise: tuple[float, float] = (0.0, 0.08)):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
        for name, (low, high), top in (("zoom", zoom, 1.0), ("blur", blur, 5.0), ("noise", noise, 1.0)):
            if not 0.0 <= low <= high <= top or (name == "zoom" and low <= 0):
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= {top:g}, got {(low, high)!r}")
        for name, value in (("shift", shift), ("brightness", brightness), ("contrast", contrast),
                            ("stretch", stretch), ("band_gain", band_gain)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.image_size = image_size
        self.zoom, self.shift, self.blur, self.noise = tuple(zoom), float(shift), tuple(blur), tuple(noise)
        self.brightness, self.contrast, self.stretch = float(brightness), float(contrast), float(stretch)
        self.band_gain = float(band_gain)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Views of ``images`` (float (B, 3, S_in, S_in), normalised like ``ImageTransform`` output; unchanged).

        Returns:
            float (B, 3, image_size, image_size), normalised the same way.

        Raises:
            ValueError: images that are not a floating (B, 3, H, W) batch.
        """
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"GalaxyViews needs a float (B, 3, H, W) batch, got {images.dtype} "
                             f"{tuple(images.shape)}")
        count = images.shape[0]
        # A fixed number of draws per image in a fixed order: a view depends on the seed and its row alone.
        draws = torch.rand(count, 13, generator=generator, dtype=torch.float64)
        noise = torch.randn(count, 3, self.image_size, self.image_size, generator=generator)
        views = self._geometry(images, draws[:, :5])
        views = self._blur(views, draws[:, 5])
        return self._photometry(views, draws[:, 6:], noise)

    def _geometry(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * draws[:, 0]
        low, high = self.zoom
        half = low + (high - low) * draws[:, 1]  # grid units: 1 is the whole source image's half side
        flip = torch.where(draws[:, 2] < 0.5, -1.0, 1.0).to(torch.float64)
        shift_x, shift_y = (2 * self.shift * (2 * draws[:, index] - 1) for index in (3, 4))
        cos, sin = torch.cos(angle) * half, torch.sin(angle) * half
        theta = torch.stack([torch.stack([cos * flip, -sin, shift_x], dim=1),
                             torch.stack([sin * flip, cos, shift_y], dim=1)], dim=1).to(images.dtype)
        shape = [len(images), 3, self.image_size, self.image_size]
        grid = F.affine_grid(theta, shape, align_corners=False)
        # Antialiasing: shrinking a larger source by more than 2x would alias; an area resize to twice the view's
        # scale first keeps grid_sample's bilinear taps within a pixel of each other.
        scale = images.shape[-1] * high / self.image_size
        if scale > 2:
            size = max(self.image_size, int(round(2 * self.image_size / high)))
            images = F.interpolate(images, size=(size, size), mode="area")
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _blur(self, views: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        low, high = self.blur
        if high <= 0:
            return views
        sigma = (low + (high - low) * draws).clamp(min=1e-3).to(views.dtype)
        taps = torch.arange(_BLUR_TAPS, dtype=views.dtype) - _BLUR_TAPS // 2
        kernel = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
        kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(3, dim=0)  # (3B, taps)
        count, _, height, width = views.shape
        flat = F.pad(views.reshape(1, 3 * count, height, width), [_BLUR_TAPS // 2] * 4, mode="reflect")
        flat = F.conv2d(flat, kernel[:, None, None, :], groups=3 * count)  # rows
        flat = F.conv2d(flat, kernel[:, None, :, None], groups=3 * count)  # columns
        return flat.reshape(count, 3, height, width)

    def _photometry(self, views: torch.Tensor, draws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN, dtype=views.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=views.dtype).view(1, 3, 1, 1)
        pixels = (views * std + mean).clamp(0, 1)  # back to [0, 1] values
        draws = draws.to(views.dtype)
        gamma = torch.exp((2 * draws[:, 0] - 1) * math.log1p(self.stretch)).view(-1, 1, 1, 1)
        pixels = pixels.clamp(min=1e-6) ** gamma
        spread = pixels.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)
        level = pixels.mean(dim=(1, 2, 3), keepdim=True)
        contrast = torch.exp((2 * draws[:, 1] - 1) * math.log1p(self.contrast)).view(-1, 1, 1, 1)
        brightness = ((2 * draws[:, 2] - 1) * self.brightness).view(-1, 1, 1, 1) * spread
        gains = 1 + (2 * draws[:, 3:6] - 1).view(-1, 3, 1, 1) * self.band_gain
        low, high = self.noise
        sigma = (low + (high - low) * draws[:, 6]).view(-1, 1, 1, 1) * spread
        pixels = ((pixels - level) * contrast + level + brightness) * gains + sigma * noise.to(views.dtype)
        return (pixels - mean) / std

    def __repr__(self) -> str:
        return (f"GalaxyViews(image_size={self.image_size}, zoom={self.zoom}, shift={self.shift}, blur={self.blur}, "
                f"brightness={self.brightness}, contrast={self.contrast}, stretch={self.stretch}, "
                f"band_gain={self.band_gain}, noise={self.noise})")
