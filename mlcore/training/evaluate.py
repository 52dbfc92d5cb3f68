"""Evaluation of a model version on a fixed held-out split, a pixel baseline to beat, and the numbers to show.

The split is fixed by a hash of each galaxy id, not drawn from the labels of the day: a galaxy held out once is held
out for ever, so every model version is scored on the same kind of galaxies and no retraining ever sees one of them,
however many labels arrive later. The price is that the split is stratified only in expectation; ``stratified_check``
says which classes ended up with no held-out galaxy, so the caller can warn instead of reporting a recall of nothing.

The baseline, PCA of downsampled pixels followed by a logistic regression, is what a learned backbone must beat to
be worth its training time; ``compare`` lays versions and baseline side by side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlcore.active.head import FIT_THREADS, evaluate, expected_calibration_error

# 8 bytes of blake2b give 2**64 equally likely buckets: far finer than any fraction anyone will ask for.
_HASH_BYTES = 8


def held_out_mask(galaxy_ids, *, fraction: float = 0.2, salt: str = "held-out") -> np.ndarray:
    """Which galaxies belong to the fixed held-out split.

    Galaxy ``i`` is held out iff the first 8 bytes of ``blake2b(f"{salt}:{i}")``, read as a big-endian integer and
    divided by 2**64, lie below ``fraction``. The answer depends on the id alone (never on the other ids, their
    order or the labels), so adding galaxies leaves the mask of the old ones unchanged, and it is the same in every
    process (Python's own ``hash`` is randomised per process). Classes are held out in proportion only in
    expectation: a rare class may, by chance, have no held-out galaxy (see :func:`stratified_check`).

    Args:
        galaxy_ids: (n,) ids, integers or strings; an integer id and its decimal string fall on the same side.
        fraction: share to hold out, in [0, 1].
        salt: changes the whole split; keep it fixed for the life of a project.

    Returns:
        bool (n,), True for held-out galaxies.

    Raises:
        ValueError: ``fraction`` outside [0, 1] or ids that are not one-dimensional.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    ids = np.asarray(galaxy_ids)
    if ids.ndim != 1:
        raise ValueError(f"galaxy_ids must be one-dimensional, got shape {ids.shape}")
    # Compared as integers so the float rounding of a division cannot move a galaxy across the threshold.
    threshold = int(fraction * 2**64)
    prefix = f"{salt}:".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + str(value).encode(), digest_size=_HASH_BYTES).digest(), "big")
         < threshold for value in ids.tolist()),
        dtype=bool, count=len(ids),
    )


def stratified_check(labels, mask) -> dict:
    """Per-class counts of a held-out split, to warn about classes the split serves badly.

    Args:
        labels: (n,) class of each galaxy (compared as str).
        mask: bool (n,), True for held-out galaxies (e.g. from :func:`held_out_mask`).

    Returns:
        {"n", "held_out", "held_out_fraction", "per_class": {class: {"total", "held_out", "training"}} in sorted
        class order, "without_held_out": classes with no held-out galaxy, "without_training": classes with every
        galaxy held out}. Plain JSON types only.

    Raises:
        ValueError: labels and mask that are not one-dimensional of one length.
    """
    names = np.asarray(labels).astype(str)
    held = np.asarray(mask, dtype=bool)
    if names.ndim != 1 or held.shape != names.shape:
        raise ValueError(f"labels and mask must be 1-D of one length, got shapes {names.shape} and {held.shape}")
    per_class = {}
    for name in np.unique(names).tolist():
        rows = names == name
        out = int((rows & held).sum())
        per_class[name] = {"total": int(rows.sum()), "held_out": out, "training": int(rows.sum()) - out}
    return {
        "n": int(len(names)),
        "held_out": int(held.sum()),
        "held_out_fraction": float(held.mean()) if len(names) else 0.0,
        "per_class": per_class,
        "without_held_out": [name for name, counts in per_class.items() if counts["held_out"] == 0],
        "without_training": [name for name, counts in per_class.items() if counts["training"] == 0],
    }


def evaluate_predictions(y_true: Sequence[str], probs, classes: Sequence[str]) -> dict:
    """Metrics of class probabilities against true labels, as JSON-friendly numbers.

    Args:
        y_true: (n,) true labels (compared as str), each one of ``classes``.
        probs: (n, C) probabilities, columns in ``classes`` order; the prediction is the most probable column.
        classes: the C class names.

    Returns:
        :func:`mlcore.active.head.evaluate` of the predictions ({"n", "accuracy", "balanced_accuracy", "classes",
        "per_class": {class: {"precision", "recall", "f1", "support"}}, "confusion": rows = true class, columns =
        predicted}) plus "ece", the expected calibration error of the top-class confidence over 10 bins.

    Raises:
        ValueError: probs not (n, C) with C = len(classes) and n = len(y_true), non-finite probs, no rows, or a
            true label outside ``classes``.
    """
    names = [str(c) for c in classes]
    truth, matrix = _checked(y_true, probs, names)
    predicted = np.asarray(names)[matrix.argmax(axis=1)]
    metrics = evaluate(truth, predicted, names)  # raises for labels outside classes, before the index lookup below
    index = {name: i for i, name in enumerate(names)}
    metrics["ece"] = expected_calibration_error(matrix, np.array([index[t] for t in truth], dtype=np.int64))
    return metrics


def pixel_baseline(train_images, train_labels, test_images, *, n_components: int = 20, image_size: int = 32,
                   seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The baseline a learned backbone must beat: PCA of downsampled pixels, then a class-balanced logistic regression.

    Images are downsampled (antialiased bilinear) to ``image_size`` when larger, flattened, standardised per pixel,
    projected on ``n_components`` principal components (fewer when there are fewer training rows or pixels) and
    classified by a logistic regression with class weights inverse to class frequency.

    Args:
        train_images: (N, 3, S, S) images (tensor or array) or (N, D) rows already flattened.
        train_labels: (N,) labels (compared as str), at least two classes.
        test_images: (M, ...) like ``train_images``.
        n_components: principal components kept, at most.
        image_size: side the images are reduced to; ignored for (N, D) rows.
        seed: random state of the PCA and the regression.

    Returns:
        ``(probs, classes)``: float64 (M, C) probabilities with columns in ``classes`` order (sorted str labels).

    Raises:
        ValueError: mismatched shapes, fewer than two classes, or bad parameters.
    """
    if n_components < 1 or image_size < 1:
        raise ValueError(f"n_components and image_size must be >= 1, got {n_components} and {image_size}")
    train = _pixel_rows(train_images, image_size, "train_images")
    test = _pixel_rows(test_images, image_size, "test_images")
    labels = np.asarray(train_labels).astype(str)
    if labels.shape != (len(train),):
        raise ValueError(f"train_labels must have shape ({len(train)},), got {labels.shape}")
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(f"train rows have {train.shape[1]} values each, test rows {test.shape[1]}")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f"the baseline needs at least two classes, got {classes.tolist()}")
    components = min(n_components, len(train), train.shape[1])
    model = make_pipeline(
        StandardScaler(),
        PCA(n_components=components, random_state=seed),
        LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed),
    )
    with threadpool_limits(limits=FIT_THREADS):
        model.fit(train, labels)
        probs = model.predict_proba(test) if len(test) else np.zeros((0, len(classes)))
    # The regression's classes_ are np.unique of the labels too, so columns already follow ``classes``.
    return np.asarray(probs, dtype=np.float64), classes.tolist()


def confident_mistakes(y_true, probs, classes, *, k: int = 12) -> list[dict]:
    """The ``k`` misclassified galaxies the model was surest about: the first ones an expert should look at.

    Args:
        y_true: (n,) true labels (compared as str).
        probs: (n, C) probabilities, columns in ``classes`` order.
        classes: the C class names.
        k: at most this many rows are returned.

    Returns:
        [{"index": row in ``y_true``, "true", "predicted", "probability": of the predicted class}, ...], most
        confident first (ties: lower index first).

    Raises:
        ValueError: shapes as in :func:`evaluate_predictions`, or k < 0.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    names = [str(c) for c in classes]
    truth, matrix = _checked(y_true, probs, names)
    best = matrix.argmax(axis=1)
    confidence = matrix[np.arange(len(matrix)), best]
    wrong = np.flatnonzero(np.asarray(names)[best] != truth)
    # A stable sort on the negated confidence keeps ties in index order.
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    return [{"index": int(i), "true": str(truth[i]), "predicted": names[best[i]], "probability": float(confidence[i])}
            for i in order]


def compare(results: Mapping[str, dict]) -> list[dict]:
    """Rows of a side-by-side table of evaluations, in the mapping's order.

    Args:
        results: name -> a dict like :func:`evaluate_predictions` returns, e.g. {"new version": ...,
            "previous version": ..., "pixels PCA(20)+LR": ...}.

    Returns:
        [{"name", "accuracy", "balanced_accuracy", "ece", "n"}, ...]; a number a result lacks is None.
    """
    rows = []
    for name, metrics in results.items():
        row: dict = {"name": str(name)}
        for key in ("accuracy", "balanced_accuracy", "ece"):
            value = metrics.get(key)
            row[key] = None if value is None else float(value)
        row["n"] = None if metrics.get("n") is None else int(metrics["n"])
        rows.append(row)
    return rows


def _checked(y_true, probs, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true).astype(str)
    matrix = np.asarray(probs, dtype=np.float64)
    if truth.ndim != 1 or matrix.shape != (len(truth), len(names)):
        raise ValueError(f"probs must have shape (len(y_true), len(classes)) = ({len(truth)}, {len(names)}), "
                         f"got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"probs of shape {matrix.shape} contains NaN or infinite values")
    return truth, matrix


def _pixel_rows(images, image_size: int, name: str) -> np.ndarray:
    """(N, 3, S, S) images -> (N, 3 * s * s) float32 rows at s = min(S, image_size); (N, D) rows pass through."""
    tensor = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    tensor = tensor.detach().to("cpu", torch.float32)
    if tensor.dim() == 4 and tensor.shape[-1] > image_size:
        # Antialiased: a plain bilinear reduction would alias the fine structure it throws away into the pixels kept.
        tensor = F.interpolate(tensor, size=(image_size, image_size), mode="bilinear", antialias=True,
                               align_corners=False)
    if tensor.dim() not in (2, 4):
        raise ValueError(f"{name} must be (N, 3, S, S) images or (N, D) rows, got shape {tuple(tensor.shape)}")
    rows = tensor.reshape(len(tensor), -1).numpy()
    if not np.isfinite(rows).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return rows
