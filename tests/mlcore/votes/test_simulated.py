import json
from pathlib import Path

import pytest

from mlcore.votes.simulated import simulate_walks
from mlcore.votes.tree import count_votes, parse_tree, validate_walk

TREES = Path(__file__).resolve().parents[3] / "labeling" / "trees"
GZ2 = parse_tree(json.loads((TREES / "gz2.json").read_text()))
TRUTH = {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a18_cigar_shaped", "t06_odd": "a15_no"}


def test_simulated_walks_follow_the_tree_and_are_reproducible():
    walks = simulate_walks(GZ2, TRUTH, n_volunteers=50, accuracy=0.8, seed=3)
    assert walks == simulate_walks(GZ2, TRUTH, n_volunteers=50, accuracy=0.8, seed=3)
    assert walks != simulate_walks(GZ2, TRUTH, n_volunteers=50, accuracy=0.8, seed=4)
    for walk in walks:
        validate_walk(GZ2, walk)


def test_the_true_answer_wins_about_as_often_as_the_accuracy_says():
    walks = simulate_walks(GZ2, TRUTH, n_volunteers=2000, accuracy=0.7, seed=0)
    fractions = count_votes(GZ2, walks)["t01_smooth_or_features"].fractions()
    assert fractions["a01_smooth"] == pytest.approx(0.7, abs=0.03)
    assert fractions["a02_features_or_disk"] == pytest.approx(0.15, abs=0.03)


def test_perfect_volunteers_all_agree():
    walks = simulate_walks(GZ2, TRUTH, n_volunteers=20, accuracy=1.0, seed=1)
    assert all(walk == TRUTH for walk in walks)


def test_it_rejects_a_truth_the_tree_does_not_have():
    with pytest.raises(ValueError, match="a99"):
        simulate_walks(GZ2, {"t01_smooth_or_features": "a99"}, n_volunteers=1, accuracy=0.5, seed=0)
    with pytest.raises(ValueError, match="accuracy"):
        simulate_walks(GZ2, TRUTH, n_volunteers=1, accuracy=1.5, seed=0)
