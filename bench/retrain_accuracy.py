"""Part 2 of bench/retrain.py: accuracy on the real Galaxy10 images from random initialisation, side by side.

Random-init features + logistic regression (a), SimCLR features + logistic regression (b), retrain cycles with a
simulated expert queue and pseudo-labels (c), and the pixel baseline, on one fixed held-out split, mean +- std over
seeds. bench/retrain.py's docstring describes each row; run that script, not this module.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcore.active.head import ProbabilityHead
from mlcore.active.query import choose
from mlcore.features.augment import decode_all
from mlcore.features.backbone import BACKBONES, build_backbone
from mlcore.features.extraction import extract
from mlcore.features.images import ImageFiles, make_loader, make_transform
from mlcore.training.evaluate import evaluate_predictions, held_out_mask, pixel_baseline
from mlcore.training.finetune import TrainConfig, TrainData, predict, pseudo_labels, train
from mlcore.training.pretrain import SSLConfig, pretrain

BACKBONE = "resnet18"
HELD_OUT_FRACTION = 0.3
FEATURE_SIZE = 96  # the size (a) is asked for; (a) is also run at the pretraining size


@dataclass
class Split:
    """Galaxy10 rows: held-out and training indices, str labels, class codes and the class names."""

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    codes: np.ndarray
    classes: list[str]


def features_of(model, paths: list[Path], size: int, device: str) -> np.ndarray:
    loader = make_loader(ImageFiles(paths, np.arange(len(paths)), make_transform(size)), batch_size=64)
    vectors = np.zeros((len(paths), BACKBONES[BACKBONE]), dtype=np.float32)
    for batch in extract(model, loader, device=device):
        if batch.failed:
            raise SystemExit(f"unreadable images: {batch.failed[:3]}")
        vectors[batch.keys] = batch.vectors
    return vectors


def _full(probs: np.ndarray, columns, classes: list[str]) -> np.ndarray:
    """Probabilities laid out over every class (a class with no training label gets 0)."""
    out = np.zeros((len(probs), len(classes)))
    out[:, [classes.index(str(c)) for c in columns]] = probs
    return out


def _scores(split: Split, probs: np.ndarray, **extra) -> dict:
    metrics = evaluate_predictions(split.labels[split.test], probs, split.classes)
    return {"accuracy": metrics["accuracy"], "balanced": metrics["balanced_accuracy"], **extra}


def head_scores(features: np.ndarray, split: Split, seed: int) -> dict:
    """Logistic regression (``ProbabilityHead``) on every training label, scored on the held-out galaxies."""
    head = ProbabilityHead(seed=seed).fit(features[split.train], split.labels[split.train])
    probs = _full(head.predict_proba(features[split.test]), head.classes_, split.classes)
    return _scores(split, probs, labels=len(split.train))


def pixel_scores(images, rows: np.ndarray, split: Split, seed: int) -> dict:
    started = time.perf_counter()
    probs, columns = pixel_baseline(images[rows], split.labels[rows], images[split.test], seed=seed)
    return _scores(split, _full(probs, columns, split.classes), labels=len(rows),
                   seconds=time.perf_counter() - started)


def cycles(images, split: Split, *, start: str, cold_features: np.ndarray, seed: int, args, workdir: Path) -> list:
    """Cold-start labels, then ``args.cycles`` rounds of margin queries + pseudo-labels, each retrained.

    Returns:
        One dict per trained model (cycle 0 = the cold-start labels): expert labels, pseudo-labels and how many of
        them were right, held-out accuracy and balanced accuracy, last-epoch training accuracy, cumulative seconds,
        and the Galaxy10 rows of the expert labels.
    """
    pool = split.train
    truth, pool_images, test_images = split.codes[pool], images[pool], images[split.test]
    labelled = np.zeros(len(pool), dtype=bool)
    started = time.perf_counter()
    first = choose("margin", n=args.initial, labelled=labelled, features=cold_features[pool], seed=seed,
                   min_labels=args.initial)
    if first.strategy != "typiclust":
        raise RuntimeError(f"the cold start ran {first.strategy!r}, not typiclust")
    labelled[first.indices] = True
    config = TrainConfig(epochs=args.finetune_epochs, image_size=args.ssl_size, seed=seed, threads=args.threads,
                         device=args.device)
    weights, model, results = start, None, []
    chosen, guessed = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for cycle in range(args.cycles + 1):
        if cycle:
            seen = predict(model, pool_images, device=args.device)
            picked = choose("margin", n=args.step, labelled=labelled, features=seen["features"], probs=seen["probs"],
                            seed=seed, min_labels=args.initial)
            labelled[picked.indices] = True
            chosen, guessed = pseudo_labels(seen["probs"], threshold=args.pseudo_threshold, eligible=~labelled)
        hard = np.where(labelled, truth, -1)
        hard[chosen] = guessed
        weight = labelled.astype(np.float64)
        weight[chosen] = config.pseudo_weight
        rows = np.flatnonzero(hard >= 0)
        data = TrainData(images=pool_images[rows], hard=hard[rows], hard_weight=weight[rows],
                         votes=np.zeros((len(rows), 0)), question_slices=[], classes=split.classes)
        # Each cycle starts from the previous one's checkpoint, as the product's retrain does from the active version.
        result = train(data, backbone=BACKBONE, weights=weights, config=config,
                       checkpoint_path=workdir / f"{Path(start).stem}-seed{seed}-cycle{cycle}.pt")
        model, weights = result.model, str(result.checkpoint)
        probs = predict(model, test_images, device=args.device)["probs"]
        results.append(_scores(split, probs, labels=int(labelled.sum()), pseudo=len(chosen),
                               pseudo_right=int((guessed == truth[chosen]).sum()),
                               train_accuracy=result.history[-1]["train_accuracy"],
                               seconds=time.perf_counter() - started, rows=pool[labelled]))
    return results


def _mean_std(values: list[float]) -> str:
    spread = f"{statistics.stdev(values):.3f}" if len(values) > 1 else "  -  "
    return f"{statistics.mean(values):.3f} ± {spread}"


def print_table(rows: dict[str, list[dict]]) -> None:
    header = (f"{'row':<48} {'labels':>6} {'pseudo (right)':>14} {'accuracy':>13} {'balanced acc.':>13} "
              f"{'train acc.':>10} {'seconds':>8}")
    print(header)
    print("-" * len(header))
    for name, runs in rows.items():
        labels = statistics.mean(run["labels"] for run in runs)
        pseudo = "-"
        if "pseudo" in runs[0]:
            given, right = sum(run["pseudo"] for run in runs), sum(run["pseudo_right"] for run in runs)
            pseudo = f"{given / len(runs):.1f} ({right / given:.0%})" if given else "0"
        trained = [run["train_accuracy"] for run in runs if run.get("train_accuracy") is not None]
        train_text = f"{statistics.mean(trained):.2f}" if trained else "-"
        print(f"{name:<48} {labels:>6.0f} {pseudo:>14} {_mean_std([run['accuracy'] for run in runs]):>13} "
              f"{_mean_std([run['balanced'] for run in runs]):>13} {train_text:>10} "
              f"{statistics.mean(run['seconds'] for run in runs):>8.1f}")


def accuracy(ten, everything, args) -> None:
    """Part 2: print the settings, the chance levels and one table of mean +- std over ``args.seeds``."""
    held = held_out_mask(ten.ids, fraction=HELD_OUT_FRACTION)
    classes = sorted(set(ten.labels.tolist()))
    codes = np.array([classes.index(label) for label in ten.labels])
    split = Split(np.flatnonzero(~held), np.flatnonzero(held), ten.labels, codes, classes)
    test_counts = np.bincount(codes[split.test], minlength=len(classes))
    size = args.ssl_size
    ssl_config = {"epochs": args.ssl_epochs, "image_size": size, "threads": args.threads, "device": args.device}
    print(f"Part 2: accuracy on {ten.description}, {len(classes)} classes; held_out_mask(fraction="
          f"{HELD_OUT_FRACTION}): {len(split.test)} held out, {len(split.train)} to train on; seeds {args.seeds}")
    print(f"chance on the held-out galaxies: majority class {test_counts.max() / len(split.test):.3f}, "
          f"1/{len(classes)} = {1 / len(classes):.3f}")
    settings = str(SSLConfig(**ssl_config, seed=0)).replace("seed=0", "seed=<each seed>")
    print(f"(b) SimCLR: {settings} on {len(everything)} images ({everything.description}; Galaxy10's held-out "
          f"images included, unlabelled); one pretraining per seed")
    print(f"(c) start: {args.initial} TypiClust picks; {args.cycles} cycles of +{args.step} by margin, pseudo-labels "
          f">= {args.pseudo_threshold}; each fine-tune: {args.finetune_epochs} epochs at {size} px, batch 32, "
          f"lr 1e-3, from the previous cycle's checkpoint; device {args.device}\n")

    images, failed = decode_all(ten.paths, size)
    ssl_images, failed_ssl = decode_all(everything.paths, size)
    if failed or failed_ssl:
        raise SystemExit(f"unreadable images: {(failed + failed_ssl)[:3]}")
    rows: dict[str, list[dict]] = defaultdict(list)
    name_a = {s: f"(a) random-init features + LR, {s} px" for s in (FEATURE_SIZE, size)}
    name_b = f"(b) SimCLR ({args.ssl_epochs} ep) features + LR, {size} px"
    cold, starts, losses = {}, {}, []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        for seed in args.seeds:
            for feature_size in sorted({FEATURE_SIZE, size}, reverse=True):
                started = time.perf_counter()
                vectors = features_of(build_backbone(BACKBONE, seed=seed), ten.paths, feature_size, args.device)
                rows[name_a[feature_size]].append({**head_scores(vectors, split, seed),
                                                   "seconds": time.perf_counter() - started})
                if feature_size == size:
                    cold[("random", seed)] = vectors
            started = time.perf_counter()
            result = pretrain(ssl_images, backbone=BACKBONE, config=SSLConfig(**ssl_config, seed=seed),
                              checkpoint_path=workdir / f"simclr-seed{seed}.pt")
            vectors = features_of(build_backbone(BACKBONE, result.checkpoint), ten.paths, size, args.device)
            rows[name_b].append({**head_scores(vectors, split, seed), "seconds": time.perf_counter() - started})
            cold[("ssl", seed)], starts[seed] = vectors, str(result.checkpoint)
            losses.append(f"{result.history[0]:.2f} -> {result.history[-1]:.2f}")
        print(f"SimCLR loss, first -> last epoch, per seed: {', '.join(losses)}")

        inits = ["ssl", "random"] if args.finetune_from == "both" else [args.finetune_from]
        if args.finetune_from == "auto":
            better = (statistics.mean(r["balanced"] for r in rows[name_b])
                      > statistics.mean(r["balanced"] for r in rows[name_a[size]]))
            inits = ["ssl" if better else "random"]
            print(f"--finetune-from auto: (b) {'beat' if better else 'did not beat'} (a) at {size} px on mean "
                  f"balanced accuracy (decided on the held-out galaxies), so (c) starts from {inits[0]}")
        shown = sorted({0, 1, args.cycles})
        for init in inits:
            words = "SimCLR" if init == "ssl" else "random init"
            for seed in args.seeds:
                start = starts[seed] if init == "ssl" else "random"
                runs = cycles(images, split, start=start, cold_features=cold[(init, seed)], seed=seed, args=args,
                              workdir=workdir)
                for cycle in shown:
                    rows[f"(c{cycle}) fine-tune from {words}, cycle {cycle}"].append(runs[cycle])
                rows[f"pixels PCA(20)+LR, (c{args.cycles}) {words} labels"].append(
                    pixel_scores(images, runs[-1]["rows"], split, seed))
    for seed in args.seeds:
        rows["pixels PCA(20)+LR, all training labels"].append(pixel_scores(images, split.train, split, seed))

    print_table(rows)
    print("\nlabels: expert labels used (Galaxy10 training galaxies). pseudo: mean pseudo-labels in that cycle's "
          "training set (share correct). train acc.: last epoch, on the augmented training draws (pseudo-labels "
          "included).\nseconds: (a) extraction + fit; (b) pretraining + extraction + fit; (c) cumulative from the "
          "cold start (without pretraining); pixels: fit.\n")
