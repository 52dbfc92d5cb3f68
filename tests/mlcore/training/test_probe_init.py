"""The probe-initialised class head (mlcore/training/probe_init.py, LP-FT): the head copied into the model gives the
probe's own probabilities, classes without labels start unpredicted, and a fine-tuning run starts from it."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from mlcore.training.finetune import TrainConfig, TrainData, train
from mlcore.training.galaxy_model import GalaxyModel
from mlcore.training.probe_init import PROBE_C, frozen_features, init_class_head, probe_weights
from tests.mlcore.training.test_finetune import CLASSES, SIZE, disks


def _blobs(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.arange(60) % n_classes
    centres = rng.normal(0, 3, (n_classes, 5))
    # Columns on different scales and offsets: the folding of the standardisation must get both right.
    return (centres[classes] + rng.normal(0, 1, (60, 5))) * [1, 10, 0.1, 5, 1] + [0, 100, -3, 7, 1], classes


@pytest.mark.parametrize("n_classes", [2, 3])
def test_folded_head_gives_the_regressions_probabilities(n_classes):
    features, classes = _blobs(n_classes)
    weight, bias = probe_weights(features, classes, np.ones(len(classes)), n_classes, seed=0)
    logits = torch.as_tensor(features @ weight.T + bias)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    reference = LogisticRegression(C=PROBE_C, max_iter=2000).fit((features - mean) / scale, classes)
    expected = reference.predict_proba((features - mean) / scale)
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), expected, atol=1e-6)


def test_class_without_labels_starts_unpredicted():
    features, classes = _blobs(2)
    weight, bias = probe_weights(features, classes, np.ones(len(classes)), 3, seed=0)
    probabilities = torch.softmax(torch.as_tensor(features @ weight.T + bias), dim=1).numpy()
    assert probabilities[:, 2].max() < 1e-3
    assert (probabilities[:, :2].argmax(axis=1) == classes).mean() > 0.9


def test_init_copies_a_probe_that_separates_the_training_images():
    images, labels = disks(16)
    model = GalaxyModel("resnet18", "random", n_classes=2, seed=0)
    before = model.classifier.weight.detach().clone()
    weights = torch.ones(16)
    weights[:2] = 0  # unlabelled rows take no part in the probe
    init_class_head(model, images, labels, weights, seed=0)
    assert not torch.equal(before, model.classifier.weight)
    logits = model.classifier(torch.as_tensor(frozen_features(model, images), dtype=torch.float32))
    assert (logits.argmax(dim=1) == labels).float().mean() == 1.0
    assert model.training, "the model's mode is restored"


def test_training_from_the_probe_starts_where_the_probe_is(tmp_path):
    images, labels = disks(16)
    data = TrainData(images=images, hard=labels, hard_weight=torch.ones(16), votes=torch.zeros(16, 0),
                     question_slices=[], classes=CLASSES)
    settings = dict(image_size=SIZE, batch_size=8, seed=0, threads=1, device="cpu", augment=False)
    # A backbone that has seen these images (its BatchNorm statistics fit them), as a pretrained one would have.
    train(data, config=TrainConfig(epochs=3, **settings), checkpoint_path=tmp_path / "start.pt")
    runs = {init: train(data, weights=str(tmp_path / "start.pt"),
                        config=TrainConfig(epochs=1, lr=1e-5, probe_init=init, **settings))
            for init in (False, True)}
    # The first epoch's accuracy is measured on the batches as they are trained: from the probe it starts right.
    assert runs[True].history[0]["train_accuracy"] == 1.0
    assert runs[True].history[0]["hard_loss"] < 0.5 * runs[False].history[0]["hard_loss"]
