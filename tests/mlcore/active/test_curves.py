"""The verdict over seeds (mlcore/active/curves.py): labels needed and saved against random's mean balanced accuracy
at the final budget, the area, the largest shortfall against the seeds' spread."""

import pytest

from mlcore.active.curves import mean_curves, savings, table


def curve(*values, start=10, step=10):
    return [{"labels": start + step * i, "balanced_accuracy": value, "accuracy": value}
            for i, value in enumerate(values)]


def test_mean_curves_average_each_budget_over_the_runs_with_the_spread():
    runs = [{"random": curve(0.5, 0.7)}, {"random": curve(0.7, 0.9)}]

    curves = mean_curves(runs)

    assert curves["random"][0]["labels"] == 10
    assert curves["random"][0]["balanced_accuracy"] == pytest.approx(0.6)
    assert curves["random"][1]["balanced_accuracy_sd"] == pytest.approx(0.1)
    assert "macro_f1" not in curves["random"][0]  # only the metrics the points carry


def test_mean_curves_refuse_runs_that_do_not_line_up():
    with pytest.raises(ValueError, match="different label counts"):
        mean_curves([{"random": curve(0.5, 0.7)}, {"random": curve(0.5, 0.7, start=20)}])
    with pytest.raises(ValueError, match="strategies"):
        mean_curves([{"random": curve(0.5)}, {"random": curve(0.5), "margin": curve(0.5)}])
    with pytest.raises(ValueError, match="no runs"):
        mean_curves([])


def test_labels_needed_and_saved_count_to_random_mean_at_the_final_budget():
    runs = [
        {"random": curve(0.50, 0.60, 0.70, 0.80), "margin": curve(0.50, 0.78, 0.82, 0.85),
         "typiclust": curve(0.50, 0.55, 0.60, 0.65)},
        {"random": curve(0.50, 0.60, 0.70, 0.80), "margin": curve(0.50, 0.84, 0.80, 0.85),
         "typiclust": curve(0.50, 0.55, 0.60, 0.65)},
    ]

    verdict = savings(runs)

    assert verdict["target"] == pytest.approx(0.80) and verdict["final_labels"] == 40 and verdict["seeds"] == 2
    margin = verdict["per_strategy"]["margin"]
    # Mean 0.81 at 20 labels reaches 0.80: 20 labels of the 40 saved.
    assert margin["labels_needed"] == 20 and margin["labels_saved"] == 20 and margin["saved_fraction"] == 0.5
    assert margin["area"] == pytest.approx((0.5 + 0.81 + 0.81 + 0.85) / 4)
    assert margin["final"] == pytest.approx(0.85) and margin["final_sd"] == 0
    assert margin["shortfall"] == 0
    typiclust = verdict["per_strategy"]["typiclust"]
    assert typiclust["labels_needed"] is None and typiclust["labels_saved"] is None
    # It trails random by 0.15 at 40 labels, and the runs agree on it (no spread): beyond the spread.
    assert typiclust["shortfall"] == pytest.approx(0.15) and typiclust["shortfall_labels"] == 40
    assert typiclust["shortfall_beyond_spread"] is True
    assert verdict["per_strategy"]["random"]["labels_saved"] is None
    assert verdict["best"] == "margin" and verdict["labels_saved"] == 20


def test_a_shortfall_within_the_seeds_spread_is_not_flagged_and_ties_go_to_the_larger_area():
    runs = [{"random": curve(0.6, 0.7), "margin": curve(0.4, 0.8), "kcenter": curve(0.7, 0.7)},
            {"random": curve(0.6, 0.7), "margin": curve(0.7, 0.7), "kcenter": curve(0.7, 0.7)}]

    verdict = savings(runs)

    margin = verdict["per_strategy"]["margin"]
    assert margin["shortfall"] == pytest.approx(0.05) and margin["shortfall_beyond_spread"] is False
    assert verdict["best"] == "kcenter"  # both need 10 labels; kcenter's area is larger


def test_no_strategy_reaching_the_target_names_no_best_and_the_table_says_none():
    runs = [{"random": curve(0.5, 0.9), "margin": curve(0.5, 0.6)}]

    verdict = savings(runs)
    lines = table(verdict, default="margin")

    assert verdict["best"] is None and verdict["labels_saved"] is None and verdict["saved_fraction"] is None
    assert "1 seeds; target: random's mean balanced accuracy at 20 labels = 0.900" == lines[0]
    margin = next(line for line in lines if line.startswith("margin *"))
    assert " none " in margin and "0.300 at 20 >spread" in margin
    with pytest.raises(ValueError, match="no curve for the baseline 'random'"):
        savings([{"margin": curve(0.5)}])
