"""Which vote fractions a rule reads: the first kind a question has, raw always the last resort."""

import pytest

from mlcore.votes.fractions import check_kinds, describe_used, pick_fractions

RAW = {"smooth": 0.7, "features": 0.3}


def test_debiased_fractions_are_read_when_the_summary_has_them():
    extra = {"debiased": {"smooth": 0.12, "features": 0.96}, "weighted_fraction": {"smooth": 0.69, "features": 0.31}}
    assert pick_fractions(RAW, extra, ("debiased", "weighted", "raw")) == (
        {"smooth": 0.12, "features": 0.96}, "debiased")


def test_a_missing_kind_falls_back_to_the_next_one_then_to_raw():
    extra = {"weighted_fraction": {"smooth": 0.69, "features": 0.31}}
    assert pick_fractions(RAW, extra, ("debiased", "weighted"))[1] == "weighted"
    assert pick_fractions(RAW, {}, ("debiased", "weighted")) == (RAW, "raw")


def test_published_zeros_beside_real_votes_count_as_missing():
    assert pick_fractions(RAW, {"debiased": {"smooth": 0.0, "features": 0.0}}, ("debiased",))[1] == "raw"


def test_zeros_on_a_question_nobody_reached_are_kept():
    nobody = {"smooth": 0.0, "features": 0.0}
    assert pick_fractions(nobody, {"debiased": nobody}, ("debiased",))[1] == "debiased"


def test_it_rejects_an_unknown_kind_or_none_at_all():
    assert check_kinds("raw") == ("raw",)
    with pytest.raises(ValueError, match="'published'"):
        check_kinds(["debiased", "published"])
    with pytest.raises(ValueError, match="at least one"):
        check_kinds([])


def test_the_account_names_the_root_questions_kind_first_and_any_fallback():
    assert describe_used({"t01": "debiased", "t02": "debiased"}, "t01") == "debiased"
    assert describe_used({"t01": "debiased", "t04": "raw"}, "t01") == "debiased, raw"
