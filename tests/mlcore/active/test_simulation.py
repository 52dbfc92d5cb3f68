"""Simulated active learning against random sampling (mlcore/active/simulation.py), with the real
mlcore.active.query."""

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mlcore.active import query
from mlcore.active.head import ProbabilityHead
from mlcore.active.plot import write_results
from mlcore.active.simulation import held_out_split, simulate, simulate_seeds, strategy_order

CLASSES = np.array(["spiral", "elliptical", "merger", "ring", "lens", "edge_on"])


def rare_blobs(seed: int = 0, sizes=(500, 300, 10, 10, 10, 10)):
    """Six well-separated blobs in 8 dimensions: two common morphologies and four rare ones (1.2% each)."""
    centers = np.random.default_rng(1000 + seed).normal(scale=6.0, size=(len(sizes), 8))
    vectors, codes = make_blobs(n_samples=list(sizes), n_features=8, centers=centers, cluster_std=1.0,
                                random_state=seed)
    return vectors.astype(np.float32), CLASSES[codes]


def cheap_head():
    return ProbabilityHead(calibration=None, n_members=2)


class SpyHeads:
    """A head factory recording every row each head was fitted on, asked to predict and asked for members."""

    def __init__(self):
        self.fitted_rows, self.predicted_rows, self.member_calls = [], [], 0

    def __call__(self):
        spy = self

        class Spy(ProbabilityHead):
            def fit(self, X, y, sample_weight=None):
                spy.fitted_rows.append(np.array(X))
                return super().fit(X, y, sample_weight)

            def predict(self, X):
                spy.predicted_rows.append(np.array(X))
                return super().predict(X)

            def member_proba(self, X):
                spy.member_calls += 1
                return super().member_proba(X)

        return Spy(calibration=None, n_members=2)


@pytest.fixture(scope="module")
def small():
    return rare_blobs(0, sizes=(60, 40, 10, 10, 10, 10))


def run(features, labels, **options):
    settings = {"strategies": ["margin"], "initial": 10, "step": 10, "rounds": 3, "min_labels": 10,
                "head_factory": cheap_head}
    return simulate(features, labels, **(settings | options))


def test_simulate_is_deterministic_under_a_seed(small):
    features, labels = small

    first = run(features, labels, strategies=["bald"], seed=3)
    again = run(features, labels, strategies=["bald"], seed=3)
    other = run(features, labels, strategies=["random"], seed=4)

    assert first["curves"] == again["curves"] and first["queried"] == again["queried"]
    assert first["queried"]["random"] != other["queried"]["random"]


def test_random_is_always_the_first_curve_and_repeats_are_dropped(small):
    features, labels = small

    result = run(features, labels, strategies=["margin", "entropy", "margin"])

    assert list(result["curves"]) == ["random", "margin", "entropy"]
    assert result["parameters"]["strategies"] == ["random", "margin", "entropy"]
    assert strategy_order(["entropy", "random"]) == ["random", "entropy"]
    assert strategy_order("margin") == ["random", "margin"]


def test_an_unknown_strategy_is_rejected_with_the_known_ones_listed(small):
    features, labels = small

    with pytest.raises(ValueError, match=r"unknown strategies \['uncertainty'\]; known: \['random', 'least_conf"):
        run(features, labels, strategies=["margin", "uncertainty"])


def test_each_curve_has_one_point_per_round_with_the_label_counts_and_what_chose_them(small):
    features, labels = small

    result = run(features, labels, strategies=["margin", "kcenter"], rounds=4, initial=10, step=5, start="own")

    for name, points in result["curves"].items():
        assert [p["labels"] for p in points] == [10, 15, 20, 25, 30]
        assert all(0.0 <= p[metric] <= 1.0 for p in points for metric in ("accuracy", "balanced_accuracy", "macro_f1"))
        assert len(result["queried"][name]) == 30 == len(set(result["queried"][name]))
    assert [p["strategy_used"] for p in result["curves"]["margin"]] == ["typiclust"] + ["margin"] * 4  # cold start
    assert {p["strategy_used"] for p in result["curves"]["random"]} == {"random"}
    assert {p["strategy_used"] for p in result["curves"]["kcenter"]} == {"kcenter"}


def test_the_held_out_split_is_never_queried_nor_trained_on_and_is_the_same_for_every_strategy(small):
    features, labels = small
    spies = SpyHeads()

    result = run(features, labels, strategies=["typiclust", "bald"], rounds=3, seed=2, head_factory=spies)

    pool, test = held_out_split(labels, test_fraction=0.25, seed=2)
    assert result["parameters"]["n_test"] == len(test) == 35 and result["parameters"]["n_pool"] == len(pool)
    for name, queried in result["queried"].items():
        assert not set(queried) & set(test.tolist()), name
    test_rows = {row.tobytes() for row in features[test]}
    assert spies.fitted_rows and all(row.tobytes() not in test_rows for rows in spies.fitted_rows for row in rows)
    assert all(np.array_equal(rows, features[test]) for rows in spies.predicted_rows)
    assert len(spies.predicted_rows) == 3 * 4


def test_member_probabilities_are_computed_only_for_the_strategies_that_need_them(small):
    features, labels = small
    spies = SpyHeads()

    run(features, labels, strategies=["margin", "entropy", "cluster_margin"], head_factory=spies)
    assert spies.member_calls == 0

    run(features, labels, strategies=["bald"], rounds=3, head_factory=spies)
    assert spies.member_calls == 3  # one per round after the first fit


def test_cluster_margin_and_bald_run_once_warm(small):
    features, labels = small

    result = run(features, labels, strategies=["cluster_margin", "bald"])

    assert [p["strategy_used"] for p in result["curves"]["cluster_margin"]][1:] == ["cluster_margin"] * 3
    assert [p["strategy_used"] for p in result["curves"]["bald"]][1:] == ["bald"] * 3


def test_the_curves_stop_when_the_pool_runs_out():
    features, labels = rare_blobs(1, sizes=(20, 20))

    result = run(features, labels, strategies=["margin"], initial=10, step=8, rounds=10)

    n_pool = result["parameters"]["n_pool"]
    assert n_pool == 30
    for name, points in result["curves"].items():
        assert [p["labels"] for p in points] == [10, 18, 26, 30]
        assert sorted(result["queried"][name]) == held_out_split(labels, seed=0)[0].tolist()


def test_with_one_class_labelled_it_scores_predicting_that_class_for_everyone():
    features, labels = rare_blobs(0, sizes=(30, 30))

    result = run(features, labels, strategies=["random"], initial=1, step=1, rounds=1)

    first = result["curves"]["random"][0]
    _, test = held_out_split(labels, seed=0)
    only = labels[result["queried"]["random"][0]]
    assert first["labels"] == 1
    assert first["accuracy"] == pytest.approx(np.mean(labels[test] == only))
    assert first["balanced_accuracy"] == pytest.approx(0.5)


def test_progress_is_reported_after_every_point(small):
    features, labels = small
    calls = []

    run(features, labels, strategies=["margin"], rounds=2, progress=lambda *args: calls.append(args))

    assert calls == [("random", 1, 3), ("random", 2, 3), ("random", 3, 3),
                     ("margin", 1, 3), ("margin", 2, 3), ("margin", 3, 3)]


def test_disagreement_uses_the_pool_rows_of_the_volunteer_votes(small):
    features, labels = small
    n = len(labels)
    rng = np.random.default_rng(0)
    fractions = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    votes = [(fractions, np.full(n, 20.0))]

    result = run(features, labels, strategies=["disagreement"], vote_questions=votes, start="own")

    assert {p["strategy_used"] for p in result["curves"]["disagreement"]} == {"disagreement"}
    with pytest.raises(ValueError, match="'disagreement' needs vote_questions"):
        run(features, labels, strategies=["disagreement"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uncertainty_sampling_reaches_random_final_accuracy_with_fewer_labels_when_classes_are_rare(seed):
    # Random sampling rarely draws the four rare blobs; the uncertainty strategies' own cold start (TypiClust)
    # covers them at once and margin keeps the boundaries sharp. Holds for each of 20 seeds tried.
    features, labels = rare_blobs(seed)

    result = run(features, labels, strategies=["margin", "entropy"], rounds=8, seed=seed, start="own")

    savings = result["savings"]
    assert savings["labels_saved"] > 0 and savings["best"] in {"margin", "entropy"}
    margin, random = savings["per_strategy"]["margin"], savings["per_strategy"]["random"]
    assert margin["labels_needed"] < savings["final_labels"] and margin["final"] >= random["final"]


def test_a_shared_start_gives_every_strategy_the_same_initial_labels_and_own_starts_do_not(small):
    features, labels = small

    shared = run(features, labels, strategies=["margin", "typiclust", "kcenter"])
    own = run(features, labels, strategies=["margin", "typiclust", "kcenter"], start="own")

    firsts = {name: sorted(order[:10]) for name, order in shared["queried"].items()}
    assert len({tuple(first) for first in firsts.values()}) == 1
    assert all(points[0]["strategy_used"] == "random" for points in shared["curves"].values())
    assert len({tuple(sorted(order[:10])) for order in own["queried"].values()}) > 1
    # Random's curve is the same draw either way.
    assert shared["curves"]["random"] == own["curves"]["random"]
    assert shared["parameters"]["start"] == "shared"
    with pytest.raises(ValueError, match="start must be"):
        run(features, labels, start="mine")


def test_simulate_seeds_averages_runs_of_their_own_splits_and_reports_the_spread(small):
    features, labels = small

    result = simulate_seeds(features, labels, seeds=[3, 4], strategies=["margin"], initial=10, step=10, rounds=2,
                            min_labels=10, head_factory=cheap_head)

    one = run(features, labels, seed=3, rounds=2)
    other = run(features, labels, seed=4, rounds=2)
    assert [run_["seed"] for run_ in result["runs"]] == [3, 4]
    assert result["runs"][0]["curves"] == one["curves"]
    first = result["curves"]["margin"][0]
    pair = [one["curves"]["margin"][0]["balanced_accuracy"], other["curves"]["margin"][0]["balanced_accuracy"]]
    assert first["balanced_accuracy"] == pytest.approx(np.mean(pair))
    assert first["balanced_accuracy_sd"] == pytest.approx(np.std(pair))
    assert "macro_f1" in first and result["parameters"]["seeds"] == [3, 4] and "seed" not in result["parameters"]
    assert result["savings"]["seeds"] == 2
    with pytest.raises(ValueError, match="at least one seed"):
        simulate_seeds(features, labels, seeds=[], strategies=["margin"])


def test_write_results_writes_a_png_and_json_that_round_trips(small, tmp_path):
    features, labels = small
    result = run(features, labels, strategies=["margin"])

    json_path, png_path = write_results(result, tmp_path / "out")

    assert (json_path.name, png_path.name) == ("learning_curves.json", "learning_curves.png")
    assert json.loads(json_path.read_text()) == result
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 1024
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["learning_curves.json", "learning_curves.png"]


def test_held_out_split_is_stratified_and_keeps_singleton_classes_in_the_pool():
    labels = np.array(["a"] * 40 + ["b"] * 20 + ["c"])

    pool, test = held_out_split(labels, test_fraction=0.25, seed=0)

    assert sorted(pool.tolist() + test.tolist()) == list(range(61))
    assert (labels[test] == "a").sum() == 10 and (labels[test] == "b").sum() == 5
    assert 60 in pool.tolist()
    np.testing.assert_array_equal(held_out_split(labels, test_fraction=0.25, seed=0)[1], test)


@pytest.mark.parametrize("labels, fraction, message", [
    (["a", "b"] * 10, 0.0, "strictly between 0 and 1"),
    (["a", "b", "c"], 0.25, "no class has two galaxies"),
    (["a"] * 10 + ["b"] * 10 + ["c"] * 10, 0.05, "cannot hold out a stratified 0.05 of 30 galaxies in 3 classes"),
])
def test_held_out_split_rejects_splits_it_cannot_make(labels, fraction, message):
    with pytest.raises(ValueError, match=message):
        held_out_split(labels, test_fraction=fraction)


@pytest.mark.parametrize("features, labels, options, message", [
    (np.zeros(10), ["a"] * 10, {}, r"2-D array .* got shape \(10,\)"),
    (np.zeros((10, 2)), ["a"] * 9, {}, r"labels must have shape \(10,\)"),
    (np.zeros((10, 2)), ["a"] * 10, {"step": 0}, "step >= 1"),
])
def test_simulate_rejects_unusable_input(features, labels, options, message):
    with pytest.raises(ValueError, match=message):
        run(features, labels, **options)


def test_every_query_strategy_is_known_to_the_simulation():
    assert strategy_order(list(query.STRATEGIES))[0] == "random"
    assert len(strategy_order(list(query.STRATEGIES))) == len(query.STRATEGIES)
