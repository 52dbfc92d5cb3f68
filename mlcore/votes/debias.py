"""Redshift debiasing of one answer's vote fraction: a simpler form of Bamford et al. (2009) and Willett et al.
(2013, section 3.2), documented in docs/commands.md (debias_votes).

Volunteers see fewer features in galaxies that look small and faint, so the raw "features" fraction falls with
redshift at a fixed physical size. The premise (Bamford et al. 2009): over a narrow redshift range the intrinsic mix
of morphologies at a given physical size does not change, so galaxies of that size at the lowest redshifts are the
baseline. Galaxies are binned by redshift (quantiles) and by a physical-size proxy (angular size x redshift, as the
angular-diameter distance grows about linearly with z below z ~ 0.3); in each bin the correction is the mean log-odds
of the baseline bin (lowest redshift, same size bin) minus the bin's own, added to each galaxy's log-odds. Bins with
fewer than ``min_per_bin`` galaxies, theirs or their baseline's, are left uncorrected. Hart et al. (2016) fit a
continuous function of redshift, size and luminosity instead; this needs only redshift and size.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-3  # fractions of exactly 0 or 1 have infinite log-odds


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _check(p, redshift, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(a, dtype=float) for a in (p, redshift, size)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"fractions, redshifts and sizes must be 1-D and alike; got shapes "
                         f"{[a.shape for a in arrays]}")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("fractions, redshifts and sizes must be finite numbers")
    return arrays[0], arrays[1], arrays[2]


class RedshiftDebiaser:
    """Binned log-odds correction of one vote fraction towards its low-redshift baseline.

    Args:
        n_redshift_bins: redshift quantile bins; the first is the baseline.
        n_size_bins: physical-size quantile bins.
        min_per_bin: a bin (or its baseline) with fewer galaxies gets no correction.
    """

    def __init__(self, n_redshift_bins: int = 5, n_size_bins: int = 5, min_per_bin: int = 10):
        self.n_redshift_bins = n_redshift_bins
        self.n_size_bins = n_size_bins
        self.min_per_bin = min_per_bin

    def _bins(self, redshift: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z_bin = np.clip(np.searchsorted(self.redshift_edges_, redshift, side="right") - 1, 0, self.n_redshift_bins - 1)
        s_bin = np.clip(np.searchsorted(self.size_edges_, size * redshift, side="right") - 1, 0,
                        self.n_size_bins - 1)
        return z_bin, s_bin

    def fit(self, p, redshift, size) -> RedshiftDebiaser:
        """Learn the corrections from galaxies' fractions, redshifts and angular sizes (any one unit)."""
        p, redshift, size = _check(p, redshift, size)
        if len(p) < self.min_per_bin:
            raise ValueError(f"{len(p)} galaxies are too few to fit; at least {self.min_per_bin} are needed")
        quantiles = np.linspace(0, 1, self.n_redshift_bins + 1)
        self.redshift_edges_ = np.quantile(redshift, quantiles)
        self.size_edges_ = np.quantile(size * redshift, np.linspace(0, 1, self.n_size_bins + 1))
        z_bin, s_bin = self._bins(redshift, size)
        logits = _logit(p)
        means = np.full((self.n_size_bins, self.n_redshift_bins), np.nan)
        for s in range(self.n_size_bins):
            for z in range(self.n_redshift_bins):
                members = (s_bin == s) & (z_bin == z)
                if members.sum() >= self.min_per_bin:
                    means[s, z] = logits[members].mean()
        correction = means[:, :1] - means
        self.correction_ = np.where(np.isfinite(correction), correction, 0.0)
        return self

    def transform(self, p, redshift, size) -> np.ndarray:
        """The debiased fractions, in [0, 1].

        Raises:
            ValueError: when not fitted, or for arrays of different shapes or with non-finite values.
        """
        if not hasattr(self, "correction_"):
            raise ValueError("this RedshiftDebiaser is not fitted yet; call fit first")
        p, redshift, size = _check(p, redshift, size)
        z_bin, s_bin = self._bins(redshift, size)
        shifted = _logit(p) + self.correction_[s_bin, z_bin]
        debiased = 1 / (1 + np.exp(-shifted))
        # Keep unanimous votes unanimous: the clip in _logit would otherwise move 0 and 1 by EPS.
        return np.where((p <= 0) | (p >= 1), p, debiased)
