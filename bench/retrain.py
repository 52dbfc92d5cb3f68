"""Benchmark: the time of one retrain cycle, and what fine-tuning and self-supervised pretraining buy on real galaxies.

Part 1, speed (target: one cycle on 1,000 labelled images in under 5 minutes on 2 CPU cores). ResNet-18 from random
initialisation, 96 px, 5 epochs, batches of 32, ``--threads`` torch threads (default 2), timed per phase as the
product's retrain task runs them: decode every image once (``mlcore.features.augment.decode_all``), train
(``mlcore.training.finetune.train`` with ``TrainConfig(epochs=5, image_size=96, batch_size=32)``, augmentation
included), and evaluate on the held-out split (``mlcore.training.galaxy_model.predict`` +
``mlcore.training.evaluate.evaluate_predictions``). The images are the real galaxies at hand: Galaxy10 DECaLS (110), the
GZ2 examples (12) and the Galaxy Zoo example galaxies (653 distinct from ../shared/data/galaxy_zoo_examples when
present, else the 83 SDSS ones bundled in labeling/demo_data), labelled by any real class column (Galaxy10 class, GZ2
class, the question an example illustrates). The held-out split (``held_out_mask``, 20%, by galaxy, so copies of a
galaxy fall on one side) is taken first; the training galaxies are repeated to 1,000 rows (the output says so): speed
does not depend on content, and the accuracy printed there is no quality number.

Part 2, accuracy on the 110 real Galaxy10 images (10 classes) with the same fixed held-out split
(``held_out_mask(ids, fraction=0.3)``: 45 held out, 65 to train on), mean +- std over ``--seeds``:

- (a) random-init ResNet-18 features (``mlcore.features.extraction.extract``, ``make_transform`` at 96 px, and at the
  pretraining size for a like-for-like comparison with (b)) + ``ProbabilityHead`` on all 65 training labels;
- (b) SimCLR pretraining (``mlcore.training.pretrain.pretrain``) on every image at hand, Galaxy10's held-out images
  included (no labels are used), then features + ``ProbabilityHead`` on the same labels; one pretraining per seed;
- (c) retrain cycles with a simulated expert queue: ``--initial`` training galaxies picked by the cold start of
  ``mlcore.active.query.choose("margin", probs=None)`` (TypiClust on the starting backbone's features), fine-tuned with
  ``mlcore.training.finetune.train``; each later cycle asks for ``--step`` more by margin on the current model's
  probabilities, adds pseudo-labels (probability >= 0.95, weight 0.5) for the confident unlabelled training galaxies,
  and fine-tunes again, starting from the previous cycle's checkpoint as the product's retrain does (``base`` = the
  active version). Run from the SimCLR checkpoint of (b) and from random initialisation (``--finetune-from``);
- the PCA(20) + logistic-regression pixel baseline (``mlcore.training.evaluate.pixel_baseline``) with cycle 3's expert
  labels and with all 65.

The default ``--step`` is 10, not 15: 20 + 3 x 15 would label all 65 training galaxies by cycle 3, leaving nothing to
query or pseudo-label. To keep the whole run near 15 minutes on 2 shared cores, pretraining runs at 64 px for 20
epochs (~3 minutes per seed) and the fine-tuning of part 2 at 64 px for 30 epochs; ``--ssl-size``, ``--ssl-epochs``
and ``--finetune-epochs`` change that (a full default run took 930 s here: 65 s part 1, ~210 s per SimCLR seed).
The 1-minute load average is printed at the start and the end (less this run's own threads), flagged above 1.5.

    .venv/bin/python bench/retrain.py [--quick] [--speed-only | --accuracy-only] [--seeds 0 1 2] [--threads 2]
        [--device cpu|cuda] [--step 10] [--ssl-epochs 20] [--finetune-from both|ssl|random|auto]

``--quick`` is a smoke run: 64 images and 1 epoch for part 1, one seed and one epoch of everything in part 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from mlcore.features.augment import decode_all  # noqa: E402
from mlcore.features.extraction import pick_device  # noqa: E402
from mlcore.training.evaluate import evaluate_predictions, held_out_mask  # noqa: E402
from mlcore.training.finetune import TrainConfig, TrainData, predict, train  # noqa: E402

DEMO = REPO_ROOT / "labeling" / "demo_data"
SHARED_EXAMPLES = REPO_ROOT.parent / "shared" / "data" / "galaxy_zoo_examples"
TARGET_SECONDS = 300.0
# Above this 1-minute load average the 2 cores were not ours alone: the timings then overstate the cost.
BUSY_LOAD = 1.5


@dataclass
class Galaxies:
    """Distinct real galaxies: an id, an image file and a class label each."""

    ids: list[str]
    paths: list[Path]
    labels: np.ndarray
    description: str

    def __len__(self) -> int:
        return len(self.ids)


def _rows(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def galaxy10() -> Galaxies:
    folder = DEMO / "galaxy10"
    rows = _rows(folder)
    return Galaxies([row["id"] for row in rows], [folder / row["file"] for row in rows],
                    np.array([row["label"] for row in rows]), f"Galaxy10 DECaLS ({len(rows)})")


def all_galaxies() -> Galaxies:
    """Every distinct real galaxy at hand, labelled by one real class column of its source."""
    ten = galaxy10()
    ids, paths, labels = [f"g10:{i}" for i in ten.ids], list(ten.paths), [f"g10:{label}" for label in ten.labels]
    folder = DEMO / "gz2_examples"
    gz2 = _rows(folder)
    ids += [f"gz2:{row['id']}" for row in gz2]
    paths += [folder / row["file"] for row in gz2]
    labels += [f"gz2:{row['label']}" for row in gz2]
    # The 83 bundled SDSS examples are a subset of the 727 shared ones; git_blob names the galaxy (one galaxy can be
    # the example of several answers), so each is kept once, with the question its first row illustrates.
    folder = SHARED_EXAMPLES if SHARED_EXAMPLES.exists() else DEMO / "gz_examples_sloan"
    seen = set()
    for row in _rows(folder):
        if row["git_blob"] not in seen:
            seen.add(row["git_blob"])
            ids.append(f"gz:{row['git_blob']}")
            paths.append(folder / row["file"])
            labels.append(f"gz:{row['question_title']}")
    where = "../shared/data/galaxy_zoo_examples" if folder == SHARED_EXAMPLES else "labeling/demo_data"
    return Galaxies(ids, paths, np.array(labels),
                    f"Galaxy10 {len(ten)} + GZ2 examples {len(gz2)} + Galaxy Zoo examples {len(seen)} ({where})")


def load_line(when: str, own: int = 0) -> str:
    """The 1-minute load average, and a note when other processes were busy.

    At the end, the average still counts this benchmark's own ``own`` threads, so they are taken off first.
    """
    load = os.getloadavg()[0]
    mine = f", about {own} of it this benchmark's threads" if own else ""
    line = f"1-minute load average {when}: {load:.1f} on {os.cpu_count()} cores{mine}"
    if load - own > BUSY_LOAD:
        line += " -- the machine was shared: timings overstate the cost"
    return line


def speed(galaxies: Galaxies, *, count: int, epochs: int, threads: int, device: str) -> None:
    """Part 1: decode + train + evaluate, one retrain cycle on ``count`` labelled images at 96 px."""
    size, batch_size = 96, 32
    held = held_out_mask(galaxies.ids, fraction=0.2)
    pool, test = np.flatnonzero(~held), np.flatnonzero(held)
    if count < 200:  # --quick: a small held-out set too
        test = test[:max(2, count // 4)]
    rows = pool[np.arange(count) % len(pool)]
    classes = sorted(set(galaxies.labels[rows]) | set(galaxies.labels[test]))
    index = {name: i for i, name in enumerate(classes)}
    epoch_words = f"{epochs} epoch" + ("s" if epochs != 1 else "")
    repeated = f", the {len(pool)} distinct training galaxies repeated to {count} rows" if count > len(pool) else ""
    print(f"Part 1: one retrain cycle, ResNet-18 from random init, {size} px, {epoch_words}, batch {batch_size}, "
          f"{threads} torch threads, device {pick_device(device)}")
    print(f"images: {galaxies.description}; {count} training rows{repeated}; {len(test)} held out (20%), "
          f"{len(classes)} classes\n")

    started = time.perf_counter()
    train_images, failed = decode_all([galaxies.paths[r] for r in rows], size)
    test_images, failed_test = decode_all([galaxies.paths[r] for r in test], size)
    decode_s = time.perf_counter() - started
    if failed or failed_test:
        raise SystemExit(f"unreadable images: {(failed + failed_test)[:3]}")
    data = TrainData(images=train_images, hard=[index[label] for label in galaxies.labels[rows]],
                     hard_weight=np.ones(count), votes=np.zeros((count, 0)), question_slices=[], classes=classes)
    config = TrainConfig(epochs=epochs, image_size=size, batch_size=batch_size, threads=threads, device=device)
    result = train(data, config=config)
    started = time.perf_counter()
    probs = predict(result.model, test_images, device=device)["probs"]
    metrics = evaluate_predictions(galaxies.labels[test], probs, classes)
    evaluate_s = time.perf_counter() - started

    total = decode_s + result.seconds + evaluate_s
    trained = epochs * count  # every epoch draws as many rows as there are labelled galaxies
    header = f"{'phase':<44} {'images':>7} {'seconds':>8} {'images/s':>9}"
    print(header)
    print("-" * len(header))
    print(f"{'decode (decode_all, both splits)':<44} {count + len(test):>7} {decode_s:>8.1f} "
          f"{(count + len(test)) / decode_s:>9.1f}")
    print(f"{f'train ({epoch_words}, augmented, fwd + bwd)':<44} {trained:>7} {result.seconds:>8.1f} "
          f"{result.images_per_s:>9.1f}")
    print(f"{'evaluate (predict + metrics, held out)':<44} {len(test):>7} {evaluate_s:>8.1f} "
          f"{len(test) / evaluate_s:>9.1f}")
    verdict = "met" if total < TARGET_SECONDS else "NOT met"
    print(f"{'total':<44} {'':>7} {total:>8.1f}   target under {TARGET_SECONDS / 60:.0f} min on 2 CPU cores: "
          f"{verdict} (device {result.device})")
    print(f"held-out accuracy {metrics['accuracy']:.3f} (repeated images, {epoch_words}: not a quality number)\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 images, 1 epoch, 1 seed")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--speed-only", action="store_true")
    only.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--images", type=int, default=1000, help="training rows of part 1")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of part 1")
    parser.add_argument("--initial", type=int, default=20, help="part 2 (c): cold-start labels")
    parser.add_argument("--step", type=int, default=10, help="part 2 (c): labels added per cycle")
    parser.add_argument("--cycles", type=int, default=3, help="part 2 (c): cycles after the first training")
    parser.add_argument("--pseudo-threshold", type=float, default=0.95)
    parser.add_argument("--ssl-size", type=int, default=64, help="part 2 (b), (c): pretraining/fine-tuning px")
    parser.add_argument("--ssl-epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--finetune-from", choices=["both", "ssl", "random", "auto"], default="both",
                        help="auto: the SimCLR checkpoint if (b) beat (a) on mean balanced accuracy, else random")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.seeds = 64, 1, args.seeds[:1]
        args.ssl_epochs, args.finetune_epochs = 1, 1
    try:
        pick_device(args.device)  # before any work: a missing GPU should not surface after minutes on the CPU
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    lines = [load_line("at the start")]
    galaxies = all_galaxies()
    if not args.accuracy_only:
        speed(galaxies, count=args.images, epochs=args.epochs, threads=args.threads, device=args.device)
    if not args.speed_only:
        from retrain_accuracy import accuracy  # bench/ is on sys.path when run as a script

        accuracy(galaxy10(), galaxies, args)
    lines.append(load_line("at the end", own=args.threads))
    print("\n".join(lines))
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
