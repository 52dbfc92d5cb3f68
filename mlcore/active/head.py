"""The probability model on top of frozen feature vectors: a calibrated, class-balanced logistic regression.

The backbone's features stay fixed; this head turns them into class probabilities for the query strategies
(:mod:`mlcore.active.query`) and for the predictions the experts see. Logistic regression on standardised features is
fast enough to refit after every batch of labels (2,000 x 512 in about a second) and to score a whole survey
(300,000 x 512 in a few seconds). Classes are weighted inversely to their frequency because the interesting
morphologies (mergers, rings, lenses) are the rare ones.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

CALIBRATIONS = ("sigmoid", "isotonic", None)

# Fits run BLAS on one thread. Each lbfgs step is a small matrix product whose thread barrier can wait a whole
# scheduler slice on 2 cores shared with the web server and the worker: measured with the other core busy, a
# calibrated fit on 2,000 x 512 took 0.6 s on two threads and 0.15-0.2 s on one.
FIT_THREADS = 1

# Rows scored at a time by predict_proba: bounds the standardised copy (65,536 x 512 float32 = 128 MiB).
PREDICT_BATCH = 65_536


class ProbabilityHead:
    """Standardise features, then a class-balanced multinomial logistic regression, calibrated when data allow.

    Balancing is done with sample weights (scikit-learn's "balanced" class weights, n / (C x class count), times any
    ``sample_weight`` given) rather than the regression's ``class_weight``, so that the calibration sees the same
    weights as the regression. Calibration therefore maps scores to probabilities under a balanced class prior:
    they read "how likely this class, were all classes equally common". Calibrating to the natural prior instead
    would undo the balancing (measured on a 95:5 two-blob set: minority recall 0.84-0.94 balanced-calibrated,
    0.22-0.48 natural-calibrated, 0.26-0.58 for an unweighted regression), and the rare morphologies are the ones
    the experts must not miss and the query strategies must be unsure about.

    Looks like a scikit-learn classifier: ``__init__`` stores hyperparameters only, :meth:`fit` returns self and
    sets ``classes_`` (sorted str labels), ``n_features_in_``, ``calibrated_`` (False when some class has fewer than
    ``cv`` examples, or ``calibration`` is None, and the plain balanced regression is used), ``scaler_`` and
    ``model_``.

    The bootstrap ensemble behind :meth:`member_proba` (for BALD) is fitted lazily on its first call, so that a fit
    for strategies that never ask for it costs nothing extra; until then the head keeps its standardised training
    rows (also through :meth:`save`), and drops them once the members exist.

    Args:
        C: inverse regularisation strength of the logistic regressions.
        calibration: "sigmoid" or "isotonic" (sklearn CalibratedClassifierCV), or None for no calibration.
        cv: folds of the calibration; every class needs at least this many examples for it to run.
        n_members: bootstrap members of :meth:`member_proba`.
        max_iter: iterations of the lbfgs solver.
        seed: random state of the regressions and of the bootstrap resamples.
    """

    def __init__(self, C: float = 1.0, calibration: str | None = "sigmoid", cv: int = 3, n_members: int = 5,
                 max_iter: int = 1000, seed: int = 0):
        self.C = C
        self.calibration = calibration
        self.cv = cv
        self.n_members = n_members
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X, y, sample_weight=None) -> ProbabilityHead:
        """Fit on feature rows ``X`` (n, d) with labels ``y`` (n,), optionally weighting rows by ``sample_weight``.

        Raises:
            ValueError: for non-2-D or non-finite ``X``, a length mismatch between ``X``, ``y`` and
                ``sample_weight``, fewer than two classes, or bad hyperparameters.
        """
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {list(CALIBRATIONS)}, got {self.calibration!r}")
        if self.cv < 2:
            raise ValueError(f"cv must be at least 2, got {self.cv}")
        if self.n_members < 1:
            raise ValueError(f"n_members must be at least 1, got {self.n_members}")
        matrix = _as_matrix(X)
        labels = np.asarray(y).astype(str)
        if labels.ndim != 1 or len(labels) != len(matrix):
            raise ValueError(f"X and y differ in length: X has {len(matrix)} rows, y has shape {labels.shape}")
        classes, codes = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"needs at least two classes, got {classes.tolist()}")
        weights = compute_sample_weight("balanced", codes)
        if sample_weight is not None:
            given = np.asarray(sample_weight, dtype=np.float64)
            if given.shape != (len(matrix),):
                raise ValueError(f"sample_weight must have shape ({len(matrix)},), got {given.shape}")
            if not np.isfinite(given).all() or given.min() < 0:
                raise ValueError("sample_weight must be finite and non-negative")
            weights = weights * given

        self.scaler_ = StandardScaler().fit(matrix)
        scaled = self.scaler_.transform(matrix).astype(np.float32, copy=False)
        counts = np.bincount(codes, minlength=len(classes))
        self.calibrated_ = self.calibration is not None and bool(counts.min() >= self.cv)
        if self.calibrated_:
            self.model_ = CalibratedClassifierCV(self._regression(), method=self.calibration, cv=self.cv)
        else:
            self.model_ = self._regression()
        with threadpool_limits(limits=FIT_THREADS):
            self.model_.fit(scaled, codes, sample_weight=weights)
        self.classes_ = classes
        self.n_features_in_ = matrix.shape[1]
        self._members: list[LogisticRegression] | None = None
        self._member_data = (scaled, codes, weights)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities float64 (n, C), columns in ``classes_`` order, rows summing to 1.

        Raises:
            ValueError: when unfitted, or ``X`` is not 2-D with ``n_features_in_`` columns.
        """
        matrix = self._check_input(X)
        out = np.empty((len(matrix), len(self.classes_)), dtype=np.float64)
        for start in range(0, len(matrix), PREDICT_BATCH):
            batch = self.scaler_.transform(matrix[start:start + PREDICT_BATCH]).astype(np.float32, copy=False)
            out[start:start + len(batch)] = _aligned_proba(self.model_, batch, len(self.classes_))
        return out

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as str labels (n,)."""
        probs = self.predict_proba(X)  # first: it raises the not-fitted error before classes_ is read
        return self.classes_[probs.argmax(axis=1)]

    def member_proba(self, X) -> np.ndarray:
        """Probabilities of each bootstrap member, float64 (n_members, n, C), columns in ``classes_`` order.

        Each member is a balanced logistic regression (uncalibrated) on a stratified bootstrap resample: every class
        is resampled with replacement to its own size, so every member sees every class. Members are fitted on the
        first call and kept.

        Raises:
            ValueError: as :meth:`predict_proba`.
        """
        matrix = self._check_input(X)
        if self._members is None:
            self._fit_members()
        out = np.empty((len(self._members), len(matrix), len(self.classes_)), dtype=np.float64)
        for start in range(0, len(matrix), PREDICT_BATCH):
            batch = self.scaler_.transform(matrix[start:start + PREDICT_BATCH]).astype(np.float32, copy=False)
            for m, member in enumerate(self._members):
                out[m, start:start + len(batch)] = _aligned_proba(member, batch, len(self.classes_))
        return out

    def save(self, path) -> Path:
        """Write the fitted head to ``path`` atomically (a temporary file in the same folder, then os.replace).

        Returns:
            The path written.

        Raises:
            ValueError: when unfitted.
        """
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                joblib.dump(self, stream)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; readable like any other model file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> ProbabilityHead:
        """Read a head written by :meth:`save`. Only for files this product wrote: unpickling runs code.

        Raises:
            ValueError: naming ``path`` when it is missing, unreadable, corrupt, or holds something else.
        """
        try:
            head = joblib.load(path)
        except Exception as exc:
            raise ValueError(f"cannot read a probability head from {path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(head, cls) or not hasattr(head, "classes_"):
            raise ValueError(f"{path} does not hold a fitted {cls.__name__} (found {type(head).__name__})")
        return head

    def _regression(self, seed: int | None = None) -> LogisticRegression:
        # No class_weight: the balancing comes in as sample weights (see the class docstring). lbfgs on more than two
        # classes is multinomial (the only choice since scikit-learn 1.7).
        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed if seed is None else seed)

    def _fit_members(self) -> None:
        scaled, codes, weights = self._member_data
        members = []
        for m in range(self.n_members):
            rng = np.random.default_rng([self.seed, m])
            rows = np.concatenate([rng.choice(np.flatnonzero(codes == c), size=int((codes == c).sum()))
                                   for c in range(len(self.classes_))])
            member = self._regression(seed=self.seed + m)
            with threadpool_limits(limits=FIT_THREADS):
                member.fit(scaled[rows], codes[rows], sample_weight=weights[rows])
            members.append(member)
        self._members = members
        self._member_data = None  # the training rows are only kept to fit the members

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    def _check_input(self, X) -> np.ndarray:
        self._check_fitted()
        matrix = _as_matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {matrix.shape[1]} features per row, the head was fitted on {self.n_features_in_}")
        return matrix


def _as_matrix(X) -> np.ndarray:
    matrix = np.asarray(X, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"X must be a 2-D array (rows x features), got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"X of shape {matrix.shape} contains NaN or infinite values")
    return matrix


def _aligned_proba(model, scaled: np.ndarray, n_classes: int) -> np.ndarray:
    """``model``'s probabilities laid out over all ``n_classes`` class codes.

    A model fitted on a subset of the codes (``model.classes_``) gets probability 0 for the others; rows are
    renormalised to sum to 1.
    """
    proba = model.predict_proba(scaled)
    out = np.zeros((len(scaled), n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    return out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)


def evaluate(y_true, y_pred, classes) -> dict:
    """Classification metrics as JSON-friendly numbers.

    Args:
        y_true: true labels (n,).
        y_pred: predicted labels (n,).
        classes: every class to report, in the order of the confusion matrix; labels are compared as str.

    Returns:
        {"n", "accuracy", "balanced_accuracy" (mean recall over the classes present in ``y_true``), "macro_f1"
        (mean F1 over the same classes), "classes",
        "per_class": {class: {"precision", "recall", "f1", "support"}}, "confusion": [[count of true class i
        predicted as class j, ...], ...]}.

    Raises:
        ValueError: for inputs of different lengths, no rows, or a true label outside ``classes``.
    """
    truth = np.asarray(y_true).astype(str)
    predicted = np.asarray(y_pred).astype(str)
    names = [str(c) for c in classes]
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got shapes {truth.shape} and {predicted.shape}")
    if len(truth) == 0:
        raise ValueError("nothing to evaluate: y_true is empty")
    unknown = sorted(set(truth.tolist()) - set(names))
    if unknown:
        raise ValueError(f"y_true holds labels outside classes {names}: {unknown}")
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=names, zero_division=0)
    present = support > 0
    return {
        "n": int(len(truth)),
        "accuracy": float((truth == predicted).mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "classes": names,
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(names)},
        "confusion": confusion_matrix(truth, predicted, labels=names).tolist(),
    }


def expected_calibration_error(probs, y_true_idx, n_bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence over ``n_bins`` equal-width bins.

    The weighted mean, over bins of rows by confidence, of |accuracy - mean confidence|: 0 for a perfectly calibrated
    model.

    Args:
        probs: (n, C) class probabilities.
        y_true_idx: (n,) column index of each row's true class.
        n_bins: bins on [0, 1].

    Raises:
        ValueError: naming the shapes when ``probs`` is not a non-empty (n, C) array, ``y_true_idx`` is not (n,)
            with values in 0..C-1, or ``n_bins`` < 1.
    """
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(y_true_idx)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"probs must be a non-empty 2-D array (rows x classes), got shape {probs.shape}")
    if truth.shape != (probs.shape[0],) or not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"y_true_idx must be integers of shape ({probs.shape[0]},), got {truth.dtype} {truth.shape}")
    if truth.min() < 0 or truth.max() >= probs.shape[1]:
        raise ValueError(f"y_true_idx must lie in 0..{probs.shape[1] - 1}, got {truth.min()}..{truth.max()}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == truth
    # Bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 joins the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)
