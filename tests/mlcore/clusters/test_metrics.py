"""Cluster-versus-label metrics (mlcore/clusters/metrics.py)."""

import json

import numpy as np
import pytest

from mlcore.clusters.metrics import is_unlabelled, label_metrics


def test_a_perfect_clustering_scores_one_everywhere():
    result = label_metrics([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])

    assert (result["n"], result["ari"], result["nmi"], result["purity"]) == (6, 1.0, 1.0, 1.0)


def test_renaming_the_clusters_changes_no_score():
    result = label_metrics([7, 7, 3, 3, 5, 5], ["spiral", "spiral", "elliptical", "elliptical", "merger", "merger"])

    assert result["ari"] == pytest.approx(1.0)
    assert result["nmi"] == pytest.approx(1.0)
    assert result["purity"] == 1.0


def test_a_small_case_gives_the_known_contingency_table_and_purity():
    predicted = [0, 0, 0, 1, 1, 1, 1]
    truth = ["a", "a", "b", "b", "b", "c", "c"]

    result = label_metrics(predicted, truth)

    assert result["contingency"] == {"clusters": [0, 1], "labels": ["a", "b", "c"], "table": [[2, 1, 0], [0, 2, 2]]}
    assert result["purity"] == pytest.approx(4 / 7)  # cluster 0: 2 of "a"; cluster 1: 2 of "b" (or "c")
    assert 0 < result["nmi"] < 1
    assert result["ari"] < 1


def test_a_clustering_unrelated_to_the_labels_scores_about_zero():
    rng = np.random.default_rng(0)

    result = label_metrics(rng.integers(0, 5, 2000), rng.integers(0, 5, 2000))

    assert abs(result["ari"]) < 0.01 and result["nmi"] < 0.01


def test_unlabelled_rows_are_left_out():
    predicted = [0, 0, 1, 1, 1, 0, 1, 0]
    truth = ["a", "a", "b", "b", None, -1, "", float("nan")]

    result = label_metrics(predicted, truth)

    assert result["n"] == 4
    assert result["ari"] == 1.0
    assert result["contingency"]["table"] == [[2, 0], [0, 2]]


def test_numpy_input_comes_back_as_plain_json_values():
    predicted = np.array([1, 1, 0, 0], dtype=np.int64)
    truth = np.array([3, 3, -1, 4], dtype=np.int32)

    result = label_metrics(predicted, truth)

    assert json.loads(json.dumps(result)) == result
    assert all(type(value) is int for value in result["contingency"]["clusters"] + result["contingency"]["labels"])
    assert type(result["n"]) is int and type(result["ari"]) is float
    assert result["contingency"]["labels"] == [3, 4]


def test_string_clusters_and_mixed_labels_sort_numbers_first():
    result = label_metrics(["x", "y", "y"], [2, "bar", 1])

    assert result["contingency"]["clusters"] == ["x", "y"]
    assert result["contingency"]["labels"] == [1, 2, "bar"]
    assert result["contingency"]["table"] == [[0, 1, 0], [1, 0, 1]]


@pytest.mark.parametrize("predicted, truth, message", [
    ([0, 1], [None, -1], "no row to compare: all 2 truth values are unlabelled"),
    ([], [], "no row to compare: all 0 truth values"),
    ([0, 1, 2], [0, 1], "differ in length: 3 vs 2"),
    (np.zeros((2, 2)), [0, 1], r"predicted must be 1-D, got shape \(2, 2\)"),
])
def test_it_rejects_inputs_with_nothing_to_compare(predicted, truth, message):
    with pytest.raises(ValueError, match=message):
        label_metrics(predicted, truth)


@pytest.mark.parametrize("value, unlabelled", [
    (None, True), (-1, True), (np.int64(-1), True), ("", True), (float("nan"), True),
    (0, False), ("spiral", False), ("-1", False), (np.int64(3), False),
])
def test_is_unlabelled_knows_the_markers_of_a_missing_label(value, unlabelled):
    assert is_unlabelled(value) is unlabelled
