"""Non-parametric morphology measurements of a centred galaxy cutout: the numbers astronomers already trust.

Definitions follow statmorph (Rodriguez-Gomez et al. 2019) and the papers it implements, simplified for a colour JPEG
cutout with no noise map or PSF: the image is reduced to one band (the mean of the three), the sky level and its
noise come from the cutout's border, and the galaxy is the connected region above 1.5 sigma that holds the centre.

- Petrosian radius r_p (eta = 0.2, circular apertures) sets every other scale; sizes are given in units of the
  cutout's side, so they do not depend on the pixel count.
- Concentration C = 5 log10(r80 / r20) and r20, r50, r80 (Conselice 2003), from the light within 1.5 r_p.
- Asymmetry A (Conselice et al. 2000): sum |I - I_180| / sum |I| inside 1.5 r_p about the light's centroid, minus
  the same for a patch of sky; shape asymmetry A_s: the same on the binary segmentation map (Pawlik et al. 2016).
- Smoothness (clumpiness) S: positive residual of the image minus a boxcar-smoothed copy (width 0.25 r_p) over the
  light, between 0.25 and 1.5 r_p.
- Gini and M20 (Lotz et al. 2004) over the segmentation map; the Gini-M20 bulge and merger statistics (Snyder et
  al. 2015).
- Ellipticity and orientation-free second moments; a Sersic index from a fit to the azimuthally averaged profile.
- Azimuthal Fourier amplitudes m = 1..4 in three annuli, and the positive residual from the galaxy's own
  elliptical profile: spiral arms, bars and rings leave power there that a smooth elliptical does not.
- Colours: differences of the log mean R, G and B inside r50 and between r50 and 1.5 r_p (gri in SDSS and DECaLS
  cutouts), and their gradient: discs are bluer outside, ellipticals are red throughout.

``measure`` returns ``len(MORPHOLOGY_NAMES)`` finite floats per image (a galaxy too faint to segment gets the
values of a point at the centre rather than NaN), so the result can go straight into a scaler and a classifier.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, optimize

_RADIAL_BINS = 8  # profile samples between 0 and 2 r_p, normalised by the central surface brightness
_FOURIER_ANNULI = ((0.25, 0.6), (0.6, 1.0), (1.0, 1.5))  # in units of r_p

MORPHOLOGY_NAMES: tuple[str, ...] = (
    ("r_petrosian", "r20", "r50", "r80", "concentration", "asymmetry", "shape_asymmetry", "outer_asymmetry",
     "smoothness", "gini", "m20", "gini_m20_bulge", "gini_m20_merger", "ellipticity", "elongation",
     "sersic_n", "sersic_r_eff", "residual_fraction", "residual_asymmetry", "segment_fraction",
     "central_fraction")
    + tuple(f"fourier_m{m}_a{index}" for index in range(len(_FOURIER_ANNULI)) for m in (1, 2, 3, 4))
    + tuple(f"profile_{index}" for index in range(_RADIAL_BINS))
    + ("colour_rg_inner", "colour_gb_inner", "colour_rg_outer", "colour_gb_outer", "colour_rg_gradient",
       "colour_gb_gradient")
)


def measure(image: np.ndarray) -> np.ndarray:
    """The morphology vector of one centred cutout.

    Args:
        image: (H, W, 3) RGB, uint8 or float in [0, 255]; the galaxy near the centre. Square cutouts of 64-256
            pixels are typical (``measure_batch`` resizes).

    Returns:
        float64 (len(MORPHOLOGY_NAMES),), finite.

    Raises:
        ValueError: not an (H, W, 3) array of at least 16 x 16 pixels.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 16:
        raise ValueError(f"image must be (H, W, 3) with H, W >= 16, got {pixels.shape}")
    side = float(min(pixels.shape[:2]))
    grey = pixels.mean(axis=2)
    sky, noise = _sky(grey)
    light = grey - sky
    noise = max(noise, 1e-3 * max(float(np.abs(light).max()), 1.0))
    rows, cols = np.indices(light.shape, dtype=np.float64)
    segment = _segment(light, noise)
    weights = np.where(segment, np.clip(light, 0, None), 0.0)
    total = weights.sum()
    if total > 0:
        cy, cx = (weights * rows).sum() / total, (weights * cols).sum() / total
    else:
        cy, cx = (light.shape[0] - 1) / 2, (light.shape[1] - 1) / 2
    radius = np.hypot(rows - cy, cols - cx)
    r_p = _petrosian_radius(light, radius, side)
    aperture = radius <= 1.5 * r_p
    r20, r50, r80 = _light_radii(light, radius, aperture, (0.2, 0.5, 0.8))
    concentration = 5 * math.log10(max(r80, 0.5) / max(r20, 0.5))
    asymmetry, outer_asymmetry = _asymmetry(light, cy, cx, aperture, radius, r_p, noise)
    shape_asymmetry = _rotation_residual(segment.astype(np.float64), cy, cx, segment | _rotate(segment, cy, cx),
                                         absolute_total=True)
    smoothness = _smoothness(light, radius, r_p)
    gini = _gini(np.abs(light[segment])) if segment.sum() > 1 else 0.0
    m20 = _m20(light, segment, cy, cx)
    ellipticity, elongation, angle = _shape(weights, rows - cy, cols - cx)
    sersic_n, sersic_r = _sersic(light, radius, r_p)
    residual_fraction, residual_asymmetry = _elliptical_residual(light, rows - cy, cols - cx, ellipticity, angle,
                                                                 r_p, aperture)
    fourier = _fourier(light, rows - cy, cols - cx, r_p)
    profile = _profile(light, radius, r_p)
    colours = _colours(pixels - np.median(np.concatenate(
        [pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0), radius, r50, r_p)
    central = light[radius <= max(0.1 * r_p, 1.0)].clip(0).sum() / max(light[aperture].clip(0).sum(), 1e-9)
    values = np.array([
        r_p / side, r20 / side, r50 / side, r80 / side, concentration, asymmetry, shape_asymmetry,
        outer_asymmetry, smoothness, gini, m20,
        # Gini-M20 bulge and merger statistics (Snyder et al. 2015).
        -0.693 * m20 + 4.95 * gini - 3.96, 0.139 * m20 + 0.990 * gini - 0.327,
        ellipticity, elongation, sersic_n, sersic_r / side, residual_fraction, residual_asymmetry,
        segment.mean(), central, *fourier, *profile, *colours,
    ])
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def measure_batch(images: np.ndarray) -> np.ndarray:
    """``measure`` over a batch (N, H, W, 3); returns float64 (N, len(MORPHOLOGY_NAMES))."""
    return np.stack([measure(image) for image in images]) if len(images) else \
        np.empty((0, len(MORPHOLOGY_NAMES)))


def _sky(grey: np.ndarray) -> tuple[float, float]:
    """Median and robust sigma (1.4826 MAD) of a border four pixels wide: SDSS and DECaLS cutouts have sky there."""
    width = max(2, min(grey.shape) // 16)
    border = np.concatenate([grey[:width].ravel(), grey[-width:].ravel(), grey[:, :width].ravel(),
                             grey[:, -width:].ravel()])
    median = float(np.median(border))
    return median, 1.4826 * float(np.median(np.abs(border - median)))


def _segment(light: np.ndarray, noise: float) -> np.ndarray:
    """The connected region above 1.5 sigma (after a 3-pixel smoothing) nearest the centre."""
    smoothed = ndimage.uniform_filter(light, size=3)
    above = smoothed > 1.5 * noise
    labels, count = ndimage.label(above)
    if count == 0:
        mask = np.zeros_like(above)
        mask[light.shape[0] // 2, light.shape[1] // 2] = True
        return mask
    centre = (light.shape[0] // 2, light.shape[1] // 2)
    label = labels[centre]
    if label == 0:
        # The centre itself is below threshold: take the region whose nearest pixel is closest to the centre.
        distance = ndimage.distance_transform_edt(labels == 0, return_indices=True)[1]
        label = labels[distance[0][centre], distance[1][centre]]
    return labels == label


def _petrosian_radius(light: np.ndarray, radius: np.ndarray, side: float) -> float:
    """The radius where the surface brightness in an annulus is 0.2 times the mean brightness inside it."""
    edges = np.arange(1.0, side / 2, 1.0)
    order = np.argsort(radius, axis=None)
    sorted_radius, cumulative = radius.ravel()[order], np.cumsum(light.ravel()[order])
    counts = np.searchsorted(sorted_radius, edges, side="right")
    enclosed = np.where(counts > 0, cumulative[np.maximum(counts - 1, 0)], 0.0)
    mean_inside = enclosed / np.maximum(counts, 1)
    annulus_flux = np.diff(enclosed, prepend=0.0)
    annulus_area = np.maximum(np.diff(counts, prepend=0), 1)
    ratio = (annulus_flux / annulus_area) / np.where(mean_inside > 0, mean_inside, np.inf)
    below = np.nonzero((ratio < 0.2) & (edges > 1.5))[0]
    return float(edges[below[0]]) if len(below) else float(edges[-1])


def _light_radii(light, radius, aperture, fractions) -> list[float]:
    inside = aperture & (light > 0)
    if not inside.any():
        return [1.0 for _ in fractions]
    order = np.argsort(radius[inside])
    sorted_radius, cumulative = radius[inside][order], np.cumsum(light[inside][order])
    cumulative /= cumulative[-1]
    return [float(sorted_radius[min(np.searchsorted(cumulative, f), len(sorted_radius) - 1)]) for f in fractions]


def _rotate(image: np.ndarray, cy: float, cx: float) -> np.ndarray:
    """``image`` turned 180 degrees about (cy, cx): a point reflection, exact for integer and half-integer centres."""
    matrix = -np.eye(2)
    offset = np.array([2 * cy, 2 * cx])
    order = 0 if image.dtype == bool else 1
    return ndimage.affine_transform(image.astype(np.float64), matrix, offset=offset, order=order,
                                    mode="nearest") > 0.5 if image.dtype == bool else \
        ndimage.affine_transform(image, matrix, offset=offset, order=order, mode="nearest")


def _rotation_residual(image, cy, cx, mask, *, absolute_total: bool) -> float:
    rotated = _rotate(image, cy, cx)
    denominator = np.abs(image[mask]).sum() if absolute_total else image[mask].sum()
    return float(np.abs(image - rotated)[mask].sum() / denominator) if denominator > 0 else 0.0


def _asymmetry(light, cy, cx, aperture, radius, r_p, noise) -> tuple[float, float]:
    """Asymmetry inside 1.5 r_p less the sky's own, and the same between r50-ish (0.5 r_p) and 1.5 r_p."""
    rotated = _rotate(light, cy, cx)
    flux = np.abs(light[aperture]).sum()
    if flux <= 0:
        return 0.0, 0.0
    # Two sky pixels differ by sqrt(2) sigma in the mean of their |difference| (sqrt(2/pi) * sqrt(2) sigma each).
    sky_term = aperture.sum() * 2 * noise / math.sqrt(math.pi)
    asymmetry = (np.abs(light - rotated)[aperture].sum() - sky_term) / flux
    outer = aperture & (radius > 0.5 * r_p)
    outer_flux = np.abs(light[outer]).sum()
    outer_asymmetry = np.abs(light - rotated)[outer].sum() / outer_flux if outer_flux > 0 else 0.0
    return float(asymmetry), float(outer_asymmetry)


def _smoothness(light, radius, r_p) -> float:
    width = max(int(round(0.25 * r_p)), 2)
    smoothed = ndimage.uniform_filter(light, size=width)
    ring = (radius > 0.25 * r_p) & (radius <= 1.5 * r_p)
    flux = light[ring].sum()
    return float(np.clip(light - smoothed, 0, None)[ring].sum() / flux) if flux > 0 else 0.0


def _gini(values: np.ndarray) -> float:
    values = np.sort(values)
    count = len(values)
    mean = values.mean()
    if mean <= 0:
        return 0.0
    ranks = 2 * np.arange(1, count + 1) - count - 1
    return float((ranks * values).sum() / (mean * count * (count - 1)))


def _m20(light, segment, cy, cx) -> float:
    rows, cols = np.nonzero(segment)
    flux = light[rows, cols]
    moments = flux * ((rows - cy) ** 2 + (cols - cx) ** 2)
    total = moments.sum()
    if len(flux) < 2 or total <= 0:
        return 0.0
    order = np.argsort(flux)[::-1]
    cumulative = np.cumsum(flux[order])
    brightest = order[: max(int(np.searchsorted(cumulative, 0.2 * cumulative[-1])) + 1, 1)]
    return float(np.log10(max(moments[brightest].sum(), 1e-12) / total))


def _shape(weights, dy, dx) -> tuple[float, float, float]:
    """Ellipticity 1 - b/a, elongation a/b and position angle from the light's second moments."""
    total = weights.sum()
    if total <= 0:
        return 0.0, 1.0, 0.0
    yy, xx, xy = ((weights * dy * dy).sum() / total, (weights * dx * dx).sum() / total,
                  (weights * dx * dy).sum() / total)
    spread = math.sqrt(max(((xx - yy) / 2) ** 2 + xy ** 2, 0.0))
    major, minor = (xx + yy) / 2 + spread, max((xx + yy) / 2 - spread, 1e-9)
    ratio = math.sqrt(minor / max(major, 1e-9))
    return 1 - ratio, 1 / max(ratio, 1e-6), 0.5 * math.atan2(2 * xy, xx - yy)


def _sersic(light, radius, r_p) -> tuple[float, float]:
    """Sersic index and effective radius from a least-squares fit to the azimuthal profile out to 2 r_p."""
    outer = max(2 * r_p, 4.0)
    edges = np.linspace(0, outer, 13)
    index = np.digitize(radius.ravel(), edges) - 1
    valid = (index >= 0) & (index < len(edges) - 1)
    sums = np.bincount(index[valid], weights=light.ravel()[valid], minlength=len(edges) - 1)
    counts = np.bincount(index[valid], minlength=len(edges) - 1)
    profile = sums / np.maximum(counts, 1)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = (counts > 0) & (profile > 0)
    if keep.sum() < 4:
        return 1.0, r_p / 2

    def log_sersic(r, log_amplitude, r_eff, n):
        b = 1.9992 * n - 0.3271  # Capaccioli (1989), good for 0.5 < n < 10
        return log_amplitude - b * ((r / r_eff) ** (1 / n) - 1) / math.log(10)

    try:
        (_, r_eff, n), _ = optimize.curve_fit(
            log_sersic, centres[keep], np.log10(profile[keep]), p0=(np.log10(profile[keep][0]), r_p / 2, 2.0),
            bounds=((-np.inf, 0.5, 0.3), (np.inf, 4 * r_p + 1, 8.0)), maxfev=400)
    except (RuntimeError, ValueError):
        return 1.0, r_p / 2
    return float(n), float(r_eff)


def _elliptical_residual(light, dy, dx, ellipticity, angle, r_p, aperture) -> tuple[float, float]:
    """Light left over once the galaxy's own smooth elliptical profile is subtracted, and how lopsided it is.

    The profile is the median brightness in elliptical annuli (the shape from the second moments); a smooth galaxy
    leaves noise, arms, bars and rings leave positive structure.
    """
    cos, sin = math.cos(angle), math.sin(angle)
    major = dx * cos + dy * sin
    minor = (-dx * sin + dy * cos) / max(1 - ellipticity, 0.1)
    distance = np.hypot(major, minor)
    edges = np.linspace(0, 1.5 * r_p, 11)
    index = np.clip(np.digitize(distance, edges) - 1, 0, len(edges) - 2)
    model = np.zeros_like(light)
    inside = distance < edges[-1]
    for ring in range(len(edges) - 1):
        members = inside & (index == ring)
        if members.any():
            model[members] = np.median(light[members])
    residual = np.clip(light - model, 0, None) * aperture
    flux = light[aperture].clip(0).sum()
    if flux <= 0:
        return 0.0, 0.0
    rotated = residual[::-1, ::-1]  # about the cutout's centre: close enough for a measure of lopsidedness
    return float(residual.sum() / flux), float(np.abs(residual - rotated).sum() / max(residual.sum(), 1e-9) / 2)


def _fourier(light, dy, dx, r_p) -> list[float]:
    """|sum I exp(-i m phi)| / sum I in each annulus, for m = 1..4."""
    phi = np.arctan2(dy, dx)
    radius = np.hypot(dy, dx)
    values = []
    for low, high in _FOURIER_ANNULI:
        members = (radius > low * r_p) & (radius <= high * r_p)
        flux = light[members].clip(0)
        total = flux.sum()
        for m in (1, 2, 3, 4):
            values.append(float(np.abs((flux * np.exp(-1j * m * phi[members])).sum()) / total) if total > 0
                          else 0.0)
    return values


def _profile(light, radius, r_p) -> list[float]:
    edges = np.linspace(0, 2 * r_p, _RADIAL_BINS + 1)
    centre = light[radius <= max(edges[1] / 2, 1.0)].mean()
    values = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        members = (radius >= low) & (radius < high)
        values.append(float(light[members].mean() / centre) if members.any() and centre > 0 else 0.0)
    return values


def _colours(pixels, radius, r50, r_p) -> list[float]:
    """log10 ratios R/G and G/B inside r50 and between r50 and 1.5 r_p, and the outer minus inner difference."""
    def ratios(mask):
        if not mask.any():
            return 0.0, 0.0
        red, green, blue = (max(pixels[..., band][mask].mean(), 1e-3) for band in range(3))
        return math.log10(red / green), math.log10(green / blue)

    inner = ratios(radius <= max(r50, 1.5))
    outer = ratios((radius > max(r50, 1.5)) & (radius <= 1.5 * r_p))
    return [*inner, *outer, outer[0] - inner[0], outer[1] - inner[1]]
