"""Signs of a careless or automated volunteer (mlcore/votes/screening.py): pace from timestamps, and leave-one-out
agreement with the other volunteers of a galaxy."""

import pytest

from mlcore.votes.screening import AgreementTally, leave_one_out_agreement, pace


def test_pace_gives_the_rate_the_median_gap_and_the_busiest_minute():
    # Three quick ones 2 s apart, then one an hour later.
    result = pace([0, 2, 4, 3604])
    assert result.classifications == 4
    assert result.median_gap_s == 2
    assert result.busiest_minute == 3
    assert result.per_hour == pytest.approx(3 * 3600 / 3604)


def test_pace_of_a_single_classification_has_no_rate_or_gap():
    result = pace([10.0])
    assert (result.classifications, result.per_hour, result.median_gap_s, result.busiest_minute) == (1, None, None, 1)


def test_pace_takes_timestamps_in_any_order_and_an_instant_burst_is_fast_not_infinite():
    assert pace([30, 0, 10, 20]).median_gap_s == 10
    burst = pace([5, 5, 5])
    assert burst.per_hour == 2 * 3600 and burst.median_gap_s == 0 and burst.busiest_minute == 3


def test_pace_refuses_a_window_that_is_not_positive():
    with pytest.raises(ValueError, match="window_s"):
        pace([1, 2], window_s=0)


def test_an_answer_is_compared_with_the_majority_of_the_others_only():
    rows = [("a", {"shape": "smooth"}, True), ("b", {"shape": "smooth"}, True), ("c", {"shape": "smooth"}, True),
            ("odd", {"shape": "star"}, True)]
    tallies = leave_one_out_agreement(rows, root="shape")
    assert tallies["a"].root_share == 1.0 and tallies["odd"].root_share == 0.0
    assert tallies["odd"].compared == 1


def test_two_against_two_is_a_tie_and_a_tie_is_no_disagreement():
    rows = [("a", {"shape": "smooth"}, True), ("b", {"shape": "smooth"}, True), ("c", {"shape": "disk"}, True),
            ("d", {"shape": "disk"}, True), ("e", {"shape": "disk"}, True)]
    tallies = leave_one_out_agreement(rows, root="shape")
    # Without c, the others are 2 smooth and 2 disk: a tie.
    assert tallies["c"].root_share == 1.0
    # Without a, the others are 1 smooth and 3 disk.
    assert tallies["a"].root_share == 0.0


def test_too_few_others_compare_nothing():
    rows = [("a", {"shape": "smooth"}, True), ("b", {"shape": "star"}, True)]
    tallies = leave_one_out_agreement(rows, root="shape")
    assert tallies["a"] == AgreementTally() and tallies["a"].root_share is None
    assert leave_one_out_agreement(rows, root="shape", min_others=1)["a"].root_share == 0.0


def test_an_uncounted_classification_is_compared_but_shapes_no_majority():
    rows = [("a", {"shape": "smooth"}, True), ("b", {"shape": "smooth"}, True)] + [
        (f"bot{i}", {"shape": "star"}, False) for i in range(5)]
    tallies = leave_one_out_agreement(rows, root="shape")
    assert tallies["bot0"].root_share == 0.0  # against a and b, not against the other bots
    assert tallies["a"].root_share is None  # one counted other: b


def test_questions_below_the_root_are_tallied_in_the_all_questions_share():
    rows = [(name, {"shape": "smooth", "round": answer}, True)
            for name, answer in [("a", "round"), ("b", "round"), ("c", "round"), ("d", "cigar")]]
    tallies = leave_one_out_agreement(rows, root="shape")
    assert tallies["d"].root_share == 1.0 and tallies["d"].share == 0.5
    assert tallies["a"].share == 1.0


def test_a_checkbox_question_scores_the_share_of_boxes_on_the_majoritys_side():
    rows = [("a", {"odd": ["ring"]}, True), ("b", {"odd": ["ring"]}, True), ("c", {"odd": ["ring"]}, True),
            ("d", {"odd": ["ring", "lens"]}, True), ("e", {"odd": []}, True)]
    tallies = leave_one_out_agreement(rows, root="shape")
    assert tallies["a"].share == 1.0  # ring ticked with most, lens left empty with most
    assert tallies["d"].share == 0.5  # ring with most, lens against them
    assert tallies["e"].share == 0.5  # lens empty with most, ring against them
    assert tallies["e"].root_compared == 0


def test_tallies_add_up_across_galaxies():
    total = AgreementTally()
    total.add(AgreementTally(root_compared=2, root_matches=1, compared=3, matches=2))
    total.add(AgreementTally(root_compared=2, root_matches=2, compared=2, matches=2))
    assert total.root_share == 0.75 and total.share == 0.8


@pytest.mark.parametrize("rows, min_others, message", [
    ([("a", "smooth", True)], 2, "answers mapping"),
    ([("a", {"shape": "smooth"})], 2, "answers mapping"),
    ([], 0, "min_others"),
])
def test_it_refuses_malformed_rows_and_settings(rows, min_others, message):
    with pytest.raises(ValueError, match=message):
        leave_one_out_agreement(rows, root="shape", min_others=min_others)
