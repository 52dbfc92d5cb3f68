"""Benchmark: does a retrain cycle on a few hundred labels beat the features it started from? With the ablation.

On kaggle_gz2_dev (spiral or not, real SDSS galaxies), the fixed 70/30 split of bench/feature_quality.py; per seed,
``--labels`` random labels of the 70% play the expert's labels. Side by side, balanced accuracy on the 30%:

- probe: the product's probability head (mlcore.active.head) on the galaxy backbone's features, those labels;
- pixels: PCA of 32 px grey pixels + logistic regression (mlcore.training.evaluate.pixel_baseline), those labels;
- cycle, labels only: the retrain step (mlcore.training.finetune) from the galaxy backbone (or ``--weights``), at its
  crop, with the product's defaults (labeling/services/learning/retrain.py: 15 epochs, lr 3e-4, 96 px; batch 32,
  class-balanced draws, augmentation) unless told otherwise; ``--probe-init`` starts its class head from a probe
  on the starting features (LP-FT);
- cycle, + pseudo-labels: the same plus the unlabelled 70% the probe is at least ``--threshold`` sure of, at the
  product's pseudo-label weight 0.5 (the retrain service's recipe);
each cycle scored by its class head, by the probe refitted on its new features, by the average of the two, and by
that average averaged with the probe on the starting features (the parent ensemble: what experts and queues see once
the cycle is active, labeling/services/learning/classifier.py); with ``--d4`` also on features averaged over the 8
flips and quarter turns of each image, the class head applied to them as the product applies it (a cycle's default).
kaggle_gz2_dev has no volunteer votes, so the soft-vote term is not part of this ablation.

    python bench/retrain_gain.py [--data ../shared/data] [--labels 500] [--seeds 3] [--epochs 15] [--lr 3e-4]
                                 [--weights galaxy|FILE] [--image-size 96] [--probe-init]
                                 [--variants labels pseudo] [--d4] [--json FILE]
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
from mlcore.features.images import d4_views  # noqa: E402
from mlcore.training.class_head import PARENT_ENSEMBLE_WEIGHT, blend, class_head_of  # noqa: E402
from mlcore.training.evaluate import pixel_baseline  # noqa: E402
from mlcore.training.finetune import TrainConfig, TrainData, predict, pseudo_labels, train  # noqa: E402

PSEUDO_WEIGHT = 0.5


def balanced(truth, predicted) -> float:
    return float(balanced_accuracy_score(truth, predicted))


def probe(features, labels, train_rows, test_rows, seed) -> tuple[float, np.ndarray]:
    """Balanced accuracy of the product's head on the test rows, and its probabilities for every row."""
    head = ProbabilityHead(seed=seed).fit(features[train_rows], labels[train_rows])
    return balanced(labels[test_rows], head.predict(features[test_rows])), head.predict_proba(features)


def with_parent(served: np.ndarray, parent_probs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """What experts see after activation since the parent ensemble (labeling/services/learning/classifier.py): the
    cycle's blend averaged with the regression on its parent's features (here the starting probe)."""
    return blend(served, list(classes), parent_probs, list(classes), weight=PARENT_ENSEMBLE_WEIGHT)


def cycle(images, labels, classes, labelled, pseudo, config, weights) -> dict:
    """Fine-tune from the galaxy backbone on the labelled rows (+ pseudo rows: (indices, class indices))."""
    rows = np.concatenate([labelled, pseudo[0]])
    hard = np.concatenate([np.searchsorted(classes, labels[labelled]), pseudo[1]])
    weight = np.concatenate([np.ones(len(labelled)), np.full(len(pseudo[0]), PSEUDO_WEIGHT)])
    data = TrainData(images=images[rows], hard=torch.as_tensor(hard), hard_weight=torch.as_tensor(weight,
                     dtype=torch.float32), votes=torch.zeros(len(rows), 0), question_slices=[], classes=list(classes))
    result = train(data, weights=weights, config=config)
    return {"model": result.model, "seconds": result.seconds, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weights", default="galaxy", help="the starting backbone: galaxy (shipped) or a file")
    parser.add_argument("--image-size", type=int, default=96,
                        help="pixels per side the cycle trains at (the product's: the backbone's own, at least 96)")
    parser.add_argument("--d4", action="store_true",
                        help="also score the class head averaged over the 8 D4 views, and the probe on D4-averaged "
                             "starting features")
    parser.add_argument("--probe-init", action="store_true",
                        help="start the class head from a linear probe on the starting features (LP-FT)")
    parser.add_argument("--variants", nargs="+", choices=["labels", "pseudo"], default=["labels", "pseudo"],
                        help="which cycles to run: labels only, + pseudo-labels")
    parser.add_argument("--limit", type=int, help="use only this many galaxies (a quick check of the script)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = load_tasks(args.data)["kaggle_gz2_dev"]
    paths, labels = task["paths"][:args.limit], task["labels"][:args.limit]
    classes = np.array(sorted(set(labels)))
    size = read_checkpoint(resolve_weights("resnet18", args.weights))["image_size"]
    crop = input_crop(args.weights)
    started = time.perf_counter()
    images, failures = decode_all(paths, size, crop_fraction=crop)
    if failures:
        raise SystemExit(f"unreadable images: {failures[:3]}")
    with torch.inference_mode():
        backbone = build_backbone("resnet18", args.weights).eval()
        features = torch.cat([backbone(images[i:i + 256]) for i in range(0, len(images), 256)]).numpy()
        # The starting features averaged over the 8 D4 views: what the cycle's D4-averaged answers are fairly
        # compared with (the product's rotation-invariant feature sets).
        d4_features = None if not args.d4 else torch.cat([
            torch.stack([backbone(view) for view in d4_views(images[i:i + 256])]).mean(dim=0)
            for i in range(0, len(images), 256)]).numpy()
    print(f"kaggle_gz2_dev: {len(labels)} galaxies decoded and featured at {size} px (crop {crop}) in "
          f"{time.perf_counter() - started:.0f} s")
    # A cycle may learn at a finer scale than the backbone's own (the probe it is compared with stays at that size).
    cycle_size = args.image_size or size
    cycle_images = images if cycle_size == size else decode_all(paths, cycle_size, crop_fraction=crop)[0]
    indices = np.arange(len(labels))
    pool, test = train_test_split(indices, test_size=0.3, stratify=labels, random_state=0)
    rows: dict[str, list[float]] = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = np.random.default_rng(seed)
        labelled = np.sort(rng.choice(pool, args.labels, replace=False))
        score, probs = probe(features, labels, labelled, test, seed)
        rows.setdefault("probe on the starting features", []).append(score)
        if args.d4:
            rows.setdefault("probe on the starting features, D4-averaged", []).append(
                probe(d4_features, labels, labelled, test, seed)[0])
        pixel_probs, pixel_classes = pixel_baseline(images[labelled], labels[labelled], images[test])
        rows.setdefault("pixels (PCA + logistic regression)", []).append(
            balanced(labels[test], np.asarray(pixel_classes)[pixel_probs.argmax(axis=1)]))
        eligible = np.zeros(len(labels), dtype=bool)
        eligible[np.setdiff1d(pool, labelled)] = True
        confident = pseudo_labels(probs, threshold=args.threshold, eligible=eligible)
        config = TrainConfig(epochs=args.epochs, lr=args.lr, image_size=cycle_size, crop_fraction=crop, seed=seed,
                             threads=2, device="cpu", probe_init=args.probe_init)
        variants = {"labels": ("labels only", (np.zeros(0, np.int64), np.zeros(0, np.int64))),
                    "pseudo": ("+ pseudo-labels", confident)}
        for name, pseudo in (variants[key] for key in args.variants):
            run = cycle(cycle_images, labels, classes, labelled, pseudo, config, args.weights)
            out = predict(run["model"], cycle_images, device="cpu")
            rows.setdefault(f"cycle, {name}: class head", []).append(
                balanced(labels[test], classes[out["probs"][test].argmax(axis=1)]))
            refit_score, refit_probs = probe(out["features"], labels, labelled, test, seed)
            rows.setdefault(f"cycle, {name}: probe on its features", []).append(refit_score)
            # The cycle's own answer: the product blends the two (mlcore.training.class_head.blend) ...
            served = blend(refit_probs[test], list(classes), out["probs"][test], list(classes))
            rows.setdefault(f"cycle, {name}: head and probe averaged", []).append(
                balanced(labels[test], classes[served.argmax(axis=1)]))
            # ... and, as served since the parent ensemble, averaged with the probe on the starting features.
            rows.setdefault(f"cycle, {name}: served (that and the starting probe)", []).append(
                balanced(labels[test], classes[with_parent(served, probs[test], classes).argmax(axis=1)]))
            if args.d4:
                # The cycle's outputs averaged over the 8 D4 views (a rotation-invariant feature set of the version):
                # only the labelled and held-out rows are needed.
                needed = np.concatenate([labelled, test])
                averaged = predict(run["model"], cycle_images[needed], device="cpu", d4=True)
                # As the product serves it: the class head on the stored (D4-averaged) feature vectors.
                head_d4 = class_head_of(run["model"], list(classes)).predict_proba(averaged["features"][len(labelled):])
                rows.setdefault(f"cycle, {name}: class head, D4-averaged", []).append(
                    balanced(labels[test], classes[head_d4.argmax(axis=1)]))
                refit_d4 = ProbabilityHead(seed=seed).fit(averaged["features"][:len(labelled)], labels[labelled]) \
                    .predict_proba(averaged["features"][len(labelled):])
                served_d4 = with_parent(blend(refit_d4, list(classes), head_d4, list(classes)), probs[test], classes)
                rows.setdefault(f"cycle, {name}: served, D4-averaged", []).append(
                    balanced(labels[test], classes[served_d4.argmax(axis=1)]))
            print(f"seed {seed}, {name}: {run['rows']} training rows ({len(pseudo[0])} pseudo), "
                  f"{run['seconds']:.0f} s; class head {rows[f'cycle, {name}: class head'][-1]:.3f}, probe on its "
                  f"features {rows[f'cycle, {name}: probe on its features'][-1]:.3f} (probe on the starting "
                  f"features {score:.3f})", flush=True)
    print(f"\n{args.labels} labels, {args.seeds} seeds; balanced accuracy on the {len(test)} held-out galaxies\n")
    print(f"{'model':<62} {'mean':>6} {'spread':>7}  per seed")
    for name, values in rows.items():
        print(f"{name:<62} {statistics.mean(values):>6.3f} {statistics.pstdev(values):>7.3f}  "
              + " ".join(f"{v:.3f}" for v in values))
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "labels": args.labels,
                                         "epochs": args.epochs, "lr": args.lr, "threshold": args.threshold,
                                         "image_size": cycle_size, "probe_init": args.probe_init, "d4": args.d4,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
