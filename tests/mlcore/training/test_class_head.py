"""A trained model's class head read back on its own (mlcore/training/class_head.py): applied to the features its
backbone extracts, it answers exactly as the whole model does on the images."""

import numpy as np
import pytest
import torch

from mlcore.training.class_head import read_class_head
from mlcore.training.galaxy_model import GalaxyModel, heads_path, predict, save_model


def saved(tmp_path, n_classes=3):
    model = GalaxyModel("resnet18", "random", n_classes=n_classes, seed=0)
    if n_classes:
        with torch.no_grad():  # a head far from its initialisation, so that a wrong read shows
            model.classifier.weight.mul_(20)
    checkpoint, _ = save_model(model, tmp_path / "backbone.pt", image_size=32,
                               extra={"classes": ["2", "5", "8"][:n_classes]})
    return model, checkpoint


def test_the_head_on_extracted_features_gives_the_models_own_probabilities(tmp_path):
    model, checkpoint = saved(tmp_path)
    images = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = predict(model, images, device="cpu")
    head = read_class_head(checkpoint)
    assert head.classes == ["2", "5", "8"]
    np.testing.assert_allclose(head.predict_proba(out["features"]), out["probs"], rtol=1e-4, atol=1e-5)
    assert out["probs"].max(axis=1).min() < 0.99 and out["probs"].argmax(axis=1).tolist() != [0] * 6


def test_a_model_without_a_class_head_gives_none(tmp_path):
    assert read_class_head(saved(tmp_path, n_classes=0)[1]) is None


def test_a_heads_file_of_another_run_is_refused_naming_it(tmp_path):
    _, checkpoint = saved(tmp_path / "a")
    _, other = saved(tmp_path / "b")
    heads_path(checkpoint).write_bytes(heads_path(other).read_bytes())
    with pytest.raises(ValueError, match="does not belong"):
        read_class_head(checkpoint)


def test_features_of_another_width_are_refused(tmp_path):
    head = read_class_head(saved(tmp_path)[1])
    with pytest.raises(ValueError, match=r"\(N, 512\)"):
        head.predict_proba(np.zeros((2, 64), np.float32))
