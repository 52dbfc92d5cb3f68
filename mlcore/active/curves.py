"""Learning curves over several seeds, and the figures that say whether a strategy saves labels.

One simulation (``mlcore.active.simulation.simulate``) is one draw of the split, the initial labels and every random
choice; a single draw moves by several points on a few hundred labels, so verdicts are made on the mean curve over
seeds, with the seeds' spread beside it. Balanced accuracy is the headline: on an imbalanced set (a quarter spirals)
plain accuracy rewards predicting the majority class and can fall as a balanced model learns the minority.

The figures (the command, the /simulations/ page and bench/active_learning.py print these same ones):
- **labels needed**: the fewest labels at which a strategy's mean balanced accuracy reaches random's mean at the
  final budget; None when it never does.
- **labels saved**: final budget - labels needed, and that as a share of the final budget.
- **area**: the mean of the mean curve over its points (a normalised area under the learning curve).
- **largest shortfall**: the most the strategy's mean trails random's at any budget, and whether that exceeds the
  seeds' spread there (the standard deviation over seeds of the strategy's minus random's balanced accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BASELINE = "random"
METRICS = ("balanced_accuracy", "macro_f1", "accuracy")
HEADLINE = "balanced_accuracy"


def mean_curves(runs: Sequence[Mapping[str, Sequence[Mapping]]]) -> dict[str, list[dict]]:
    """Per strategy, one point per budget: {"labels", and for each of ``METRICS`` its mean and "<metric>_sd"}.

    Args:
        runs: one {strategy: [points]} per seed (``simulate(...)["curves"]``); a strategy's points must be at the
            same label counts in every run (the simulation guarantees it: pool sizes do not depend on the seed).

    Raises:
        ValueError: no runs, runs with other strategies, or points at other label counts.
    """
    if not runs:
        raise ValueError("no runs to average")
    names = list(runs[0])
    out = {}
    for name in names:
        if any(list(run) != names for run in runs):
            raise ValueError(f"every run must have the strategies {names}")
        labels = [int(p["labels"]) for p in runs[0][name]]
        if any([int(p["labels"]) for p in run[name]] != labels for run in runs):
            raise ValueError(f"the runs of {name!r} have points at different label counts")
        points = []
        for index, count in enumerate(labels):
            point = {"labels": count}
            for metric in METRICS:
                values = [float(run[name][index][metric]) for run in runs if metric in run[name][index]]
                if values:
                    point[metric] = float(np.mean(values))
                    point[f"{metric}_sd"] = float(np.std(values))
            points.append(point)
        out[name] = points
    return out


def savings(runs: Sequence[Mapping[str, Sequence[Mapping]]], *, baseline: str = BASELINE,
            metric: str = HEADLINE) -> dict:
    """The verdict of several seeds' curves against the baseline's (module docstring).

    Returns:
        {"metric", "baseline", "seeds" (runs counted), "final_labels" (the baseline's final budget), "target" (its
        mean ``metric`` there), "per_strategy": {strategy: {"labels_needed", "labels_saved", "saved_fraction",
        "area", "final", "final_sd", "shortfall" (>= 0), "shortfall_labels", "shortfall_beyond_spread" (bool)}} for
        every strategy, the baseline included (its labels saved None), "best" (the strategy needing the fewest
        labels; ties: larger area, then name; None when none reaches the target) and "labels_saved" and
        "saved_fraction" of the best (None without)}.

    Raises:
        ValueError: when the baseline has no curve.
    """
    curves = mean_curves(runs)
    if not curves.get(baseline):
        raise ValueError(f"no curve for the baseline {baseline!r} among {sorted(curves)}")
    base = np.array([[float(p[metric]) for p in run[baseline]] for run in runs])
    final_labels = int(curves[baseline][-1]["labels"])
    target = float(base[:, -1].mean())
    per_strategy = {}
    for name, points in curves.items():
        mean = np.array([p[metric] for p in points])
        # A hair of tolerance: the baseline reaches its own target at its final point whatever the rounding.
        needed = next((int(p["labels"]) for p, value in zip(points, mean, strict=True) if value >= target - 1e-9),
                      None)
        values = np.array([[float(p[metric]) for p in run[name]] for run in runs])
        common = min(values.shape[1], base.shape[1])
        difference = values[:, :common] - base[:, :common]
        gap = difference.mean(axis=0)
        worst = int(gap.argmin())
        saved = None if needed is None or name == baseline else final_labels - needed
        per_strategy[name] = {
            "labels_needed": needed, "labels_saved": saved,
            "saved_fraction": None if saved is None else saved / final_labels,
            "area": float(mean.mean()), "final": float(mean[-1]), "final_sd": float(values[:, -1].std()),
            "shortfall": float(max(0.0, -gap[worst])), "shortfall_labels": int(points[worst]["labels"]),
            "shortfall_beyond_spread": bool(-gap[worst] > difference[:, worst].std() + 1e-12),
        }
    contenders = [(row["labels_needed"], -row["area"], name) for name, row in per_strategy.items()
                  if name != baseline and row["labels_needed"] is not None]
    best = min(contenders)[2] if contenders else None
    return {"metric": metric, "baseline": baseline, "seeds": len(runs), "final_labels": final_labels, "target": target,
            "per_strategy": per_strategy, "best": best,
            "labels_saved": per_strategy[best]["labels_saved"] if best else None,
            "saved_fraction": per_strategy[best]["saved_fraction"] if best else None}


def table(verdict: Mapping, *, default: str | None = None) -> list[str]:
    """The verdict as fixed-width text lines (the command and the benchmark print these)."""
    lines = [f"{verdict['seeds']} seeds; target: random's mean {verdict['metric'].replace('_', ' ')} at "
             f"{verdict['final_labels']} labels = {verdict['target']:.3f}",
             f"{'strategy':<18} {'needed':>6} {'saved':>11} {'area':>6} {'final':>13} {'largest shortfall':>24}"]
    for name, row in verdict["per_strategy"].items():
        if name == verdict.get("baseline", BASELINE):
            saved = "-"
        else:
            saved = "none" if row["labels_saved"] is None else f"{row['labels_saved']} ({row['saved_fraction']:.0%})"
        shortfall = "-" if row["shortfall"] == 0 else (
            f"{row['shortfall']:.3f} at {row['shortfall_labels']}"
            + (" >spread" if row["shortfall_beyond_spread"] else ""))
        mark = " *" if name == default else ""
        lines.append(f"{name + mark:<18} {row['labels_needed'] if row['labels_needed'] is not None else '-':>6} "
                     f"{saved:>11} {row['area']:>6.3f} {row['final']:>7.3f}±{row['final_sd']:.3f} {shortfall:>24}")
    if default:
        lines.append("* the default strategy")
    return lines
