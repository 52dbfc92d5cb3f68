"""Acquisition functions for active learning (mlcore/active/query.py and the scores, diversity and batch
modules it re-exports).

Feature-based selection compares vectors by direction (cosine), so the hand-made pools below place their blobs
around different unit directions rather than at different distances from the origin.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlcore.active.diversity
from mlcore.active.query import (
    DEFAULT_WEIGHTS,
    STRATEGIES,
    UNCERTAINTY,
    Selection,
    bald,
    choose,
    cluster_margin,
    combined,
    entropy,
    k_center_greedy,
    least_confidence,
    margin,
    random_sample,
    strategy_needs,
    top_scores,
    typicality,
    typiclust,
    vote_disagreement,
    without_near_duplicates,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def blobs(sizes, *, dim=8, spread=0.02, seed=0):
    """Blobs of the given sizes around the unit directions e_0, e_1, ...; returns (features float32, blob of each)."""
    rng = np.random.default_rng(seed)
    which = np.repeat(np.arange(len(sizes)), sizes)
    features = np.eye(dim)[which] + spread * rng.standard_normal((len(which), dim))
    return features.astype(np.float32), which


def unit_rows(vectors):
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def mask(n_pool, indices=()):
    chosen = np.zeros(n_pool, dtype=bool)
    chosen[list(indices)] = True
    return chosen


@pytest.fixture(scope="module")
def pool():
    """Sixty galaxies in three blobs, with every input any strategy can use."""
    features, blob = blobs([30, 20, 10], spread=0.15, seed=1)  # spread out enough that few count as near-duplicates
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), size=60)
    member_probs = rng.dirichlet(np.ones(4), size=(5, 60))
    votes = rng.dirichlet(np.ones(3), size=60)
    reached = rng.integers(0, 30, size=60).astype(float)
    return {"features": features, "probs": probs, "member_probs": member_probs, "clusters": blob,
            "vote_questions": [(votes, reached), (votes[:, :2] / votes[:, :2].sum(1, keepdims=True), reached / 2)],
            "labelled": mask(60, range(0, 60, 2))}


# --- scores ---------------------------------------------------------------------------------------------------------

def test_least_confidence_is_one_minus_the_top_probability():
    np.testing.assert_allclose(least_confidence([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]), [0.3, 0.6])


def test_margin_ranks_a_coin_flip_above_a_sure_thing():
    scores = margin([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])

    np.testing.assert_allclose(scores, [1.0, 0.0, 0.7])


def test_entropy_is_zero_for_a_sure_thing_one_for_a_uniform_guess_and_normalised_by_the_classes():
    scores = entropy([[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])

    np.testing.assert_allclose(scores, [0.0, 1.0, 0.5], atol=1e-12)


def test_bald_is_high_where_members_disagree_and_zero_where_they_agree_even_on_a_uniform_guess():
    members = np.array([
        [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]],
        [[0.0, 1.0], [0.5, 0.5], [0.9, 0.1], [0.4, 0.6]],
    ])

    def nats(p):
        return -sum(x * np.log(x) for x in p if x > 0)

    expected_last = (nats([0.6, 0.4]) - (nats([0.8, 0.2]) + nats([0.4, 0.6])) / 2) / np.log(2)

    np.testing.assert_allclose(bald(members), [1.0, 0.0, 0.0, expected_last], atol=1e-12)


@pytest.mark.parametrize("function", [least_confidence, margin, entropy])
@pytest.mark.parametrize("probs, message", [
    (np.full(5, 0.2), r"probs must be 2-D \(n_galaxies, n_classes\), got shape \(5,\)"),
    (np.ones((3, 1)), r"at least 2 classes .* got shape \(3, 1\)"),
    ([[0.5, 0.5], [0.5, 0.2]], r"row 1 of shape \(2, 2\) sums to 0.7"),
    ([[1.5, -0.5]], "negative"),
    ([[np.nan, 1.0]], "NaN"),
])
def test_uncertainty_scores_reject_probabilities_that_are_not_a_stochastic_matrix(function, probs, message):
    with pytest.raises(ValueError, match=message):
        function(probs)


@pytest.mark.parametrize("member_probs, message", [
    (np.full((4, 2), 0.5), r"3-D \(n_members, n_galaxies, n_classes\), got shape \(4, 2\)"),
    (np.full((1, 4, 2), 0.5), r"at least 2 members .* got shape \(1, 4, 2\)"),
    (np.full((2, 4, 2), 0.3), "must sum to 1"),
])
def test_bald_rejects_member_probabilities_of_the_wrong_shape(member_probs, message):
    with pytest.raises(ValueError, match=message):
        bald(member_probs)


def test_vote_disagreement_ranks_forty_split_votes_above_three_split_votes():
    fractions = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])

    scores = vote_disagreement([(fractions, np.array([3, 40, 40]))], prior=10)

    np.testing.assert_allclose(scores, [3 / 13, 40 / 50, 0.0])


def test_vote_disagreement_weights_each_question_by_how_many_volunteers_reached_it():
    root = (np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([10, 10]))
    split = np.array([[0.5, 0.5], [0.5, 0.5]])

    scores = vote_disagreement([root, (split, np.array([10, 2]))], prior=10)

    # Mean entropy (10 * 0 + 10 * 1) / 20 and (10 * 0 + 2 * 1) / 12, each times 10 / (10 + 10).
    np.testing.assert_allclose(scores, [0.25, 1 / 12])


def test_vote_disagreement_gives_zero_to_galaxies_nobody_voted_on_even_with_nan_fractions():
    fractions = np.array([[np.nan, np.nan, np.nan], [1 / 3, 1 / 3, 1 / 3]])
    deeper = np.array([[np.nan, np.nan], [np.nan, np.nan]])

    scores = vote_disagreement([(fractions, [0, 10]), (deeper, [0, 0])], prior=0)

    np.testing.assert_allclose(scores, [0.0, 1.0])


def test_vote_disagreement_rescales_multiple_choice_fractions_that_do_not_sum_to_one():
    ticks = np.array([[0.8, 0.8], [0.9, 0.0], [0.0, 0.0]])

    np.testing.assert_allclose(vote_disagreement([(ticks, [10, 10, 10])], prior=0), [1.0, 0.0, 0.0])


@pytest.mark.parametrize("questions, prior, message", [
    ([], 10, "at least one"),
    ([(np.zeros(3), np.zeros(3))], 10, r"fractions of question 0 must be 2-D .* got shape \(3,\)"),
    ([(np.zeros((3, 2)), np.zeros(4))], 10, r"reached of question 0 must have shape \(3,\) .* got \(4,\)"),
    ([(np.full((2, 2), 0.5), [1, 1]), (np.full((3, 2), 0.5), [1, 1, 1])], 10, "question 1 covers 3 galaxies"),
    ([(np.array([[np.nan, np.nan]]), [5])], 10, "NaN for 1 galaxies that volunteers reached"),
    ([(np.full((1, 2), 0.5), [-1])], 10, "counts >= 0"),
    ([(np.full((1, 2), 0.5), [1])], -1, "prior must be"),
])
def test_vote_disagreement_rejects_malformed_questions(questions, prior, message):
    with pytest.raises(ValueError, match=message):
        vote_disagreement(questions, prior=prior)


def test_combined_averages_rank_normalised_scores_by_weight():
    scores = {"margin": np.array([10.0, 20.0, 30.0]), "disagreement": np.array([3.0, 2.0, 1.0])}

    mixed = combined(scores, {"margin": 3.0, "disagreement": 1.0})

    np.testing.assert_allclose(mixed, [0.25, 0.5, 0.75])


def test_combined_averages_tied_ranks_and_puts_a_constant_score_at_one_half():
    np.testing.assert_allclose(combined({"a": np.array([1.0, 1.0, 2.0])}, {"a": 1}), [0.25, 0.25, 1.0])
    np.testing.assert_allclose(combined({"a": np.full(4, 7.0)}, {"a": 1}), [0.5] * 4)
    np.testing.assert_allclose(combined({"a": np.array([3.0])}, {"a": 1}), [0.5])


def test_combined_skips_weighted_components_without_a_score_and_ignores_scores_without_a_weight():
    scores = {"margin": np.array([1.0, 3.0, 2.0]), "unweighted": np.array([9.0, 0.0, 0.0])}

    mixed = combined(scores, {"margin": 1.0, "bald": 5.0, "typicality": 0.0})

    np.testing.assert_allclose(mixed, [0.0, 1.0, 0.5])


@pytest.mark.parametrize("scores, weights, message", [
    ({"a": np.ones(3)}, {"a": -1.0}, "weight of 'a' must be a finite number >= 0"),
    ({"a": np.ones(3)}, {"b": 1.0}, "no score to combine"),
    ({"a": np.ones(3)}, {"a": 0.0}, "no score to combine"),
    ({"a": np.ones(3), "b": np.ones(4)}, {"a": 1, "b": 1}, r"'b' has shape \(4,\) but the first score has \(3,\)"),
    ({"a": np.ones((3, 1))}, {"a": 1}, r"'a' must be 1-D .* got shape \(3, 1\)"),
])
def test_combined_rejects_negative_weights_missing_scores_and_mismatched_lengths(scores, weights, message):
    with pytest.raises(ValueError, match=message):
        combined(scores, weights)


def test_typicality_is_one_over_the_mean_distance_to_the_nearest_other_galaxies():
    angles = np.array([0.0, 0.1, 0.3])
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def chord(angle):
        return 2 * np.sin(angle / 2)

    np.testing.assert_allclose(typicality(features, k_neighbours=1),
                               [1 / chord(0.1), 1 / chord(0.1), 1 / chord(0.2)], rtol=1e-4)
    np.testing.assert_allclose(typicality(features, k_neighbours=5),  # capped at the 2 others
                               [2 / (chord(0.1) + chord(0.3)), 2 / (chord(0.1) + chord(0.2)),
                                2 / (chord(0.2) + chord(0.3))], rtol=1e-4)


def test_typicality_scores_the_middle_of_a_blob_above_an_outlier_and_ignores_vector_lengths():
    features, _ = blobs([40], spread=0.02, seed=3)
    features = np.vstack([features, np.eye(8)[0] + 0.3 * np.eye(8)[1]])

    scores = typicality(features, k_neighbours=10)
    stretched = typicality(features * np.linspace(0.5, 5, len(features))[:, None], k_neighbours=10)

    assert np.argmin(scores) == 40
    np.testing.assert_allclose(stretched, scores, rtol=1e-4)


def test_typicality_against_a_reference_sample_still_finds_the_outlier_and_is_deterministic(monkeypatch):
    monkeypatch.setattr(mlcore.active.diversity, "TYPICALITY_REFERENCES", 25)
    features, _ = blobs([80], dim=100, spread=0.01, seed=4)  # 100 dimensions: projected to 64 first
    features = np.vstack([features, np.eye(100)[0] + 0.6 * np.eye(100)[1]])

    scores = typicality(features, k_neighbours=5, seed=1)

    assert scores.shape == (81,) and np.isfinite(scores).all() and (scores > 0).all()
    assert np.argmin(scores) == 80
    np.testing.assert_array_equal(scores, typicality(features, k_neighbours=5, seed=1))


# --- set-based selection --------------------------------------------------------------------------------------------

def test_random_sample_is_deterministic_under_a_seed_and_differs_across_seeds():
    first = random_sample(1000, n=10, seed=3)

    np.testing.assert_array_equal(first, random_sample(1000, n=10, seed=3))
    assert not np.array_equal(first, random_sample(1000, n=10, seed=4))
    assert len(set(first.tolist())) == 10 and first.dtype == np.int64


def test_random_sample_never_picks_labelled_or_excluded_galaxies_and_returns_all_when_few_remain():
    labelled, exclude = mask(10, range(0, 6)), mask(10, [7])

    picked = random_sample(10, n=5, labelled=labelled, exclude=exclude, seed=0)

    assert sorted(picked.tolist()) == [6, 8, 9]


def test_top_scores_returns_the_highest_candidates_first():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.95])

    picked = top_scores(scores, n=3, labelled=mask(5, [4]), exclude=mask(5, [3]))

    np.testing.assert_array_equal(picked, [1, 2, 0])


def test_top_scores_breaks_ties_by_a_seeded_permutation_not_by_index():
    flat = np.zeros(200)

    first = top_scores(flat, n=20, seed=1)

    np.testing.assert_array_equal(first, top_scores(flat, n=20, seed=1))
    assert not np.array_equal(first, top_scores(flat, n=20, seed=2))
    assert not np.array_equal(first, np.arange(20))


@pytest.mark.parametrize("call, message", [
    (lambda: top_scores(np.ones((2, 2)), n=1), r"scores must be 1-D .* got shape \(2, 2\)"),
    (lambda: top_scores(np.array([1.0, np.nan]), n=1), "NaN"),
    (lambda: top_scores(np.ones(3), n=-1), "n must be an integer >= 0"),
    (lambda: top_scores(np.ones(3), n=1, labelled=np.zeros(4, bool)), r"labelled must be a bool array of shape"),
    (lambda: random_sample(3, n=1, exclude=np.zeros(3, int)), r"exclude must be a bool array of shape \(3,\)"),
])
def test_selection_rejects_bad_counts_and_masks(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_k_center_greedy_covers_far_away_clusters_before_a_dense_labelled_one():
    features, blob = blobs([40, 5, 5], seed=5)
    labelled = mask(50, range(0, 10))  # part of the big blob

    picked = k_center_greedy(features, n=2, labelled=labelled)

    assert sorted(blob[picked].tolist()) == [1, 2]


def test_k_center_greedy_from_a_cold_start_reaches_every_cluster_and_depends_on_the_seed_only_at_the_start():
    features, blob = blobs([30, 6, 6, 6], seed=6)

    picked = k_center_greedy(features, n=4, labelled=mask(48), seed=0)

    assert sorted(blob[picked].tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(picked, k_center_greedy(features, n=4, labelled=mask(48), seed=0))


def test_k_center_greedy_picks_at_ever_shorter_distances_and_skips_excluded_galaxies():
    features, blob = blobs([20, 5, 5], dim=100, seed=7)  # 100 dimensions: projected to 64 first
    exclude = blob == 2

    selection = choose("kcenter", n=6, labelled=mask(30, [0]), features=features, exclude=exclude)

    assert not exclude[selection.indices].any()
    assert np.all(np.diff(selection.scores) <= 1e-6)
    np.testing.assert_array_equal(selection.scores, selection.components["distance"])


def test_typiclust_picks_the_most_typical_galaxy_of_a_blob_not_an_outlier():
    features, _ = blobs([25], spread=0.05, seed=8)
    features = np.vstack([features, np.eye(8)[0] + 0.4 * np.eye(8)[1]])  # an outlier beside the blob
    unit = unit_rows(features)
    distances = np.linalg.norm(unit[:, None] - unit[None, :], axis=2)
    mean_to_nearest = np.sort(distances, axis=1)[:, 1:6].mean(axis=1)

    picked = typiclust(features, n=1, labelled=mask(26), k_neighbours=5)

    assert picked.tolist() == [int(np.argmin(mean_to_nearest))]
    assert picked[0] != 25


def test_typiclust_spreads_a_cold_start_batch_over_the_blobs_largest_first():
    features, blob = blobs([10, 30, 15], seed=9)

    picked = typiclust(features, n=3, labelled=mask(55))

    assert blob[picked].tolist() == [1, 2, 0]


def test_typiclust_goes_to_the_cluster_with_the_fewest_labelled_galaxies():
    features, blob = blobs([20, 20], seed=10)

    picked = typiclust(features, n=1, labelled=mask(40, [0, 1, 2, 25]), max_clusters=2)

    assert blob[picked].tolist() == [1]


def test_typiclust_passes_over_clusters_of_fewer_than_five_galaxies_until_nothing_else_is_left():
    features, blob = blobs([20, 3], seed=11)
    labelled = mask(23, [0, 1])

    first = typiclust(features, n=1, labelled=labelled, max_clusters=2)
    only_small_left = typiclust(features, n=1, labelled=labelled, exclude=blob == 0, max_clusters=2)

    assert blob[first].tolist() == [0]
    assert blob[only_small_left].tolist() == [1]


def test_typiclust_with_mini_batch_k_means_still_covers_every_blob(monkeypatch):
    monkeypatch.setattr(mlcore.active.diversity, "FULL_KMEANS_MAX", 0)
    features, blob = blobs([30, 15, 10], seed=12)

    picked = typiclust(features, n=3, labelled=mask(55))

    assert sorted(blob[picked].tolist()) == [0, 1, 2]


def test_typiclust_is_deterministic_and_returns_every_candidate_when_few_remain():
    features, _ = blobs([10, 10], dim=100, seed=13)
    labelled = mask(20, range(3, 20))

    picked = typiclust(features, n=5, labelled=labelled, seed=4)

    assert sorted(picked.tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(picked, typiclust(features, n=5, labelled=labelled, seed=4))


def test_cluster_margin_takes_the_most_uncertain_galaxy_of_each_cluster_smallest_cluster_first():
    clusters = np.array([0] * 6 + [1] * 3 + [2] * 2)
    certainty = np.array([0.50, 0.52, 0.54, 0.56, 0.58, 0.60, 0.70, 0.75, 0.80, 0.90, 0.95])
    probs = np.stack([certainty, 1 - certainty], axis=1)

    picked = cluster_margin(probs, clusters, n=4, labelled=mask(11))

    # Cluster 2 (2 galaxies) first, then cluster 1 (3), then cluster 0 (6); round two starts again at cluster 2.
    np.testing.assert_array_equal(picked, [9, 6, 0, 10])


def test_cluster_margin_only_spreads_over_its_shortlist_of_the_most_uncertain():
    clusters = np.array([0] * 6 + [1] * 3 + [2] * 2)
    certainty = np.array([0.50, 0.52, 0.54, 0.56, 0.58, 0.60, 0.70, 0.75, 0.80, 0.90, 0.95])
    probs = np.stack([certainty, 1 - certainty], axis=1)

    picked = cluster_margin(probs, clusters, n=2, labelled=mask(11, [0]), shortlist_factor=1)

    np.testing.assert_array_equal(picked, [1, 2])


def test_cluster_margin_rejects_clusters_that_do_not_match_probs():
    with pytest.raises(ValueError, match=r"clusters must be integers of shape \(3,\) to match probs, got int64 \(4,\)"):
        cluster_margin(np.full((3, 2), 0.5), np.zeros(4, np.int64), n=1, labelled=mask(3))


def test_without_near_duplicates_skips_a_twin_of_a_chosen_galaxy_and_fills_from_the_skipped_when_short():
    features = np.array([[1.0, 0.0, 0.0], [0.99, 0.05, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 0.0, 0.0]])

    assert without_near_duplicates([0, 1, 2, 3], features, n=3).tolist() == [0, 2, 3]
    assert without_near_duplicates([4, 2, 0, 1], features, n=2).tolist() == [4, 2]  # a scaled copy is a twin too
    assert without_near_duplicates([0, 1, 2, 3], features, n=4).tolist() == [0, 2, 3, 1]
    assert without_near_duplicates([0, 1, 2, 3], features, n=3, min_cosine=0.9999).tolist() == [0, 1, 2]


def test_without_near_duplicates_compares_twins_within_one_block_and_across_blocks():
    rng = np.random.default_rng(14)
    twins = np.eye(8)[0] + 0.001 * rng.standard_normal((150, 8))
    distinct = np.eye(8)[1:4]
    features = np.vstack([twins, distinct])  # rows 150, 151, 152 are the only non-twins

    picked = without_near_duplicates(np.arange(153), features, n=3)

    assert picked.tolist() == [0, 150, 151]


def test_without_near_duplicates_reads_only_the_blocks_of_candidates_it_examines():
    features = np.random.default_rng(15).random((200, 8))
    features[199] = np.nan  # ranked last: far beyond the first block of 64 that two picks need

    assert without_near_duplicates(np.arange(200), features, n=2, min_cosine=1.01).tolist() == [0, 1]
    with pytest.raises(ValueError, match="NaN or infinite"):
        without_near_duplicates(np.arange(200)[::-1], features, n=2)


@pytest.mark.parametrize("order, message", [
    (np.array([0, 1, 0]), "must not repeat an index"),
    (np.array([0, 5]), r"outside 0\.\.2"),
    (np.array([[0, 1]]), "1-D integer indices"),
    (np.array([0.0, 1.0]), "1-D integer indices"),
])
def test_without_near_duplicates_rejects_orders_that_are_not_distinct_pool_indices(order, message):
    with pytest.raises(ValueError, match=message):
        without_near_duplicates(order, np.eye(3), n=2)


# --- the dispatcher -------------------------------------------------------------------------------------------------

def test_strategy_needs_names_the_inputs_each_strategy_uses():
    assert strategy_needs("random") == set()
    assert strategy_needs("margin") == {"probs", "features"}
    assert strategy_needs("bald") == {"member_probs", "features"}
    assert strategy_needs("cluster_margin") == {"probs", "clusters", "features"}
    assert strategy_needs("disagreement") == {"vote_questions", "features"}
    assert strategy_needs("kcenter") == {"features"}
    assert strategy_needs("combined") == {"probs", "features", "vote_questions"}
    assert strategy_needs("combined", weights={"bald": 1.0, "margin": 0.0}) == {"member_probs", "features"}
    assert UNCERTAINTY <= set(STRATEGIES) and set(DEFAULT_WEIGHTS) == {"margin", "typicality", "disagreement"}


def test_choose_rejects_an_unknown_strategy_listing_the_known_ones(pool):
    with pytest.raises(ValueError, match="unknown strategy 'uncertainty'; choose one of random, least_confidence"):
        choose("uncertainty", n=3, labelled=pool["labelled"])
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_needs("uncertainty")


@pytest.mark.parametrize("strategy, given, missing", [
    ("kcenter", {}, "features"),
    ("typiclust", {"probs"}, "features"),
    ("disagreement", {"features"}, "vote_questions"),
    ("bald", {"probs", "features"}, "member_probs"),
    ("margin", {"member_probs"}, "probs"),
    ("cluster_margin", {"probs"}, "clusters"),
])
def test_choose_names_the_missing_input_of_a_strategy(pool, strategy, given, missing):
    inputs = {name: pool[name] for name in given}

    with pytest.raises(ValueError, match=f"strategy '{strategy}' needs {missing}"):
        choose(strategy, n=3, labelled=pool["labelled"], **inputs)


@pytest.mark.parametrize("name, value, message", [
    ("probs", np.full((61, 4), 0.25), r"probs must cover the 60 galaxies .* got shape \(61, 4\)"),
    ("member_probs", np.full((3, 59, 4), 0.25), r"member_probs must cover the 60 galaxies .* \(axis 1\)"),
    ("features", np.zeros(60), r"features must be a 2-D array .* got shape \(60,\)"),
    ("vote_questions", [(np.full((5, 2), 0.5), np.ones(5))], r"vote_questions\[0\] fractions must cover"),
])
def test_choose_rejects_inputs_that_do_not_cover_the_pool(pool, name, value, message):
    with pytest.raises(ValueError, match=message):
        choose("margin", n=3, labelled=pool["labelled"], **{name: value})


def test_choose_starts_cold_with_typiclust_and_switches_to_margin_once_enough_galaxies_are_labelled(pool):
    few, enough = mask(60, range(5)), mask(60, range(25))

    cold = choose("margin", n=4, labelled=few, features=pool["features"], probs=pool["probs"])
    warm = choose("margin", n=4, labelled=enough, features=pool["features"], probs=pool["probs"],
                  dedupe_min_cosine=1.01)

    assert cold.strategy == "typiclust" and set(cold.components) == {"typicality", "cluster"}
    np.testing.assert_array_equal(cold.indices, typiclust(pool["features"], n=4, labelled=few))
    assert warm.strategy == "margin" and set(warm.components) == {"margin"}
    np.testing.assert_array_equal(warm.indices, top_scores(margin(pool["probs"]), n=4, labelled=enough))
    np.testing.assert_allclose(warm.scores, margin(pool["probs"])[warm.indices])


def test_choose_without_a_model_or_features_falls_back_to_typiclust_then_random(pool):
    labelled = mask(60, range(25))

    without_model = choose("bald", n=3, labelled=labelled, features=pool["features"])
    without_anything = choose("entropy", n=3, labelled=labelled)

    assert without_model.strategy == "typiclust"
    assert without_anything.strategy == "random" and np.isnan(without_anything.scores).all()
    assert len(without_anything.indices) == 3 and not labelled[without_anything.indices].any()


def test_choose_combined_drops_the_model_components_while_cold(pool):
    inputs = {name: pool[name] for name in ("features", "probs", "vote_questions")}

    cold = choose("combined", n=5, labelled=mask(60, range(5)), **inputs)
    warm = choose("combined", n=5, labelled=pool["labelled"], **inputs)

    assert cold.strategy == "combined" and set(cold.components) == {"typicality", "disagreement"}
    assert set(warm.components) == {"margin", "typicality", "disagreement"}
    assert (warm.scores >= 0).all() and (warm.scores <= 1).all()


def test_choose_combined_ranks_by_the_candidates_own_combined_score(pool):
    inputs = {name: pool[name] for name in ("features", "probs", "vote_questions")}
    labelled = pool["labelled"]

    selection = choose("combined", n=5, labelled=labelled, weights={"margin": 1.0}, dedupe_min_cosine=2.0, **inputs)

    candidates = np.flatnonzero(~labelled)
    expected = candidates[np.argsort(-margin(pool["probs"])[candidates], kind="stable")[:5]]
    np.testing.assert_array_equal(selection.indices, expected)
    np.testing.assert_allclose(selection.components["margin"], margin(pool["probs"])[expected])
    assert (selection.scores <= 1).all() and selection.scores[0] == 1.0


def test_choose_skips_near_duplicates_of_score_ranked_picks():
    features = np.array([[1.0, 0.0, 0.0], [1.0, 0.01, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]] * 6)
    probs = np.array([[0.5, 0.5], [0.51, 0.49], [0.7, 0.3], [0.9, 0.1]] * 6)
    probs[4:] = [1.0, 0.0]  # only the first four are uncertain
    labelled = mask(24, range(8, 24))

    plain = choose("margin", n=2, labelled=labelled, probs=probs, min_labels=1)
    deduped = choose("margin", n=2, labelled=labelled, probs=probs, features=features, min_labels=1)

    assert plain.indices.tolist() == [0, 1]
    assert deduped.indices.tolist() == [0, 2]


@pytest.mark.parametrize("strategy, score", [("bald", bald), ("disagreement", vote_disagreement),
                                             ("entropy", entropy), ("least_confidence", least_confidence)])
def test_score_ranked_strategies_pick_the_highest_scoring_candidates(pool, strategy, score):
    argument = {"bald": "member_probs", "disagreement": "vote_questions"}.get(strategy, "probs")
    labelled = pool["labelled"]

    selection = choose(strategy, n=5, labelled=labelled, **{"probs": pool["probs"], argument: pool[argument]})

    expected = score(pool[argument])
    np.testing.assert_array_equal(selection.indices, top_scores(expected, n=5, labelled=labelled))
    np.testing.assert_allclose(selection.scores, expected[selection.indices])
    assert selection.strategy == strategy and list(selection.components) == [strategy]


def test_choose_combined_without_any_usable_input_is_random_when_cold_and_an_error_when_warm(pool):
    cold = choose("combined", n=3, labelled=mask(60), weights={"margin": 1.0}, probs=pool["probs"])

    assert cold.strategy == "random" and len(cold.indices) == 3
    with pytest.raises(ValueError, match="'combined' has no component to compute"):
        choose("combined", n=3, labelled=pool["labelled"], weights={"bald": 1.0}, probs=pool["probs"])


def test_choose_reports_the_random_first_centre_of_a_cold_k_center_start_as_nan(pool):
    selection = choose("kcenter", n=3, labelled=mask(60), features=pool["features"])

    assert np.isnan(selection.scores[0]) and np.isfinite(selection.scores[1:]).all()


@pytest.mark.parametrize("arguments, message", [
    ({"n": -1, "labelled": np.zeros(5, bool)}, "n must be an integer >= 0, got -1"),
    ({"n": 2, "labelled": np.zeros(5, int)}, r"labelled must be a 1-D bool array \(n_pool,\), got int64 \(5,\)"),
])
def test_choose_rejects_a_negative_count_and_a_labelled_mask_that_is_not_bool(arguments, message):
    with pytest.raises(ValueError, match=message):
        choose("random", **arguments)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_deterministic_and_never_picks_labelled_or_excluded_galaxies(pool, strategy):
    inputs = {name: pool[name] for name in ("features", "probs", "member_probs", "clusters", "vote_questions")}
    labelled, exclude = pool["labelled"], mask(60, [1, 3, 5, 31, 33])

    first = choose(strategy, n=8, labelled=labelled, exclude=exclude, seed=7, min_labels=10, **inputs)
    again = choose(strategy, n=8, labelled=labelled, exclude=exclude, seed=7, min_labels=10, **inputs)

    assert isinstance(first, Selection) and first.strategy == strategy
    assert first.indices.dtype == np.int64 and len(set(first.indices.tolist())) == 8
    assert not labelled[first.indices].any() and not exclude[first.indices].any()
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert first.components.keys() == again.components.keys()
    for name, values in first.components.items():
        assert len(values) == 8
        np.testing.assert_array_equal(values, again.components[name])


def test_choose_returns_every_candidate_when_fewer_than_n_remain(pool):
    labelled = ~mask(60, [10, 20, 30])

    for strategy in ("margin", "kcenter", "typiclust", "cluster_margin", "combined"):
        selection = choose(strategy, n=8, labelled=labelled, features=pool["features"], probs=pool["probs"],
                           clusters=pool["clusters"], vote_questions=pool["vote_questions"])
        assert sorted(selection.indices.tolist()) == [10, 20, 30], strategy


def test_query_and_agreement_import_without_django():
    probe = (
        "import sys\n"
        "class Forbidden:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('django', 'labeling', 'rest_framework'):\n"
        "            raise ImportError(f'mlcore must not import {name}')\n"
        "sys.meta_path.insert(0, Forbidden())\n"
        "import mlcore.active.query, mlcore.votes.agreement\n"
    )

    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
