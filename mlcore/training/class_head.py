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
