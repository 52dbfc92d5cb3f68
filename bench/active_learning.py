"""Benchmark: how many labels active learning saves on real galaxies, averaged over several seeds.

The labels of a real dataset are hidden behind an oracle; each query strategy asks for labels round by round, a
calibrated logistic-regression head on frozen ResNet-18 features (seeded random weights: nothing can be
downloaded here) is refitted, and its accuracy is measured on a fixed held-out split (mlcore.active.simulation, the
same code as `manage.py simulate_active_learning`). Prints, per strategy, the mean final accuracy and the labels
needed to reach random sampling's final accuracy, over the seeds.

    .venv/bin/python bench/active_learning.py [--data galaxy10|gz-examples] [--seeds 0 1 2] [--image-size 128]

Data: galaxy10 = the 110 real Galaxy10 DECaLS images bundled in labeling/demo_data (10 classes); gz-examples = the
727 Galaxy Zoo example galaxies in ../shared/data/galaxy_zoo_examples, labelled by the question they illustrate.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from mlcore.active.simulation import simulate  # noqa: E402
from mlcore.features.backbone import build_backbone  # noqa: E402
from mlcore.features.extraction import extract  # noqa: E402
from mlcore.features.images import ImageFiles, make_loader, make_transform  # noqa: E402

DATA = {
    "galaxy10": (REPO_ROOT / "labeling" / "demo_data" / "galaxy10", "label"),
    "gz-examples": (REPO_ROOT.parent / "shared" / "data" / "galaxy_zoo_examples", "question_title"),
}
STRATEGIES = ["margin", "entropy", "least_confidence", "bald", "typiclust", "kcenter", "cluster_margin", "combined"]


def labelled_images(name: str) -> tuple[list[Path], np.ndarray]:
    folder, column = DATA[name]
    if not folder.exists():
        raise SystemExit(f"{folder} is not present")
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [folder / row["file"] for row in rows], np.array([row[column] for row in rows])


def features_of(paths: list[Path], image_size: int) -> np.ndarray:
    model = build_backbone("resnet18", weights="random", seed=0)
    loader = make_loader(ImageFiles(paths, np.arange(len(paths)), make_transform(image_size)), batch_size=32)
    vectors = np.zeros((len(paths), 512), dtype=np.float32)
    for batch in extract(model, loader, device="cpu"):
        vectors[batch.keys] = batch.vectors
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(DATA), default="galaxy10")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    args = parser.parse_args()
    torch.set_num_threads(2)
    paths, labels = labelled_images(args.data)
    started = time.perf_counter()
    features = features_of(paths, args.image_size)
    print(f"{args.data}: {len(paths)} galaxies, {len(set(labels))} classes; ResNet-18 (random weights) features at "
          f"{args.image_size} px in {time.perf_counter() - started:.1f} s")
    runs = []
    for seed in args.seeds:
        runs.append(simulate(features, labels, strategies=args.strategies, initial=args.initial, step=args.step,
                             rounds=args.rounds, seed=seed, min_labels=args.initial))
    first = runs[0]["parameters"]
    print(f"pool {first['n_pool']}, held out {first['n_test']}; initial {args.initial}, step {args.step}, "
          f"{args.rounds} rounds; seeds {args.seeds}\n")
    print(f"{'strategy':<18} {'labels':>6} {'accuracy':>9} {'balanced':>9} {'labels to random final':>23} "
          f"{'seconds':>8}")
    for strategy in runs[0]["curves"]:
        finals = [run["curves"][strategy][-1] for run in runs]
        needed = [run["savings"]["per_strategy"].get(strategy) if strategy != "random" else
                  run["savings"]["baseline_labels"] for run in runs]
        reached = [n for n in needed if n is not None]
        needed_text = (f"{statistics.mean(reached):.1f} ({len(reached)}/{len(runs)} seeds)" if reached
                       else f"never (0/{len(runs)})")
        print(f"{strategy:<18} {finals[0]['labels']:>6} {statistics.mean(f['accuracy'] for f in finals):>9.3f} "
              f"{statistics.mean(f['balanced_accuracy'] for f in finals):>9.3f} {needed_text:>23} "
              f"{statistics.mean(run['seconds'][strategy] for run in runs):>8.1f}")
    saved = [run["savings"]["labels_saved"] for run in runs if run["savings"].get("labels_saved") is not None]
    best = [run["savings"]["best"] for run in runs]
    print(f"\nbest strategy per seed: {best}; labels saved against random: {saved or 'none'}")


if __name__ == "__main__":
    main()
