"""How a retrained version is judged: its held-out figures beside two baselines measured in the same run on the same
galaxies (the previous version's features with a logistic regression, and PCA(20) + logistic regression on pixels),
and the held-out galaxies it got wrong most confidently. The version's figures are those of what experts will be
shown once it is active (labeling.services.learning.classifier): its class head and a regression on its features
(``served_probabilities``), averaged with the regression on the previous version's features when the previous
version is a real one; its class head alone, and the cycle without the previous version, are kept beside them."""

import numpy as np

from labeling.models import ModelVersion
from labeling.services.learning.training_data import CycleData

# Baselines the Training page reads (labeling.selectors.training).
HEAD_ALONE = "class head alone"
WITHOUT_PREVIOUS = "without the previous version"


def _aligned(probs: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    """Columns of ``probs`` (in ``have`` order) rearranged to ``want``; a class the baseline never saw gets 0."""
    out = np.zeros((len(probs), len(want)), np.float64)
    for j, key in enumerate(want):
        if key in have:
            out[:, j] = probs[:, have.index(key)]
    return out


def _features(backbone: str, weights: str, seed: int, images) -> np.ndarray:
    import torch

    from mlcore.features.backbone import build_backbone

    model = build_backbone(backbone, weights, seed=seed).eval()
    with torch.inference_mode():
        return np.concatenate([model(images[i:i + 64]).numpy() for i in range(0, len(images), 64)])


def _regression(data: CycleData, expert_features: np.ndarray, test_features: np.ndarray) -> np.ndarray:
    """Held-out probabilities (columns ``data.classes``) of the product's probability head fitted on the features of
    the training rows with an expert label."""
    from mlcore.active.head import ProbabilityHead

    head = ProbabilityHead(seed=0).fit(expert_features, np.array(data.classes)[data.hard[data.expert_rows]])
    return _aligned(head.predict_proba(test_features), [str(c) for c in head.classes_], data.classes)


def previous_version_baseline(parent: ModelVersion | None, backbone: str, seed: int, data: CycleData,
                              train_images, test_images) -> tuple[str, np.ndarray]:
    """(name, held-out probabilities) of a logistic regression on the previous version's features, trained on the
    same expert labels; a seeded random initialisation when there is no previous version."""
    if parent is not None:
        name, arch, weights, seed = parent.name, parent.backbone, parent.weights_argument, parent.seed
    else:
        name, arch, weights = f"{backbone} random init", backbone, "random"
    return name, _regression(data, _features(arch, weights, seed, train_images[data.expert_rows]),
                             _features(arch, weights, seed, test_images))


def served_probabilities(data: CycleData, head_probs: np.ndarray, expert_features: np.ndarray,
                         test_features: np.ndarray) -> np.ndarray:
    """The version's own held-out probabilities, as the probability model on its features gives them once it is
    active (labeling.services.learning.classifier): the probability head fitted on the new features of the training
    rows with an expert label (``expert_features``, in ``data.expert_rows`` order), blended with the version's class
    head (``head_probs``, columns ``data.classes``). ``evaluate_cycle`` averages in the previous version's regression,
    as the probability model does."""
    from mlcore.training.class_head import blend

    return blend(_regression(data, expert_features, test_features), list(data.classes), head_probs,
                 list(data.classes))


def evaluate_cycle(*, version: ModelVersion, data: CycleData, probs: np.ndarray, train_images,
                   test_images, baseline_images=None, head_probs=None) -> dict:
    """The metrics a version keeps: {"held_out", "baselines", "comparison", "mistakes", "previous_version"}.

    ``probs``: the version's own held-out probabilities (``served_probabilities``). When the version has a parent,
    what it is judged by is their average with the previous version's regression
    (``mlcore.training.class_head.PARENT_ENSEMBLE_WEIGHT``), ``probs`` alone kept as the baseline
    "without the previous version"; a seeded random initialisation is never served, so without a parent ``probs``
    stand alone. ``head_probs``: its class head's alone, kept as the baseline "class head alone" when given.

    ``baseline_images``: (train, test) images at the previous version's own size and crop, when they differ from
    the new version's; default the new version's.
    """
    from mlcore.training.class_head import PARENT_ENSEMBLE_WEIGHT, blend
    from mlcore.training.evaluate import compare, confident_mistakes, evaluate_predictions, pixel_baseline

    labelled = data.expert_rows
    previous_name, previous_probs = previous_version_baseline(version.parent, version.backbone, version.seed, data,
                                                              *(baseline_images or (train_images, test_images)))
    alone = probs
    if version.parent is not None:
        classes = list(data.classes)
        probs = blend(alone, classes, previous_probs, classes, weight=PARENT_ENSEMBLE_WEIGHT)
    held_out = evaluate_predictions(data.test_labels, probs, data.classes)
    pixel_probs, pixel_classes = pixel_baseline(train_images[labelled], np.array(data.classes)[data.hard[labelled]],
                                                test_images)
    baselines = {
        "previous version": evaluate_predictions(data.test_labels, previous_probs, data.classes),
        "pixels PCA(20) + LR": evaluate_predictions(
            data.test_labels, _aligned(pixel_probs, [str(c) for c in pixel_classes], data.classes), data.classes),
    }
    if version.parent is not None:
        baselines[WITHOUT_PREVIOUS] = evaluate_predictions(data.test_labels, alone, data.classes)
    if head_probs is not None:
        baselines[HEAD_ALONE] = evaluate_predictions(data.test_labels, head_probs, data.classes)
    mistakes = [{**row, "galaxy": int(data.test_ids[row["index"]])}
                for row in confident_mistakes(data.test_labels, probs, data.classes, k=12)]
    return {"held_out": held_out, "baselines": baselines, "previous_version": previous_name,
            "comparison": compare({version.name: held_out, f"previous: {previous_name}": baselines["previous version"],
                                   **{name: figures for name, figures in baselines.items()
                                      if name != "previous version"}}),
            "mistakes": mistakes}
