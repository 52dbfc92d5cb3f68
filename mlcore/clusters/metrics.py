"""How well clusters match labels (expert labels, consensus classes, or synthetic truth), as JSON-friendly numbers."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def is_unlabelled(value) -> bool:
    """True for the markers of an unlabelled row: None, -1, an empty string, or NaN (a missing value in pandas)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, float | np.floating) and np.isnan(value):
        return True
    try:
        return bool(value == -1)
    except (TypeError, ValueError):
        return False


def label_metrics(predicted, truth) -> dict:
    """Compare predicted clusters with true labels on the rows that have a label.

    Args:
        predicted: cluster of each row (ints or strings), length n.
        truth: label of each row (ints or strings), length n; None, -1, "" or NaN mark a row without a label,
            which is left out.

    Returns:
        {"n": rows compared, "ari": adjusted Rand index, "nmi": normalised mutual information, "purity": share of
        rows whose cluster's most common label is their own, "contingency": {"clusters": [...], "labels": [...],
        "table": [[count of rows in cluster i with label j, ...], ...]}}. Clusters and labels are sorted; every
        value is a plain Python int, float or str, ready for JSON.

    Raises:
        ValueError: when the inputs are not 1-D, differ in length, or no row has a label.
    """
    predicted = _as_column(predicted, "predicted")
    truth = _as_column(truth, "truth")
    if len(predicted) != len(truth):
        raise ValueError(f"predicted and truth differ in length: {len(predicted)} vs {len(truth)}")
    labelled = np.array([not is_unlabelled(value) for value in truth], dtype=bool)
    if not labelled.any():
        raise ValueError(f"no row to compare: all {len(truth)} truth values are unlabelled (None, -1 or empty)")

    clusters = [_plain(value) for value in predicted[labelled]]
    labels = [_plain(value) for value in truth[labelled]]
    # Encode as integers for sklearn (it refuses object arrays that mix types) and for the table order.
    cluster_names, cluster_codes = _encode(clusters)
    label_names, label_codes = _encode(labels)
    table = contingency_matrix(label_codes, cluster_codes).T  # rows: clusters, columns: labels
    return {
        "n": int(labelled.sum()),
        "ari": float(adjusted_rand_score(label_codes, cluster_codes)),
        "nmi": float(normalized_mutual_info_score(label_codes, cluster_codes)),
        "purity": float(table.max(axis=1).sum() / table.sum()),
        "contingency": {
            "clusters": cluster_names,
            "labels": label_names,
            "table": [[int(count) for count in row] for row in table],
        },
    }


def _as_column(values, what: str) -> np.ndarray:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{what} must be 1-D, got shape {values.shape}")
        return values.astype(object)
    values = list(values)
    column = np.empty(len(values), dtype=object)
    try:
        column[:] = values  # element by element: np.asarray would turn [1, "a"] into strings
    except ValueError:
        raise ValueError(f"{what} must be a flat sequence of labels, got nested values") from None
    return column


def _plain(value):
    """A numpy scalar as the Python int/float/str it stands for (JSON cannot encode numpy types)."""
    return value.item() if isinstance(value, np.generic) else value


def _encode(values: list) -> tuple[list, np.ndarray]:
    names = sorted(set(values), key=_sort_key)
    code_of = {name: code for code, name in enumerate(names)}
    return names, np.array([code_of[value] for value in values], dtype=np.int64)


def _sort_key(value) -> tuple:
    # Numbers before strings, each in natural order, so mixed labels still sort without a TypeError.
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))
