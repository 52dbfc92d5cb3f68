"""Writing an active-learning simulation's results: the learning curves as JSON and as a two-panel PNG (mean balanced
accuracy and macro-F1 against labels with a band of one standard deviation over the seeds, random dashed), both
written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from mlcore.active.curves import BASELINE


def write_results(result: Mapping, out_dir) -> tuple[Path, Path]:
    """Write ``learning_curves.json`` (indent 2) and ``learning_curves.png`` into ``out_dir``, each atomically.

    Returns:
        (json path, png path).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / "learning_curves.json", out / "learning_curves.png"
    _write_atomically(json_path, lambda stream: stream.write(json.dumps(result, indent=2).encode()))
    figure = _figure(result)
    _write_atomically(png_path, lambda stream: figure.savefig(stream, format="png", dpi=120))
    return json_path, png_path


def _figure(result: Mapping):
    # A bare Figure (no pyplot): no display is needed, no global backend is switched inside the web or worker
    # process, and nothing stays registered with pyplot after the function returns.
    from matplotlib.figure import Figure

    parameters, curves, savings = result["parameters"], result["curves"], result["savings"]
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    panels = figure.subplots(1, 2)
    for axes, metric, title in ((panels[0], "balanced_accuracy", "Balanced accuracy"),
                                (panels[1], "macro_f1", "Macro-F1")):
        for name, points in curves.items():
            labels = [p["labels"] for p in points]
            mean = [p[metric] for p in points]
            line = axes.plot(labels, mean, marker="o", markersize=3, linestyle="--" if name == BASELINE else "-",
                             linewidth=2 if name == BASELINE else 1.5, color="black" if name == BASELINE else None,
                             zorder=3 if name == BASELINE else 2, label=name)[0]
            spread = [p.get(f"{metric}_sd", 0.0) for p in points]
            if any(spread):  # one band of +-1 standard deviation over the seeds
                axes.fill_between(labels, [m - s for m, s in zip(mean, spread, strict=True)],
                                  [m + s for m, s in zip(mean, spread, strict=True)], color=line.get_color(),
                                  alpha=0.12, linewidth=0)
        if metric == savings.get("metric"):
            axes.axhline(savings["target"], color="grey", linestyle=":", linewidth=1,
                         label=f"{BASELINE} at {savings['final_labels']} ({savings['target']:.3f})")
        axes.set_title(title)
        axes.set_xlabel("labelled galaxies")
        axes.set_ylabel(title.lower())
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize="small")
    seeds = parameters.get("seeds") or [parameters.get("seed")]
    headline = (f"Active learning on {parameters['n_galaxies']:,} galaxies ({parameters['n_pool']:,} in the pool, "
                f"{parameters['n_test']:,} held out, {len(parameters['classes'])} classes), mean of {len(seeds)} "
                f"seed{'s' if len(seeds) != 1 else ''}")
    best = savings["best"]
    if best is not None:
        row = savings["per_strategy"][best]
        headline += (f"\n{best} reaches {BASELINE}'s balanced accuracy at {savings['final_labels']} labels with "
                     f"{row['labels_needed']} labels ({row['saved_fraction']:.0%} saved)")
    else:
        headline += f"\nno strategy reaches {BASELINE}'s balanced accuracy at {savings['final_labels']} labels sooner"
    figure.suptitle(headline)
    return figure


def _write_atomically(path: Path, write: Callable) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the results are for anyone who can read the folder
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
