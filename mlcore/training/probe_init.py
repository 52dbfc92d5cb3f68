"""Start the class head from a linear probe on the starting features (LP-FT, Kumar et al. 2022).

A randomly initialised class head sends large, meaningless gradients into a pretrained backbone during the first
steps of fine-tuning, which distorts the features before the head has learnt anything; with a few hundred labels the
backbone never recovers what it lost. Fitting a logistic regression on the frozen features first and copying it into
the head means fine-tuning starts from the probe's answer and only has to improve on it.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

# The probe's regularisation: the product's probability head uses C = 1 on standardised features too.
PROBE_C = 1.0


@torch.no_grad()
def frozen_features(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """The backbone's features of ``images`` in eval mode (BatchNorm running statistics), as float64."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        parts = [model.backbone(images[i:i + batch_size].to(device).contiguous(memory_format=torch.channels_last))
                 for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts).double().cpu().numpy()


def probe_weights(features: np.ndarray, classes: np.ndarray, sample_weight: np.ndarray, n_classes: int,
                  *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced logistic regression on standardised features, folded back to raw features.

    Returns the (n_classes, d) weight and (n_classes,) bias of a linear layer on the raw features whose logits give
    the regression's probabilities. Classes without a labelled row get a weight of 0 and a bias far below the others,
    so the head starts by never predicting them.
    """
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale < 1e-12] = 1.0
    present = np.unique(classes)
    counts = np.array([sample_weight[classes == c].sum() for c in present])
    # "balanced" weights as sample weights, so expert and pseudo-label weights still count.
    balance = (sample_weight.sum() / (len(present) * counts))[np.searchsorted(present, classes)]
    regression = LogisticRegression(C=PROBE_C, max_iter=2000, random_state=seed)
    regression.fit((features - mean) / scale, classes, sample_weight=sample_weight * balance)
    coef, intercept = regression.coef_, regression.intercept_
    if len(present) == 2:
        # A binary regression has one score z for the second class: logits (-z/2, z/2) give the same softmax.
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_classes, features.shape[1]))
    bias = np.full(n_classes, float(intercept.min()) - 10.0)
    weight[present] = coef / scale
    bias[present] = intercept - (coef / scale) @ mean
    return weight, bias


@torch.no_grad()
def init_class_head(model: torch.nn.Module, images: torch.Tensor, hard: torch.Tensor, hard_weight: torch.Tensor,
                    *, seed: int) -> None:
    """Copy a probe fitted on the labelled ``images`` (``hard`` >= 0 with weight > 0) into ``model.classifier``."""
    labelled = (hard >= 0) & (hard_weight > 0)
    classes = hard[labelled].numpy()
    if len(np.unique(classes)) < 2:
        return  # nothing to fit: the head keeps its seeded initialisation
    features = frozen_features(model, images[labelled])
    weight, bias = probe_weights(features, classes, hard_weight[labelled].double().numpy(),
                                 model.classifier.out_features, seed=seed)
    model.classifier.weight.copy_(torch.as_tensor(weight, dtype=model.classifier.weight.dtype))
    model.classifier.bias.copy_(torch.as_tensor(bias, dtype=model.classifier.bias.dtype))
