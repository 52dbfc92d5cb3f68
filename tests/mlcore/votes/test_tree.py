"""Decision-tree vote arithmetic (mlcore/votes/tree.py): trees, walks, counts, fractions, Kaggle conversion,
consensus."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.votes.tree import (
    MULTIPLE,
    conditional_from_cumulative,
    consensus,
    count_votes,
    fractions_from_counts,
    parse_tree,
    reach,
    validate_walk,
)

TREES = Path(__file__).resolve().parents[3] / "labeling" / "trees"

# shape -> (smooth: roundness | disk: odd features, checkboxes) -> end
TINY = {
    "name": "tiny",
    "questions": [
        {"key": "shape", "answers": [
            {"key": "smooth", "next": "round"}, {"key": "disk", "next": "odd"}, {"key": "star", "next": None},
        ]},
        {"key": "round", "answers": [{"key": "round", "next": None}, {"key": "cigar", "next": None}]},
        {"key": "odd", "kind": "multiple", "next": None, "answers": [
            {"key": "ring"}, {"key": "lens"}, {"key": "merger"},
        ]},
    ],
}
SPEC = parse_tree(TINY)


def changed(edit) -> dict:
    definition = copy.deepcopy(TINY)
    edit(definition)
    return definition


@pytest.mark.parametrize("name, questions, answers", [("gz2", 11, 37), ("gz_decals", 10, 34)])
def test_both_shipped_trees_parse_with_every_question_reachable(name, questions, answers):
    definition = json.loads((TREES / f"{name}.json").read_text())

    spec = parse_tree(definition)

    assert len(spec.order) == questions
    assert sum(len(q.answers) for q in spec.questions.values()) == answers
    assert spec.root == definition["questions"][0]["key"]


def test_parse_tree_rejects_a_cycle():
    def loop(d):
        d["questions"][1]["answers"][0]["next"] = "shape"

    with pytest.raises(ValueError, match="cycle: shape -> round -> shape"):
        parse_tree(changed(loop))


def test_parse_tree_rejects_an_unknown_next_question():
    def typo(d):
        d["questions"][0]["answers"][1]["next"] = "odd-features"

    with pytest.raises(ValueError, match="'shape' leads to unknown question 'odd-features'"):
        parse_tree(changed(typo))


def test_parse_tree_rejects_a_question_no_walk_reaches():
    def orphan(d):
        d["questions"].append({"key": "bulge", "answers": [{"key": "none", "next": None}]})

    with pytest.raises(ValueError, match="no walk reaches bulge"):
        parse_tree(changed(orphan))


def test_parse_tree_rejects_duplicate_question_and_answer_keys():
    def twice(d):
        d["questions"].append(copy.deepcopy(d["questions"][1]))

    def answer_twice(d):
        d["questions"][1]["answers"][1]["key"] = "round"

    with pytest.raises(ValueError, match="question key 'round' appears twice"):
        parse_tree(changed(twice))
    with pytest.raises(ValueError, match="'round' repeats an answer key"):
        parse_tree(changed(answer_twice))


def test_validate_walk_returns_the_questions_in_walk_order_and_allows_stopping_early():
    assert validate_walk(SPEC, {"odd": ["ring"], "shape": "disk"}) == ["shape", "odd"]
    assert validate_walk(SPEC, {"shape": "smooth"}) == ["shape"]


def test_validate_walk_rejects_an_answer_to_a_question_off_the_walk():
    with pytest.raises(ValueError, match="'round' was answered but the walk never reaches it"):
        validate_walk(SPEC, {"shape": "disk", "round": "cigar"})
    with pytest.raises(ValueError, match="'odd' was answered but the walk never reaches it"):
        validate_walk(SPEC, {"odd": ["ring"]})


def test_validate_walk_rejects_unknown_questions_and_answers():
    with pytest.raises(ValueError, match="no question 'colour'"):
        validate_walk(SPEC, {"shape": "smooth", "colour": "red"})
    with pytest.raises(ValueError, match="'shape' has no answer 'spiral'"):
        validate_walk(SPEC, {"shape": "spiral"})
    with pytest.raises(ValueError, match="'odd' has no answer 'dust'"):
        validate_walk(SPEC, {"shape": "disk", "odd": ["ring", "dust"]})


def test_validate_walk_rejects_the_wrong_number_of_answers():
    with pytest.raises(ValueError, match="'shape' takes one answer"):
        validate_walk(SPEC, {"shape": ["smooth", "disk"]})
    with pytest.raises(ValueError, match="ticked twice"):
        validate_walk(SPEC, {"shape": "disk", "odd": ["ring", "ring"]})


def test_count_votes_on_a_checkbox_question_counts_volunteers_not_boxes():
    walks = [
        {"shape": "disk", "odd": ["ring", "lens"]},
        {"shape": "disk", "odd": ["ring"]},
        {"shape": "disk"},  # left before the checkboxes
        {"shape": "smooth", "round": "cigar"},
    ]

    votes = count_votes(SPEC, walks)

    assert votes["shape"].counts == {"smooth": 1, "disk": 3, "star": 0} and votes["shape"].total == 4
    assert votes["odd"].counts == {"ring": 2, "lens": 1, "merger": 0} and votes["odd"].total == 2
    assert votes["odd"].fractions() == {"ring": 1.0, "lens": 0.5, "merger": 0.0}
    assert votes["round"].fractions() == {"round": 0.0, "cigar": 1.0}
    assert reach(votes, SPEC) == {"shape": 1.0, "round": 0.25, "odd": 0.5}


def test_fractions_from_counts_with_zero_votes_are_all_zero():
    assert fractions_from_counts({"round": 0, "cigar": 0}) == {"round": 0.0, "cigar": 0.0}
    assert fractions_from_counts({"round": 3, "cigar": 1}) == {"round": 0.75, "cigar": 0.25}
    with pytest.raises(ValueError, match="negative"):
        fractions_from_counts({"round": -1, "cigar": 2})


def test_conditional_from_cumulative_recovers_a_hand_computed_kaggle_row():
    # 60% smooth, 30% features, 10% star; of the smooth ones 50/40/10 round/in-between/cigar; of the disks a
    # quarter edge-on. Kaggle publishes each answer multiplied by the share that reached its question.
    row = {
        "Class1": {"1.1": 0.6, "1.2": 0.3, "1.3": 0.1},
        "Class7": {"7.1": 0.3, "7.2": 0.24, "7.3": 0.06},
        "Class2": {"2.1": 0.075, "2.2": 0.225},
        "Class8": {"8.1": 0.0, "8.2": 0.0},
    }

    result = conditional_from_cumulative(row)

    fractions, reached = result["Class7"]
    assert fractions == pytest.approx({"7.1": 0.5, "7.2": 0.4, "7.3": 0.1}) and reached == pytest.approx(0.6)
    fractions, reached = result["Class2"]
    assert fractions == pytest.approx({"2.1": 0.25, "2.2": 0.75}) and reached == pytest.approx(0.3)
    assert result["Class1"][1] == pytest.approx(1.0)
    assert result["Class8"] == ({"8.1": 0.0, "8.2": 0.0}, 0.0)
    with pytest.raises(ValueError, match="1.5 is not a probability"):
        conditional_from_cumulative({"Class1": {"1.1": 1.5}})


RULES = {
    "elliptical": [{"question": "shape", "answers": ["smooth"], "threshold": 0.7}],
    "spiral": [{"question": "shape", "answers": ["disk"]}, {"question": "odd", "answers": ["ring"],
                                                            "threshold": 0.5}],
}


def test_consensus_picks_the_class_whose_weakest_fraction_along_its_path_is_highest():
    fractions = {"shape": {"smooth": 0.1, "disk": 0.9}, "odd": {"ring": 0.55}}

    outcome = consensus(fractions, {"shape": 40, "odd": 30}, RULES, root="shape")

    assert (outcome.class_key, outcome.agreement, outcome.n_votes) == ("spiral", 0.55, 40)


def test_consensus_is_uncertain_when_no_class_reaches_its_thresholds():
    fractions = {"shape": {"smooth": 0.65, "disk": 0.35}}

    outcome = consensus(fractions, {"shape": 40}, RULES, root="shape", uncertain="unsure")

    assert outcome.class_key == "unsure"
    assert outcome.agreement == 0.65  # the best any class got
    assert outcome.n_votes == 40


def test_consensus_gives_no_class_below_min_votes():
    fractions = {"shape": {"smooth": 1.0, "disk": 0.0}}

    outcome = consensus(fractions, {"shape": 4}, RULES, root="shape", min_votes=5)

    assert outcome.class_key is None and outcome.n_votes == 4
    assert consensus(fractions, {"shape": 5}, RULES, root="shape", min_votes=5).class_key == "elliptical"


@st.composite
def walks(draw, spec=SPEC):
    """A volunteer's walk through the tree, possibly abandoned part-way."""
    answers, current = {}, spec.root
    while current is not None and draw(st.integers(0, 9)) > 0:
        question = spec.questions[current]
        if question.kind == MULTIPLE:
            given = draw(st.lists(st.sampled_from(question.answers), min_size=1, unique=True))
        else:
            given = draw(st.sampled_from(question.answers))
        answers[current] = given
        current = question.next_question(given)
    return answers


@settings(max_examples=200, deadline=None)
@given(st.lists(walks(), max_size=40))
def test_counted_walks_give_fractions_that_sum_to_one_and_totals_within_the_number_of_walks(drawn):
    votes = count_votes(SPEC, drawn)

    for key, question_votes in votes.items():
        assert 0 <= question_votes.total <= len(drawn)
        assert all(0 <= count <= question_votes.total for count in question_votes.counts.values())
        fractions = question_votes.fractions()
        if SPEC.questions[key].kind != MULTIPLE and question_votes.total > 0:
            assert sum(fractions.values()) == pytest.approx(1.0)
            assert sum(question_votes.counts.values()) == question_votes.total
        if question_votes.total == 0:
            assert set(fractions.values()) <= {0.0}
    assert votes["shape"].total == sum(1 for walk in drawn if walk)
    assert votes["round"].total + votes["odd"].total <= votes["shape"].total
