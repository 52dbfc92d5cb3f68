"""Galaxy views for self-supervised pretraining (mlcore/features/views.py)."""

import pytest
import torch

from mlcore.features.images import IMAGENET_MEAN, IMAGENET_STD
from mlcore.features.views import GalaxyViews

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
STILL = {"zoom": (1.0, 1.0), "shift": 0.0, "blur": (0.0, 0.0), "brightness": 0.0, "contrast": 0.0, "stretch": 0.0,
         "band_gain": 0.0, "noise": (0.0, 0.0)}


def normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


def round_blob(size: int = 48, width: float = 0.25) -> torch.Tensor:
    """A centred round Gaussian galaxy on black sky, as a normalised (1, 3, S, S) batch."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return normalised((0.9 * torch.exp(-(x ** 2 + y ** 2) / width ** 2)).expand(1, 3, size, size).clone())


def bar(size: int = 48) -> torch.Tensor:
    """A centred horizontal bar: turning it shows."""
    image = torch.zeros(1, 3, size, size)
    image[..., size // 2 - 2:size // 2 + 2, size // 4:3 * size // 4] = 0.9
    return normalised(image)


def centroid(views: torch.Tensor) -> torch.Tensor:
    light = (views * STD + MEAN).mean(dim=1).clamp(min=0)
    size = light.shape[-1]
    coordinates = torch.arange(size, dtype=light.dtype)
    total = light.sum(dim=(1, 2))
    return torch.stack([(light.sum(dim=2) * coordinates).sum(dim=1) / total,
                        (light.sum(dim=1) * coordinates).sum(dim=1) / total], dim=1)


def test_views_have_the_asked_size_and_follow_the_seed():
    images = torch.cat([round_blob(), bar()])
    views = GalaxyViews(32)

    first = views(images, torch.Generator().manual_seed(0))
    again = views(images, torch.Generator().manual_seed(0))
    other = views(images, torch.Generator().manual_seed(1))

    assert first.shape == (2, 3, 32, 32) and first.dtype == images.dtype
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_without_jitter_a_round_galaxy_looks_the_same_at_any_angle():
    image = round_blob()

    views = GalaxyViews(48, **STILL)(image.expand(6, -1, -1, -1), torch.Generator().manual_seed(0))

    assert torch.allclose(views, image.expand(6, -1, -1, -1), atol=0.05)


def test_rotation_takes_any_angle_not_just_quarter_turns():
    views = GalaxyViews(48, **STILL)(bar().expand(64, -1, -1, -1), torch.Generator().manual_seed(0))
    light = (views * STD + MEAN).mean(dim=1)
    y, x = torch.meshgrid(torch.arange(48.0) - 23.5, torch.arange(48.0) - 23.5, indexing="ij")
    # The bar's orientation from its second moments, folded to [0, 90] degrees.
    xx, yy, xy = ((light * x * x).sum((1, 2)), (light * y * y).sum((1, 2)), (light * x * y).sum((1, 2)))
    angles = torch.rad2deg(0.5 * torch.atan2(2 * xy, xx - yy)).abs()

    oblique = ((angles > 15) & (angles < 75)).sum()
    assert oblique > 20  # quarter turns and flips alone would leave every bar at 0 or 90 degrees


def test_zoom_and_shift_keep_the_galaxy_near_the_centre():
    views = GalaxyViews(32, zoom=(0.55, 0.8), shift=0.04)(round_blob().expand(32, -1, -1, -1),
                                                          torch.Generator().manual_seed(0))

    offsets = (centroid(views) - 15.5).abs()
    # A shift of 0.04 of the source's side is at most 0.04 / 0.55 of the view's: under 2.5 pixels of 32.
    assert offsets.max() < 2.6
    assert offsets.max() > 0.2  # but it does move


def test_zooming_changes_the_apparent_size():
    image = round_blob()
    near = GalaxyViews(48, **{**STILL, "zoom": (0.5, 0.5)})(image, torch.Generator().manual_seed(0))
    far = GalaxyViews(48, **STILL)(image, torch.Generator().manual_seed(0))

    def bright_pixels(view):
        return ((view * STD + MEAN).mean(dim=1) > 0.45).sum()

    assert bright_pixels(near) > 3 * bright_pixels(far)


def test_blur_removes_fine_detail():
    checkerboard = normalised(((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()
                              .expand(1, 3, 32, 32).clone())
    sharp = GalaxyViews(32, **STILL)(checkerboard, torch.Generator().manual_seed(0))
    blurred = GalaxyViews(32, **{**STILL, "blur": (1.5, 1.5)})(checkerboard, torch.Generator().manual_seed(0))

    def detail(view):
        return (view[..., 1:, :] - view[..., :-1, :]).abs().mean()

    assert detail(blurred) < 0.2 * detail(sharp)


def test_photometric_jitter_changes_levels_per_image_and_per_band():
    image = round_blob().expand(16, -1, -1, -1)
    settings = {**STILL, "brightness": 0.3, "contrast": 0.3, "stretch": 0.3, "band_gain": 0.1}

    views = GalaxyViews(48, **settings)(image, torch.Generator().manual_seed(0))
    pixels = views * STD + MEAN

    band_means = pixels.mean(dim=(2, 3))
    assert band_means[:, 0].std() > 0.005  # images differ from each other
    assert (band_means[:, 0] - band_means[:, 1]).abs().max() > 0.005  # bands differ within an image


def test_noise_is_proportional_to_the_images_spread():
    image = round_blob().expand(8, -1, -1, -1)
    quiet = GalaxyViews(48, **STILL)(image, torch.Generator().manual_seed(0))
    noisy = GalaxyViews(48, **{**STILL, "noise": (0.2, 0.2)})(image, torch.Generator().manual_seed(0))

    spread = (image * STD + MEAN).std()
    added = ((noisy - quiet) * STD).std()
    assert 0.15 * spread < added < 0.25 * spread


@pytest.mark.parametrize(("arguments", "field"), [
    ({"image_size": 4}, "image_size"),
    ({"zoom": (0.0, 0.5)}, "zoom"),
    ({"zoom": (0.8, 0.5)}, "zoom"),
    ({"blur": (-1.0, 1.0)}, "blur"),
    ({"shift": 1.5}, "shift"),
    ({"stretch": -0.1}, "stretch"),
])
def test_bad_settings_are_refused_by_name(arguments, field):
    with pytest.raises(ValueError, match=field):
        GalaxyViews(**{"image_size": 32, **arguments})


def test_a_batch_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        GalaxyViews(32)(torch.zeros(2, 1, 32, 32), torch.Generator().manual_seed(0))
