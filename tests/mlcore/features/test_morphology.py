"""Morphology measurements (mlcore/features/morphology.py), on synthetic galaxies whose answers are known."""

import math

import numpy as np
import pytest

from mlcore.features.morphology import MORPHOLOGY_NAMES, measure, measure_batch

SIZE = 128


def galaxy(*, sersic_n: float = 1.0, r_eff: float = 8.0, axis_ratio: float = 1.0, angle: float = 0.0,
           arms: float = 0.0, clump: float = 0.0, colour=(1.0, 1.0, 1.0), noise: float = 1.0,
           seed: int = 0) -> np.ndarray:
    """A Sersic galaxy at the centre of a (SIZE, SIZE, 3) cutout, 0-255, on noisy sky at level 20.

    arms: strength of a two-armed logarithmic spiral multiplying the disc; clump: brightness of an off-centre knot.
    """
    rng = np.random.default_rng(seed)
    y, x = np.indices((SIZE, SIZE), dtype=np.float64) - (SIZE - 1) / 2
    u = x * math.cos(angle) + y * math.sin(angle)
    v = (-x * math.sin(angle) + y * math.cos(angle)) / axis_ratio
    radius = np.hypot(u, v)
    b = 1.9992 * sersic_n - 0.3271
    light = 200 * np.exp(-b * ((radius / r_eff) ** (1 / sersic_n) - 1)) / math.exp(b)
    if arms:
        phase = 2 * np.arctan2(v, u) - 2 * np.log(radius + 1) * 2.5
        light *= 1 + arms * np.cos(phase)
    if clump:
        light += clump * np.exp(-((x - 12) ** 2 + (y + 6) ** 2) / 4)
    light = np.clip(light, 0, 230)
    image = 20 + light[..., None] * np.asarray(colour)[None, None, :]
    return np.clip(image + noise * rng.standard_normal(image.shape), 0, 255)


def value(vector: np.ndarray, name: str) -> float:
    return float(vector[MORPHOLOGY_NAMES.index(name)])


def test_every_measurement_is_named_and_finite():
    vector = measure(galaxy())

    assert vector.shape == (len(MORPHOLOGY_NAMES),) and len(set(MORPHOLOGY_NAMES)) == len(MORPHOLOGY_NAMES)
    assert np.isfinite(vector).all()


def test_a_de_vaucouleurs_profile_is_more_concentrated_than_an_exponential_disc():
    # Deep images (little noise): a de Vaucouleurs profile's wings are faint.
    elliptical = measure(galaxy(sersic_n=4.0, r_eff=16.0, noise=0.01))
    disc = measure(galaxy(sersic_n=1.0, r_eff=16.0, noise=0.01))

    assert value(elliptical, "concentration") > value(disc, "concentration") + 0.8
    assert value(elliptical, "sersic_n") > value(disc, "sersic_n") + 1.0
    assert 0.5 < value(disc, "sersic_n") < 1.6


def test_an_exponential_disc_has_the_textbook_concentration():
    # C = 5 log10(r80 / r20) of an exponential profile is 2.7 (Conselice 2003); a few pixels of sampling shift it.
    assert 2.3 < value(measure(galaxy(sersic_n=1.0, r_eff=10.0)), "concentration") < 3.1


def test_a_lopsided_galaxy_is_more_asymmetric_than_a_smooth_one():
    smooth, lopsided = measure(galaxy()), measure(galaxy(clump=150.0))

    assert abs(value(smooth, "asymmetry")) < 0.05
    assert value(lopsided, "asymmetry") > value(smooth, "asymmetry") + 0.1


def test_spiral_arms_leave_structure_a_smooth_disc_does_not():
    smooth, spiral = measure(galaxy(r_eff=14.0)), measure(galaxy(r_eff=14.0, arms=0.8))

    assert value(spiral, "smoothness") > value(smooth, "smoothness")
    assert value(spiral, "residual_fraction") > 2 * value(smooth, "residual_fraction")
    assert max(value(spiral, f"fourier_m2_a{index}") for index in range(3)) > \
        3 * max(value(smooth, f"fourier_m2_a{index}") for index in range(3))


def test_ellipticity_follows_the_axis_ratio_at_any_orientation():
    round_ = measure(galaxy(r_eff=10.0))
    flat = [measure(galaxy(r_eff=10.0, axis_ratio=0.4, angle=angle)) for angle in (0.0, 0.7, 2.0)]

    assert value(round_, "ellipticity") < 0.05
    assert all(0.45 < value(vector, "ellipticity") < 0.7 for vector in flat)
    # r20 of a flat disc is a few pixels, where a pixel grid has few distinct radii: concentration moves a little
    # with orientation, far less than between a disc and an elliptical.
    assert np.ptp([value(vector, "concentration") for vector in flat]) < 0.45


def test_a_red_galaxy_has_redder_colours_than_a_blue_one():
    red = measure(galaxy(colour=(1.0, 0.7, 0.45)))
    blue = measure(galaxy(colour=(0.5, 0.7, 1.0)))

    assert value(red, "colour_rg_inner") > value(blue, "colour_rg_inner") + 0.2
    assert value(red, "colour_gb_inner") > value(blue, "colour_gb_inner") + 0.2


def test_sizes_do_not_depend_on_the_pixel_count():
    big = measure(galaxy(r_eff=12.0))
    small_image = galaxy(r_eff=12.0).reshape(SIZE // 2, 2, SIZE // 2, 2, 3).mean(axis=(1, 3))
    small = measure(small_image)

    assert value(small, "r50") == pytest.approx(value(big, "r50"), rel=0.15)


def test_empty_sky_still_gives_finite_numbers():
    sky = 20 + np.random.default_rng(0).standard_normal((64, 64, 3))

    assert np.isfinite(measure(sky)).all()


def test_a_batch_is_the_measurements_of_its_images():
    images = np.stack([galaxy(), galaxy(sersic_n=4.0)])

    batch = measure_batch(images)

    assert np.array_equal(batch, np.stack([measure(image) for image in images]))
    assert measure_batch(np.empty((0, 32, 32, 3))).shape == (0, len(MORPHOLOGY_NAMES))


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 4), (8, 8, 3)])
def test_an_image_of_the_wrong_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        measure(np.zeros(shape))
