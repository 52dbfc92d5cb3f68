"""Inter-rater agreement (mlcore/votes/agreement.py)."""

import numpy as np
import pytest

from mlcore.votes.agreement import agreement_rate, category_counts, cohen_kappa, fleiss_kappa, pairwise_items

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa"): 10 items, 14 raters each, 5 categories.
WIKIPEDIA_COUNTS = np.array([
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
])


def test_cohen_kappa_matches_the_textbook_formula_on_a_small_table():
    # 2x2 table: both "spiral" 20, both "elliptical" 15, a spiral / b elliptical 5, a elliptical / b spiral 10.
    a = ["spiral"] * 25 + ["elliptical"] * 25
    b = ["spiral"] * 20 + ["elliptical"] * 5 + ["spiral"] * 10 + ["elliptical"] * 15
    observed = 35 / 50
    chance = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)

    assert cohen_kappa(a, b) == pytest.approx((observed - chance) / (1 - chance))


def test_cohen_kappa_is_one_for_identical_labels_and_zero_or_less_for_chance_level_labels():
    assert cohen_kappa(["a", "b", "c", "a"], ["a", "b", "c", "a"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) < 0


def test_cohen_kappa_calls_agreement_on_a_single_category_perfect_rather_than_nan():
    assert cohen_kappa(["spiral"] * 4, ["spiral"] * 4) == 1.0
    assert cohen_kappa(["spiral"], ["spiral"]) == 1.0


def test_cohen_kappa_of_raters_who_each_used_one_different_category_is_zero_not_one():
    assert cohen_kappa(["spiral"] * 3, ["elliptical"] * 3) == pytest.approx(0.0)


@pytest.mark.parametrize("function", [cohen_kappa, agreement_rate])
@pytest.mark.parametrize("a, b, message", [
    (["a", "b"], ["a"], "2 labels vs 1"),
    ([], [], "no items"),
])
def test_pairwise_agreement_rejects_unaligned_or_empty_labels(function, a, b, message):
    with pytest.raises(ValueError, match=message):
        function(a, b)


def test_agreement_rate_is_the_share_of_items_with_the_same_label():
    assert agreement_rate(["a", "b", "c", "d"], ["a", "b", "x", "y"]) == 0.5
    assert agreement_rate(["a"], ["a"]) == 1.0


def test_fleiss_kappa_reproduces_the_worked_example_of_fleiss_1971():
    assert fleiss_kappa(WIKIPEDIA_COUNTS) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_handles_items_with_different_numbers_of_raters():
    counts = [[2, 0], [0, 3], [1, 1]]
    # P_i = 1, 1, 0; p = (3/7, 4/7); P_e = 25/49; kappa = (2/3 - 25/49) / (24/49) = 23/72.

    assert fleiss_kappa(counts) == pytest.approx(23 / 72)


def test_fleiss_kappa_is_one_for_unanimous_items_and_for_a_single_category():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[4, 0], [2, 0]]) == 1.0


def test_fleiss_kappa_is_negative_when_raters_split_more_than_chance_would():
    assert fleiss_kappa([[1, 1], [1, 1], [1, 1]]) < 0


@pytest.mark.parametrize("counts, message", [
    (np.array([1, 2, 3]), r"2-D array .* got shape \(3,\)"),
    (np.zeros((0, 3)), r"got shape \(0, 3\)"),
    ([[2, 0], [1, 0], [0, 0]], r"at least 2 raters; rows \[1, 2\]"),
    ([[2, -1]], "non-negative whole numbers"),
    ([[1.5, 1]], "non-negative whole numbers"),
])
def test_fleiss_kappa_rejects_unusable_tables(counts, message):
    with pytest.raises(ValueError, match=message):
        fleiss_kappa(counts)


LABELS = {
    "galaxy-1": {"ann": "spiral", "bob": "spiral", "cy": "elliptical"},
    "galaxy-2": {"bob": "merger", "ann": "merger"},
    "galaxy-3": {"cy": "spiral"},
    "galaxy-4": {"cy": "elliptical", "bob": "spiral"},
}


def test_pairwise_items_aligns_each_pair_of_raters_on_the_items_both_labelled():
    pairs = pairwise_items(LABELS)

    assert pairs == {
        ("ann", "bob"): (["spiral", "merger"], ["spiral", "merger"]),
        ("ann", "cy"): (["spiral"], ["elliptical"]),
        ("bob", "cy"): (["spiral", "spiral"], ["elliptical", "elliptical"]),
    }
    assert cohen_kappa(*pairs[("ann", "bob")]) == 1.0


def test_pairwise_items_of_raters_who_never_overlap_is_empty():
    assert pairwise_items({"g1": {"ann": "spiral"}, "g2": {"bob": "spiral"}}) == {}


def test_category_counts_tabulates_items_with_at_least_two_raters_for_fleiss():
    counts = category_counts(LABELS, ["spiral", "elliptical", "merger"])

    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 0, 2], [1, 1, 0]])
    assert counts.dtype == np.int64
    assert -1 <= fleiss_kappa(counts) <= 1


def test_category_counts_of_no_shared_items_is_an_empty_table_with_the_category_columns():
    assert category_counts({"g1": {"ann": "spiral"}}, ["spiral", "bar"]).shape == (0, 2)


def test_category_counts_rejects_a_label_outside_the_categories_naming_it():
    with pytest.raises(ValueError, match=r"item 'galaxy-2': rater 'bob' gave 'merger'"):
        category_counts(LABELS, ["spiral", "elliptical"])
