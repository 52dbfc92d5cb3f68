"""Prediction averaged over the 8 D4 views (mlcore/training/galaxy_model.py predict(d4=True)): a galaxy turned or
mirrored gets the same answers, which a single view does not give."""

import numpy as np
import torch

from mlcore.training.galaxy_model import GalaxyModel, predict

SIZE = 32


def test_d4_answers_do_not_depend_on_how_the_galaxy_is_turned():
    model = GalaxyModel("resnet18", "random", n_classes=3, question_slices=[(0, 2), (2, 5)], seed=0)
    images = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    turned = torch.rot90(images, 1, dims=(-2, -1)).flip(-1)
    plain, plain_turned = predict(model, images, device="cpu"), predict(model, turned, device="cpu")
    averaged, averaged_turned = (predict(model, batch, device="cpu", d4=True) for batch in (images, turned))
    for key in ("probs", "vote_fractions", "features"):
        np.testing.assert_allclose(averaged[key], averaged_turned[key], rtol=1e-4, atol=1e-5)
        assert averaged[key].shape == plain[key].shape
    assert not np.allclose(plain["features"], plain_turned["features"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(averaged["probs"].sum(axis=1), 1.0, rtol=1e-5)
