"""Redshift debiasing: a features fraction that fades with redshift comes back to its low-redshift baseline."""

import numpy as np
import pytest

from mlcore.votes.debias import RedshiftDebiaser


def faded_sample(n=4000, seed=0):
    """Galaxies whose true features fraction depends on physical size only, seen as if fading with redshift."""
    rng = np.random.default_rng(seed)
    redshift = rng.uniform(0.02, 0.15, n)
    physical = rng.uniform(1.0, 10.0, n)
    size = physical / redshift  # angular size shrinks with distance
    true = np.clip(0.2 + 0.06 * physical + rng.normal(0, 0.1, n), 0.01, 0.99)
    logit = np.log(true / (1 - true)) - 12 * (redshift - 0.02)  # the fading: fewer features seen further away
    return 1 / (1 + np.exp(-logit)), redshift, size, true


def test_debiased_fractions_no_longer_fall_with_redshift():
    p, redshift, size, true = faded_sample()
    debiased = RedshiftDebiaser().fit(p, redshift, size).transform(p, redshift, size)
    far = redshift > 0.12
    assert p[far].mean() < true[far].mean() - 0.2  # the raw fractions fade...
    assert abs(debiased[far].mean() - true[far].mean()) < 0.05  # ...the debiased ones do not
    assert ((debiased >= 0) & (debiased <= 1)).all()


def test_unanimous_votes_stay_unanimous():
    p, redshift, size, _ = faded_sample()
    p[:2] = [0.0, 1.0]
    debiased = RedshiftDebiaser().fit(p, redshift, size).transform(p, redshift, size)
    assert list(debiased[:2]) == [0.0, 1.0]


def test_thin_bins_are_left_uncorrected():
    p, redshift, size, _ = faded_sample(n=60)  # 25 bins of about 2 galaxies each
    debiaser = RedshiftDebiaser(min_per_bin=50).fit(p, redshift, size)
    assert np.allclose(debiaser.transform(p, redshift, size), p)


def test_it_refuses_unfitted_use_mismatched_arrays_and_too_few_galaxies():
    with pytest.raises(ValueError, match="not fitted"):
        RedshiftDebiaser().transform([0.5], [0.1], [3.0])
    with pytest.raises(ValueError, match=r"shapes \[\(2,\), \(1,\), \(1,\)\]"):
        RedshiftDebiaser().fit([0.5, 0.4], [0.1], [3.0])
    with pytest.raises(ValueError, match="too few"):
        RedshiftDebiaser(min_per_bin=10).fit([0.5], [0.1], [3.0])
