"""A trained model's class head applied to feature vectors already extracted with its backbone.

The class head of ``mlcore.training.galaxy_model.GalaxyModel`` is one linear layer on the backbone's features, so its
answers for a galaxy need no image: the vector the feature store holds for it (extracted with the same weights, size
and crop) is exactly what the head saw in training. This is how a retrain cycle's own head, which learnt end to end
with augmentation and pseudo-labels, can score a whole survey in milliseconds after activation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mlcore.features.backbone import read_checkpoint
from mlcore.training.galaxy_model import heads_path, read_heads

# Weight of a retrain cycle's class head beside a regression refitted on its features. Measured on 500 kaggle_gz2_dev
# labels, 10 seeds (bench/retrain_gain.py, docs/benchmarks.md "Retrain cycles"): head alone 0.828 ± 0.016,
# regression alone 0.823 ± 0.016, the average 0.828 ± 0.014 (the head's figure with a smaller spread). The head
# learnt end to end with augmentation and pseudo-labels; the regression carries the labels given after the cycle,
# without which the queues' probabilities would not move until the next cycle.
HEAD_WEIGHT = 0.5

# Weight of the regression on the cycle's parent's features (the version it started from) beside that average: an
# output-space ensemble of the fine-tuned model with the linear probe it started from, as WiSE-FT (Wortsman et al.
# 2022) does in weight space. The probe errs on other galaxies than the fine-tuned network. Chosen on 5 seeds of 500
# kaggle_gz2_dev labels (seeds 10-14): the cycle alone gained 2.4 points over the probe, with its parent at 1/3 2.7,
# at 1/2 3.0 with a smaller spread; confirmed on seeds 0-9 (docs/benchmarks.md "Retrain cycles").
PARENT_ENSEMBLE_WEIGHT = 0.5


@dataclass(frozen=True)
class ClassHead:
    """Class keys and the linear layer's weight (C, d) and bias (C,)."""

    classes: list[str]
    weight: np.ndarray
    bias: np.ndarray

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, C) for feature rows (N, d).

        Raises:
            ValueError: rows of another width than the head's.
        """
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.weight.shape[1]:
            raise ValueError(f"features must be (N, {self.weight.shape[1]}), got shape {features.shape}")
        logits = features @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def class_head_of(model, classes: list[str]) -> ClassHead | None:
    """The class head of a ``GalaxyModel`` in memory (its classes in index order), as ``read_class_head`` would read
    it back from the files; None when the model has none."""
    if model.classifier is None:
        return None
    return ClassHead(classes=[str(c) for c in classes],
                     weight=model.classifier.weight.detach().float().cpu().numpy(),
                     bias=model.classifier.bias.detach().float().cpu().numpy())


def read_class_head(checkpoint_path: str | os.PathLike) -> ClassHead | None:
    """The class head saved beside a trained model's backbone checkpoint; None when the model has none.

    Raises:
        ValueError: naming the file, when the heads file is missing, corrupt or of another training run.
    """
    info = read_checkpoint(checkpoint_path)  # WeightsError (a ValueError) names the file
    path = heads_path(checkpoint_path)
    content = read_heads(path)
    if content.get("pair_id") != info["extra"].get("pair_id"):
        raise ValueError(f"{path} does not belong to {checkpoint_path} (written by another training run)")
    state, classes = content.get("classifier"), [str(c) for c in content.get("classes") or []]
    if state is None or not classes:
        return None
    try:
        weight = state["weight"].float().numpy()
        bias = state["bias"].float().numpy()
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: corrupt class head ({exc})") from None
    if weight.shape != (len(classes), info["feature_dim"]) or bias.shape != (len(classes),):
        raise ValueError(f"{path}: class head of shape {weight.shape} does not match {len(classes)} classes and "
                         f"{info['feature_dim']} features")
    return ClassHead(classes=classes, weight=weight, bias=bias)


def blend(probs: np.ndarray, classes: list[str], head_probs: np.ndarray, head_classes: list[str], *,
          weight: float = HEAD_WEIGHT) -> np.ndarray:
    """A regression's probabilities (columns ``classes``) averaged with a class head's (columns ``head_classes``)
    for the same galaxies, the head counting ``weight``. A class the head never learnt keeps the regression's
    probability; the head's answer shares out the rest."""
    aligned = np.zeros_like(probs)
    known = np.array([key in head_classes for key in classes])
    for j, key in enumerate(classes):
        if known[j]:
            aligned[:, j] = head_probs[:, head_classes.index(key)]
    aligned /= np.maximum(aligned.sum(axis=1, keepdims=True), 1e-12)
    rest = probs[:, known].sum(axis=1, keepdims=True)
    return np.where(known, (1 - weight) * probs + weight * rest * aligned, probs)
