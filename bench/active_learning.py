"""Benchmark: how many labels active learning saves on real galaxies, over several seeds, with the default features.

The labels of a real dataset are hidden behind an oracle; each query strategy asks for labels round by round, the
product's probability head (mlcore.active.head) is refitted on the galaxy backbone's features (the product's default,
mlcore/weights) and scored on held-out galaxies: mlcore.active.simulation, the code behind
`manage.py simulate_active_learning`, and the verdict table of mlcore.active.curves that the command and the
/simulations/ page show.

    python bench/active_learning.py [--data ../shared/data] [--tasks kaggle_gz2_dev,decals_rings]
        [--seeds 5] [--initial 20] [--step 20] [--budget N] [--start shared,own] [--json FILE]

Tasks (../shared/data, the team's development sets): kaggle_gz2_dev (spiral or not, 3,484 SDSS galaxies, a quarter
spiral), decals_rings (ring or not, 470 DECaLS galaxies, balanced), galaxy_zoo_examples (which of 11 Galaxy Zoo
questions each of 727 example images illustrates). Each seed draws its own 25% held-out split and its own initial
labels. Starts: "shared" (every strategy starts from one random draw of the initial labels per seed, so the curves
differ by the queries alone) and "own" (each strategy picks its first labels itself: the cold start a new project
has).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from feature_quality import load_tasks  # noqa: E402
from feature_sets import cnn  # noqa: E402

from mlcore.active.curves import table  # noqa: E402
from mlcore.active.query import DEFAULT_STRATEGY  # noqa: E402
from mlcore.active.simulation import simulate_seeds  # noqa: E402

# The largest budget per task: 400 labels (20 rounds of 20), but at most about half of a small pool, where every
# strategy would otherwise end on the same labels and "saved" would count the pool running out.
BUDGETS = {"kaggle_gz2_dev": 400, "decals_rings": 200, "galaxy_zoo_examples": 300}
STRATEGIES = ["margin", "bald", "typiclust", "kcenter", "cluster_margin", "combined"]
# For two classes least confidence, entropy and margin rank the pool identically: margin stands for all three.


def task_labels(task: dict, name: str, data: Path) -> np.ndarray:
    """The class of each galaxy; for galaxy_zoo_examples the question title an image illustrates (11 of them: most
    answers have one or two example images, too few to learn)."""
    if name != "galaxy_zoo_examples":
        return task["labels"]
    with open(data / name / "labels.csv", newline="") as handle:
        titles = {data / name / row["file"]: row["question_title"] for row in csv.DictReader(handle)}
    return np.array([titles[Path(path)] for path in task["paths"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--tasks", default="kaggle_gz2_dev,decals_rings")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--budget", type=int, help="labels at the end (default: BUDGETS per task)")
    parser.add_argument("--start", default="shared,own")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: not a folder (the development data, ../shared/data)")
    tasks = load_tasks(args.data)
    strategies = args.strategies.split(",")
    report = {"date": time.strftime("%Y-%m-%d"), "seeds": args.seeds, "default": DEFAULT_STRATEGY, "tasks": {}}
    if args.json and args.json.exists():  # tasks run on another day stay, each with its own figures
        report["tasks"] = json.loads(args.json.read_text()).get("tasks", {})
    for name in args.tasks.split(","):
        task = tasks[name]
        started = time.perf_counter()
        features, _ = cnn(task["paths"], "galaxy")
        labels = task_labels(task, name, args.data)
        print(f"\n## {name}: {len(labels)} galaxies, {len(set(labels))} classes; galaxy backbone features in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        report["tasks"][name] = {}
        rounds = ((args.budget or BUDGETS.get(name, 400)) - args.initial) // args.step
        for start in args.start.split(","):
            started = time.perf_counter()
            result = simulate_seeds(features, labels, seeds=range(args.seeds), strategies=strategies,
                                    initial=args.initial, step=args.step, rounds=rounds, start=start)
            parameters = result["parameters"]
            print(f"\n{start} start: pool {parameters['n_pool']}, held out {parameters['n_test']}; initial "
                  f"{args.initial} + {args.step} per round; {time.perf_counter() - started:.0f} s")
            print("\n".join(table(result["savings"], default=DEFAULT_STRATEGY)), flush=True)
            report["tasks"][name][start] = {"parameters": parameters, "curves": result["curves"],
                                            "savings": result["savings"], "seconds": result["seconds"]}
            if args.json:  # after every table, so an interrupted run keeps what it finished
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
