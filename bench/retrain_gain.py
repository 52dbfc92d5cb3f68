"""Benchmark: does a retrain cycle on a few hundred labels beat the features it started from? With the ablation.

On kaggle_gz2_dev (spiral or not, real SDSS galaxies), the fixed 70/30 split of bench/feature_quality.py; per seed,
``--labels`` random labels of the 70% play the expert's labels. Side by side, balanced accuracy on the 30%:

- probe: the product's probability head (mlcore.active.head) on the galaxy backbone's features, those labels;
- pixels: PCA of 32 px grey pixels + logistic regression (mlcore.training.evaluate.pixel_baseline), those labels;
- cycle, labels only: the retrain step (mlcore.training.finetune) from the galaxy backbone, at its 64 px and crop,
  the product's defaults otherwise (5 epochs, lr 1e-3, batch 32, class-balanced draws, augmentation);
- cycle, + pseudo-labels: the same plus the unlabelled 70% the probe is at least ``--threshold`` sure of, at the
  product's pseudo-label weight 0.5 (the retrain service's recipe);
each cycle scored by its class head and by the probe refitted on its new features (what the queues then use).
kaggle_gz2_dev has no volunteer votes, so the soft-vote term is not part of this ablation.

    python bench/retrain_gain.py [--data ../shared/data] [--labels 500] [--seeds 3] [--epochs 5] [--lr 0.001]
                                 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from feature_quality import load_tasks  # noqa: E402

from mlcore.active.head import ProbabilityHead  # noqa: E402
from mlcore.features.augment import decode_all  # noqa: E402
from mlcore.features.backbone import build_backbone, input_crop, read_checkpoint, resolve_weights  # noqa: E402
from mlcore.training.evaluate import pixel_baseline  # noqa: E402
from mlcore.training.finetune import TrainConfig, TrainData, predict, pseudo_labels, train  # noqa: E402

PSEUDO_WEIGHT = 0.5


def balanced(truth, predicted) -> float:
    return float(balanced_accuracy_score(truth, predicted))


def probe(features, labels, train_rows, test_rows, seed) -> tuple[float, np.ndarray]:
    """Balanced accuracy of the product's head on the test rows, and its probabilities for every row."""
    head = ProbabilityHead(seed=seed).fit(features[train_rows], labels[train_rows])
    return balanced(labels[test_rows], head.predict(features[test_rows])), head.predict_proba(features)


def cycle(images, labels, classes, labelled, pseudo, config) -> dict:
    """Fine-tune from the galaxy backbone on the labelled rows (+ pseudo rows: (indices, class indices))."""
    rows = np.concatenate([labelled, pseudo[0]])
    hard = np.concatenate([np.searchsorted(classes, labels[labelled]), pseudo[1]])
    weight = np.concatenate([np.ones(len(labelled)), np.full(len(pseudo[0]), PSEUDO_WEIGHT)])
    data = TrainData(images=images[rows], hard=torch.as_tensor(hard), hard_weight=torch.as_tensor(weight,
                     dtype=torch.float32), votes=torch.zeros(len(rows), 0), question_slices=[], classes=list(classes))
    result = train(data, weights="galaxy", config=config)
    return {"model": result.model, "seconds": result.seconds, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, help="use only this many galaxies (a quick check of the script)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = load_tasks(args.data)["kaggle_gz2_dev"]
    paths, labels = task["paths"][:args.limit], task["labels"][:args.limit]
    classes = np.array(sorted(set(labels)))
    size = read_checkpoint(resolve_weights("resnet18", "galaxy"))["image_size"]
    crop = input_crop("galaxy")
    started = time.perf_counter()
    images, failures = decode_all(paths, size, crop_fraction=crop)
    if failures:
        raise SystemExit(f"unreadable images: {failures[:3]}")
    with torch.inference_mode():
        backbone = build_backbone("resnet18", "galaxy").eval()
        features = torch.cat([backbone(images[i:i + 256]) for i in range(0, len(images), 256)]).numpy()
    print(f"kaggle_gz2_dev: {len(labels)} galaxies decoded and featured at {size} px (crop {crop}) in "
          f"{time.perf_counter() - started:.0f} s")
    indices = np.arange(len(labels))
    pool, test = train_test_split(indices, test_size=0.3, stratify=labels, random_state=0)
    rows: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        labelled = np.sort(rng.choice(pool, args.labels, replace=False))
        score, probs = probe(features, labels, labelled, test, seed)
        rows.setdefault("probe on the starting features", []).append(score)
        pixel_probs, pixel_classes = pixel_baseline(images[labelled], labels[labelled], images[test])
        rows.setdefault("pixels (PCA + logistic regression)", []).append(
            balanced(labels[test], np.asarray(pixel_classes)[pixel_probs.argmax(axis=1)]))
        eligible = np.zeros(len(labels), dtype=bool)
        eligible[np.setdiff1d(pool, labelled)] = True
        confident = pseudo_labels(probs, threshold=args.threshold, eligible=eligible)
        config = TrainConfig(epochs=args.epochs, lr=args.lr, image_size=size, crop_fraction=crop, seed=seed, threads=2,
                             device="cpu")
        for name, pseudo in (("labels only", (np.zeros(0, np.int64), np.zeros(0, np.int64))),
                             ("+ pseudo-labels", confident)):
            run = cycle(images, labels, classes, labelled, pseudo, config)
            out = predict(run["model"], images, device="cpu")
            rows.setdefault(f"cycle, {name}: class head", []).append(
                balanced(labels[test], classes[out["probs"][test].argmax(axis=1)]))
            rows.setdefault(f"cycle, {name}: probe on its features", []).append(
                probe(out["features"], labels, labelled, test, seed)[0])
            print(f"seed {seed}, {name}: {run['rows']} training rows ({len(pseudo[0])} pseudo), "
                  f"{run['seconds']:.0f} s; class head {rows[f'cycle, {name}: class head'][-1]:.3f}, probe on its "
                  f"features {rows[f'cycle, {name}: probe on its features'][-1]:.3f} (probe on the starting "
                  f"features {score:.3f})", flush=True)
    print(f"\n{args.labels} labels, {args.seeds} seeds; balanced accuracy on the {len(test)} held-out galaxies\n")
    print(f"{'model':<48} {'mean':>6} {'spread':>7}  per seed")
    for name, values in rows.items():
        print(f"{name:<48} {statistics.mean(values):>6.3f} {statistics.pstdev(values):>7.3f}  "
              + " ".join(f"{v:.3f}" for v in values))
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "labels": args.labels,
                                         "epochs": args.epochs, "lr": args.lr, "threshold": args.threshold,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
