"""How much each feature set knows about morphology, on real galaxies: the table the README's figures come from.

    python bench/feature_quality.py [--data ../shared/data] [--seeds 5] [--sets random-224,random,galaxy,...]
                                    [--ceiling] [--json bench/results/feature_quality.json]

Feature sets: ``random-224`` (ResNet-18, random weights, whole cutout at 224 px: the old default), ``random``
(random weights at the galaxy backbone's 64 px and crop), ``galaxy`` (the shipped galaxy backbone),
``morphology`` (mlcore.features.morphology), ``galaxy+morphology`` (both, each block standardised), ``pixels``
(PCA of 32 x 32 grey pixels).

Tasks, on fixed splits (seed 0) of the real data in ../shared/data:
- kaggle_gz2_dev: spiral or not (3,484 labelled SDSS galaxies), 70/30 stratified; a class-balanced logistic
  regression on 20 / 50 / 200 / 1,000 / all random labels of the 70%, balanced accuracy on the 30%; mean and spread
  over ``--seeds`` draws of the labels.
- decals_rings: ring or not (470 DECaLS galaxies), the same with 20 / 50 / 200 / all.
- galaxy10_decals_samples: 10 classes, 11 images each: leave-one-out accuracy.
- galaxy_zoo_examples: the Galaxy Zoo team's example images of each answer: leave-one-out accuracy within every
  question that has at least two answers with two examples, averaged over questions (chance: 1 / answers).
Plus, with all labels: neighbour precision@5 (cosine, on the vectors as the neighbour index sees them: CNN
features as they come, measurements and pixels standardised; and on standardised vectors for every set; mean over
classes of the share of a galaxy's 5 nearest neighbours in its class, so the majority class cannot carry it),
k-means ARI against the labels (k = classes, standardised vectors), and images/s of computing each feature set from
the files (decoding included, 2 threads).
``--ceiling`` also fine-tunes the galaxy backbone on all of kaggle_gz2_dev's training split (8 epochs, 64 px) and
reports its balanced accuracy on the same 30%.

The regularisation C of every label-curve regression is chosen by 3-fold cross-validation inside the labels it is
given (none of the test galaxies); leave-one-out fits use C = 0.1 throughout. No setting is tuned on the figures
reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import feature_sets
import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split

# scikit-learn 1.9 warns on every LogisticRegressionCV fit about defaults that change in 1.10 (l1_ratios, its fitted
# attributes); neither touches the L2 fits here, and hundreds of them drowned the tables.
warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn.linear_model")

SETS = ("random-224", "random", "galaxy", "morphology", "galaxy+morphology", "pixels")
CNN_SETS = ("random-224", "random", "galaxy")
BUDGETS = {"kaggle_gz2_dev": (20, 50, 200, 1000, None), "decals_rings": (20, 50, 200, None)}
# Log-spaced; weaker regularisation than 0.3 was never chosen on these sets and takes lbfgs ten times longer.
CS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)


def load_tasks(data: Path) -> dict[str, dict]:
    """{task: {"paths": [...], "labels": np.ndarray of str, "groups": None or np.ndarray}}."""
    tasks = {}
    rows = list(csv.DictReader(open(data / "kaggle_gz2_dev" / "oracle.csv")))
    tasks["kaggle_gz2_dev"] = {"paths": [data / "kaggle_gz2_dev" / "images" / row["file"] for row in rows],
                               "labels": np.array([row["label"] for row in rows])}
    rows = list(csv.DictReader(open(data / "decals_rings" / "labels.csv")))
    tasks["decals_rings"] = {"paths": [data / "decals_rings" / row["file"] for row in rows],
                             "labels": np.array([row["label"] for row in rows])}
    rows = list(csv.DictReader(open(data / "galaxy10_decals_samples" / "labels.csv")))
    tasks["galaxy10_decals_samples"] = {"paths": [data / "galaxy10_decals_samples" / row["file"] for row in rows],
                                        "labels": np.array([row["class_name"] for row in rows])}
    rows = list(csv.DictReader(open(data / "galaxy_zoo_examples" / "labels.csv")))
    tasks["galaxy_zoo_examples"] = {
        "paths": [data / "galaxy_zoo_examples" / row["file"] for row in rows],
        "labels": np.array([f"{row['tree']}/{row['question_index']}/{row['answer_index']}" for row in rows]),
        "groups": np.array([f"{row['tree']}/{row['question_index']}" for row in rows])}
    return tasks


def regression(x_train, y_train, seed: int, *, tune: bool = True):
    """A class-balanced logistic regression whose C is picked by CV within the training labels (``tune``, when
    every class has three), else C = 0.1. Features come standardised over the whole set (no labels involved), so
    the weights ``feature_sets.concatenated`` gives its blocks survive."""
    smallest = min(np.unique(y_train, return_counts=True)[1])
    if tune and smallest >= 3:
        model = LogisticRegressionCV(Cs=list(CS), cv=StratifiedKFold(3, shuffle=True, random_state=seed),
                                     class_weight="balanced", scoring="balanced_accuracy", max_iter=3000, n_jobs=2)
    else:
        model = LogisticRegression(C=0.1, class_weight="balanced", max_iter=3000)
    model.fit(x_train, y_train)
    return model.predict


def label_curve(features, labels, budgets, seeds) -> dict:
    """{budget: [balanced accuracy per seed]} on the fixed 70/30 split."""
    indices = np.arange(len(labels))
    train, test = train_test_split(indices, test_size=0.3, stratify=labels, random_state=0)
    out = {}
    for budget in budgets:
        scores = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = train
            if budget is not None:
                chosen = rng.choice(train, budget, replace=False)
                while len(np.unique(labels[chosen])) < len(np.unique(labels)):
                    chosen = rng.choice(train, budget, replace=False)
            predict = regression(features[chosen], labels[chosen], seed)
            scores.append(balanced_accuracy_score(labels[test], predict(features[test])))
        out["all" if budget is None else str(budget)] = scores
    return out


def leave_one_out(features, labels) -> float:
    hits = []
    for index in range(len(labels)):
        keep = np.arange(len(labels)) != index
        # C fixed at 0.1: tuning it inside every one of the N fits would cost N x 15 fits for a figure that only
        # compares feature sets with each other.
        predict = regression(features[keep], labels[keep], 0, tune=False)
        hits.append(predict(features[index:index + 1])[0] == labels[index])
    return float(np.mean(hits))


def per_question(features, labels, groups) -> tuple[float, float, int]:
    """Mean leave-one-out accuracy over eligible questions, mean chance, and how many questions."""
    scores, chances = [], []
    for group in np.unique(groups):
        members = np.nonzero(groups == group)[0]
        answers, counts = np.unique(labels[members], return_counts=True)
        kept = members[np.isin(labels[members], answers[counts >= 2])]
        if len(np.unique(labels[kept])) < 2:
            continue
        scores.append(leave_one_out(features[kept], labels[kept]))
        chances.append(1 / len(np.unique(labels[kept])))
    return float(np.mean(scores)), float(np.mean(chances)), len(scores)


def precision_at_5(features, labels) -> float:
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :5]
    same = (labels[nearest] == labels[:, None]).mean(axis=1)
    return float(np.mean([same[labels == label].mean() for label in np.unique(labels)]))


def kmeans_ari(features, labels) -> float:
    clusters = KMeans(len(np.unique(labels)), n_init=10, random_state=0).fit_predict(features)
    return float(adjusted_rand_score(labels, clusters))


def compute(name: str, paths, cache: dict) -> tuple[np.ndarray, float]:
    if name == "random-224":
        return feature_sets.cnn(paths, "random", 224)
    if name == "random":
        return feature_sets.cnn_like(paths, "random", "galaxy")
    if name == "galaxy":
        return feature_sets.cnn(paths, "galaxy")
    if name == "morphology":
        return feature_sets.morphology(paths)
    if name == "pixels":
        return feature_sets.pixels(paths)
    if name == "galaxy+morphology":
        (galaxy, galaxy_rate), (morph, morph_rate) = cache["galaxy"], cache["morphology"]
        return feature_sets.concatenated(galaxy, morph), 1 / (1 / galaxy_rate + 1 / morph_rate)
    raise ValueError(f"unknown feature set {name!r}; choose from {', '.join(SETS)}")


def ceiling(task: dict, seed: int = 0, epochs: int = 8) -> float:
    """Balanced accuracy of the galaxy backbone fine-tuned on all of the training split."""
    from mlcore.features.backbone import input_crop
    from mlcore.training.finetune import TrainConfig, TrainData, train
    from mlcore.training.galaxy_model import predict

    labels = task["labels"]
    classes = sorted(np.unique(labels))
    indices = np.arange(len(labels))
    train_rows, test_rows = train_test_split(indices, test_size=0.3, stratify=labels, random_state=0)
    crop = input_crop("galaxy")
    paths = np.array(task["paths"], dtype=object)
    images = feature_sets.decoded(paths[train_rows], 64, crop)
    hard = torch.tensor([classes.index(label) for label in labels[train_rows]])
    data = TrainData(images=images, hard=hard, hard_weight=torch.ones(len(hard)), votes=torch.zeros(len(hard), 0),
                     question_slices=[], classes=classes)
    result = train(data, weights="galaxy", config=TrainConfig(epochs=epochs, image_size=64, seed=seed,
                                                              crop_fraction=crop, batch_size=64))
    probs = predict(result.model, feature_sets.decoded(paths[test_rows], 64, crop))["probs"]
    return float(balanced_accuracy_score(labels[test_rows], np.array(classes)[probs.argmax(axis=1)]))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--tasks", default="kaggle_gz2_dev,decals_rings,galaxy10_decals_samples,galaxy_zoo_examples")
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.sets.split(",")
    if "galaxy+morphology" in names:  # computed from its parts, which must come first
        names = [name for name in names if name not in ("galaxy", "morphology", "galaxy+morphology")] + \
            ["galaxy", "morphology", "galaxy+morphology"]
    tasks = {name: task for name, task in load_tasks(args.data).items() if name in args.tasks.split(",")}
    results = defaultdict(dict)
    for task_name, task in tasks.items():
        cache = {}
        for name in names:
            started = time.perf_counter()
            cache[name] = compute(name, task["paths"], cache)
            raw, rate = cache[name]
            # The concatenation standardises its blocks itself; the neighbour index compares CNN vectors as they
            # come out of the network, and measurements standardised (their units differ).
            features = raw if name == "galaxy+morphology" else feature_sets.standardised(raw)
            as_indexed = raw if name in CNN_SETS else features
            labels = task["labels"]
            entry = {"images_per_s": rate, "p_at_5": precision_at_5(as_indexed, labels),
                     "p_at_5_standardised": precision_at_5(features, labels),
                     "kmeans_ari": kmeans_ari(features, labels), "dims": int(features.shape[1])}
            if task_name in BUDGETS:
                entry["curve"] = label_curve(features, labels, BUDGETS[task_name], args.seeds)
            elif "groups" in task:
                entry["per_question"] = per_question(features, labels, task["groups"])
            else:
                entry["leave_one_out"] = leave_one_out(features, labels)
            results[task_name][name] = entry
            print(f"# {task_name} {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if args.ceiling and "kaggle_gz2_dev" in tasks:
        started = time.perf_counter()
        results["ceiling"] = {"kaggle_gz2_dev": ceiling(tasks["kaggle_gz2_dev"]),
                              "seconds": time.perf_counter() - started}
    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return results


def _mean_spread(scores) -> str:
    return f"{np.mean(scores):.3f} ± {np.std(scores):.3f}"


def print_tables(results: dict) -> None:
    for task_name, by_set in results.items():
        if task_name == "ceiling":
            continue
        first = next(iter(by_set.values()))
        if "curve" in first:
            budgets = list(first["curve"])
            print(f"\n{task_name}: balanced accuracy by labels (mean ± spread over seeds), p@5, k-means ARI, "
                  "images/s")
            print("| features | " + " | ".join(budgets) + " | p@5 | p@5 std | ARI | images/s |")
            print("|---|" + "---|" * (len(budgets) + 4))
            for name, entry in by_set.items():
                cells = [_mean_spread(entry["curve"][budget]) for budget in budgets]
                print(f"| {name} | " + " | ".join(cells) + f" | {entry['p_at_5']:.3f} | "
                      f"{entry['p_at_5_standardised']:.3f} | {entry['kmeans_ari']:.3f} | {entry['images_per_s']:.0f} |")
        else:
            print(f"\n{task_name}: leave-one-out accuracy, p@5, k-means ARI, images/s")
            print("| features | accuracy | p@5 | p@5 std | ARI | images/s |")
            print("|---|---|---|---|---|---|")
            for name, entry in by_set.items():
                if "per_question" in entry:
                    score, chance, count = entry["per_question"]
                    accuracy = f"{score:.3f} (chance {chance:.3f}, {count} questions)"
                else:
                    accuracy = f"{entry['leave_one_out']:.3f}"
                print(f"| {name} | {accuracy} | {entry['p_at_5']:.3f} | {entry['p_at_5_standardised']:.3f} | "
                      f"{entry['kmeans_ari']:.3f} | {entry['images_per_s']:.0f} |")
    if "ceiling" in results:
        print(f"\nceiling: the galaxy backbone fine-tuned on all of kaggle_gz2_dev's training split: balanced "
              f"accuracy {results['ceiling']['kaggle_gz2_dev']:.3f} ({results['ceiling']['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
