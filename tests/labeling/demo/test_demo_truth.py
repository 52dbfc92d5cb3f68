import json
from pathlib import Path

import pytest

from labeling.services.demo.truth import (
    GALAXY10_TO_GZ_DECALS,
    SLOAN_QUESTION_TO_GZ2,
    gz2_truth_for_example,
    gz2_truth_from_class_string,
)
from mlcore.votes.simulated import simulate_walks
from mlcore.votes.tree import parse_tree

TREES = Path(__file__).resolve().parents[3] / "labeling" / "trees"


def tree(name):
    return parse_tree(json.loads((TREES / f"{name}.json").read_text()))


def test_every_galaxy10_class_is_a_possible_walk_through_the_decals_tree():
    spec = tree("gz_decals")
    assert sorted(GALAXY10_TO_GZ_DECALS, key=int) == [str(i) for i in range(10)]
    for truth in GALAXY10_TO_GZ_DECALS.values():
        for key, answer in truth.items():
            assert answer in spec.question(key).answers


@pytest.mark.parametrize("text, expected", [
    ("Er", {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a16_completely_round"}),
    ("Sen", {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a04_yes",
             "t09_bulge_shape": "a27_no_bulge"}),
    ("Sc2m", {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no", "t03_bar": "a07_no_bar",
              "t05_bulge_prominence": "a11_just_noticeable", "t04_spiral": "a08_spiral",
              "t11_arms_number": "a32_2", "t10_arms_winding": "a29_medium"}),
    ("SbB", {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no", "t03_bar": "a06_bar",
             "t05_bulge_prominence": "a12_obvious", "t04_spiral": "a08_spiral"}),
])
def test_gz2_class_strings_decode_to_tree_answers(text, expected):
    assert gz2_truth_from_class_string(text) == expected


def test_it_rejects_a_string_that_is_not_a_gz2_class():
    with pytest.raises(ValueError, match="not a GZ2 class"):
        gz2_truth_from_class_string("Xyz")


def test_volunteers_simulated_from_an_sdss_example_reach_its_question_and_give_its_answer():
    spec = tree("gz2")
    for question in SLOAN_QUESTION_TO_GZ2.values():
        answer = spec.question(question).answers[-1]
        walks = simulate_walks(spec, gz2_truth_for_example(question, answer), n_volunteers=200, accuracy=1.0, seed=0)
        reached = [walk for walk in walks if question in walk]
        assert len(reached) >= 30, question
        assert all(walk[question] == answer for walk in reached)
