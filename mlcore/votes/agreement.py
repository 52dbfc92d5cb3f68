"""Inter-rater agreement between experts: Cohen's and Fleiss' kappa, raw agreement, and the tables they need.

Pure Python and numpy, no Django: a selector gathers ``{galaxy id: {expert id: label}}`` and these functions turn it
into numbers. Kappa corrects raw agreement for the agreement chance alone would give: 1 is perfect agreement, 0 is
no better than chance, below 0 is worse.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations

import numpy as np
from sklearn.metrics import cohen_kappa_score


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa between two raters who labelled the same items (``a[i]`` and ``b[i]`` are item i's labels).

    When both raters put every item into one and the same category, chance agreement is 1 and the usual formula is
    0/0; that is perfect agreement, so it returns 1.0 rather than NaN.

    Args:
        a, b: labels of the same items by two raters, equal lengths >= 1.

    Returns:
        kappa in [-1, 1].

    Raises:
        ValueError: when the lengths differ or are 0.
    """
    _check_pair(a, b)
    if len(set(a)) == 1 and set(a) == set(b):
        return 1.0
    return float(cohen_kappa_score(list(a), list(b)))


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa (Fleiss 1971) for many raters, allowing a different number of raters per item.

    With n_i = the raters of item i: P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)) is the share of rater pairs on item
    i who agree, p_j = sum_i n_ij / sum_i n_i the share of all labels in category j, and
    kappa = (mean P_i - sum_j p_j^2) / (1 - sum_j p_j^2). With the same number of raters on every item this is
    Fleiss' original statistic. When every label falls in one category (chance agreement 1) it returns 1.0.

    Args:
        counts: (n_items, n_categories) non-negative integers: counts[i, j] raters put item i into category j.

    Returns:
        kappa, at most 1.

    Raises:
        ValueError: when counts is not a non-empty 2-D array of non-negative integers, or an item has fewer than 2
            raters (the message names the rows).
    """
    table = np.asarray(counts)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(f"counts must be a non-empty 2-D array (n_items, n_categories), got shape {table.shape}")
    if not np.isfinite(table).all() or (table < 0).any() or (table != np.round(table)).any():
        raise ValueError(f"counts of shape {table.shape} must hold non-negative whole numbers")
    table = table.astype(np.float64)
    raters = table.sum(axis=1)
    too_few = np.flatnonzero(raters < 2)
    if len(too_few):
        raise ValueError(f"every item needs at least 2 raters; rows {too_few[:10].tolist()} of counts with shape "
                         f"{table.shape} have fewer")
    observed = ((table ** 2).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = table.sum(axis=0) / raters.sum()
    chance = float((shares ** 2).sum())
    if np.isclose(chance, 1.0):
        return 1.0
    return float((observed.mean() - chance) / (1.0 - chance))


def agreement_rate(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of items on which two raters gave the same label (not corrected for chance).

    Raises:
        ValueError: when the lengths differ or are 0.
    """
    _check_pair(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def pairwise_items(
    labels: Mapping[Hashable, Mapping[Hashable, str]],
) -> dict[tuple[Hashable, Hashable], tuple[list[str], list[str]]]:
    """For each pair of raters, their labels on the items both rated (input for :func:`cohen_kappa`).

    Args:
        labels: item -> {rater -> label}.

    Returns:
        (rater1, rater2) with rater1 < rater2 -> (rater1's labels, rater2's labels), aligned item by item in the
        order of ``labels``. Only pairs who share at least one item appear.
    """
    pairs: dict[tuple[Hashable, Hashable], tuple[list[str], list[str]]] = {}
    for by_rater in labels.values():
        for first, second in combinations(sorted(by_rater), 2):
            mine, theirs = pairs.setdefault((first, second), ([], []))
            mine.append(by_rater[first])
            theirs.append(by_rater[second])
    return dict(sorted(pairs.items()))


def category_counts(labels: Mapping[Hashable, Mapping[Hashable, str]], categories: Sequence[str]) -> np.ndarray:
    """The (items, categories) table of :func:`fleiss_kappa` over the items with at least 2 raters.

    Args:
        labels: item -> {rater -> label}.
        categories: every label that may occur; their order is the column order.

    Returns:
        int64 (items with >= 2 raters, len(categories)), rows in the order of ``labels``.

    Raises:
        ValueError: when categories repeats a name, or a label is not one of categories.
    """
    column = {category: position for position, category in enumerate(categories)}
    if len(column) != len(categories):
        raise ValueError(f"categories repeat a name: {list(categories)}")
    rows = []
    for item, by_rater in labels.items():
        if len(by_rater) < 2:
            continue
        row = np.zeros(len(categories), dtype=np.int64)
        for rater, label in by_rater.items():
            if label not in column:
                raise ValueError(f"item {item!r}: rater {rater!r} gave {label!r}, not one of {list(categories)}")
            row[column[label]] += 1
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(categories))


def _check_pair(a: Sequence[str], b: Sequence[str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"the two raters must label the same items: {len(a)} labels vs {len(b)}")
    if len(a) == 0:
        raise ValueError("no items: agreement needs at least one item both raters labelled")
