"""Evaluation on a fixed held-out split, the pixel baseline and the comparison table (mlcore/training/evaluate.py)."""

import hashlib
import json

import numpy as np
import pytest
import torch

from mlcore.training.evaluate import (
    compare,
    confident_mistakes,
    evaluate_predictions,
    held_out_mask,
    pixel_baseline,
    stratified_check,
)

CLASSES = ["elliptical", "merger", "spiral"]


def two_kinds_of_image(count: int, size: int = 48, seed: int = 0):
    """Round smooth blobs ('elliptical') and thin bars at random quarter turns ('edge_on'), with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    images, labels = [], []
    for i in range(count):
        if i % 2:
            picture = np.exp(-(x**2 + y**2) / 0.15)
            labels.append("elliptical")
        else:
            picture = np.exp(-(x / 0.7) ** 2 - (y / 0.08) ** 2)
            picture = np.rot90(picture, rng.integers(4))
            labels.append("edge_on")
        noisy = picture[None] * rng.uniform(0.7, 1.3) + rng.normal(scale=0.2, size=(3, size, size))
        images.append(noisy.astype(np.float32))
    return torch.from_numpy(np.stack(images)), np.array(labels)


def test_the_held_out_mask_of_old_galaxies_does_not_move_when_galaxies_are_added():
    old = np.arange(1, 2001)
    mask = held_out_mask(old)

    grown = held_out_mask(np.concatenate([np.arange(5000, 9000), old[::-1]]))

    np.testing.assert_array_equal(grown[4000:][::-1], mask)


def test_the_held_out_mask_follows_the_documented_hash_so_every_process_agrees():
    # Python's own hash() is randomised per process; the rule must be blake2b of "salt:id", the same everywhere.
    ids = np.arange(200)
    expected = [int.from_bytes(hashlib.blake2b(f"held-out:{i}".encode(), digest_size=8).digest(), "big") < 0.2 * 2**64
                for i in ids]

    assert held_out_mask(ids).tolist() == expected


def test_the_held_out_share_is_near_the_fraction_on_ten_thousand_ids():
    ids = np.arange(10_000)

    assert abs(held_out_mask(ids, fraction=0.2).mean() - 0.2) < 0.015
    assert abs(held_out_mask(ids, fraction=0.5).mean() - 0.5) < 0.015
    assert not held_out_mask(ids, fraction=0.0).any() and held_out_mask(ids, fraction=1.0).all()


def test_the_held_out_mask_depends_on_the_salt_and_treats_an_integer_id_like_its_string():
    ids = np.arange(1000)

    assert (held_out_mask(ids) != held_out_mask(ids, salt="another project")).any()
    np.testing.assert_array_equal(held_out_mask(ids), held_out_mask(ids.astype(str)))


def test_a_larger_fraction_only_adds_galaxies_to_the_held_out_split():
    ids = np.arange(3000)

    small, large = held_out_mask(ids, fraction=0.1), held_out_mask(ids, fraction=0.3)

    assert (large[small]).all() and large.sum() > small.sum()


def test_it_rejects_a_fraction_outside_zero_to_one():
    with pytest.raises(ValueError, match="fraction"):
        held_out_mask(np.arange(3), fraction=1.5)


def test_the_stratified_check_names_a_class_with_nothing_held_out():
    labels = np.array(["spiral"] * 4 + ["merger"] * 2 + ["ring"])
    mask = np.array([True, False, False, False, True, True, False])

    report = stratified_check(labels, mask)

    assert report["per_class"] == {"merger": {"total": 2, "held_out": 2, "training": 0},
                                   "ring": {"total": 1, "held_out": 0, "training": 1},
                                   "spiral": {"total": 4, "held_out": 1, "training": 3}}
    assert report["without_held_out"] == ["ring"] and report["without_training"] == ["merger"]
    assert report["held_out"] == 3 and report["n"] == 7
    json.dumps(report)


def test_it_evaluates_a_hand_made_example():
    y_true = ["spiral", "spiral", "spiral", "elliptical", "elliptical", "merger"]
    probs = np.array([[0.1, 0.1, 0.8],   # spiral -> spiral
                      [0.1, 0.1, 0.8],   # spiral -> spiral
                      [0.6, 0.2, 0.2],   # spiral -> elliptical
                      [0.6, 0.2, 0.2],   # elliptical -> elliptical
                      [0.2, 0.2, 0.6],   # elliptical -> spiral
                      [0.2, 0.6, 0.2]])  # merger -> merger

    metrics = evaluate_predictions(y_true, probs, CLASSES)

    assert metrics["confusion"] == [[1, 0, 1], [0, 1, 0], [1, 0, 2]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    # spiral: precision 2/3, recall 2/3 -> F1 2/3; elliptical: precision 1/2, recall 1/2.
    assert metrics["per_class"]["spiral"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3,
                                                            "support": 3})
    assert metrics["per_class"]["elliptical"]["f1"] == pytest.approx(0.5)
    # Confidence 0.8 for 2 rows, both right; 0.6 for 4 rows, 2 right: ECE = 2/6 * 0.2 + 4/6 * 0.1.
    assert metrics["ece"] == pytest.approx(2 / 6 * 0.2 + 4 / 6 * 0.1)
    assert metrics["n"] == 6
    json.dumps(metrics)


def test_a_perfectly_calibrated_toy_has_an_ece_of_about_zero():
    # 10 rows at confidence 0.8 of which 8 are right, 5 rows at confidence 0.6 of which 3 are right.
    predicted = [0] * 10 + [1] * 5
    truth = [0] * 8 + [2] * 2 + [1] * 3 + [2] * 2
    probs = np.array([[0.8, 0.1, 0.1]] * 10 + [[0.2, 0.6, 0.2]] * 5)
    assert probs.argmax(axis=1).tolist() == predicted

    metrics = evaluate_predictions([CLASSES[t] for t in truth], probs, CLASSES)

    assert metrics["ece"] == pytest.approx(0.0, abs=1e-12)


def test_evaluation_rejects_probabilities_of_the_wrong_shape_naming_it():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        evaluate_predictions(["spiral", "merger"], np.ones((2, 2)) / 2, CLASSES)


def test_the_pixel_baseline_learns_two_obviously_different_kinds_of_image():
    images, labels = two_kinds_of_image(80)

    probs, classes = pixel_baseline(images[:40], labels[:40], images[40:])

    assert classes == ["edge_on", "elliptical"]
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (np.asarray(classes)[probs.argmax(axis=1)] == labels[40:]).mean() > 0.9


def test_the_pixel_baseline_works_with_fewer_samples_than_components_and_with_flat_rows():
    images, labels = two_kinds_of_image(12, size=32)
    rows = images.reshape(12, -1).numpy()

    probs, classes = pixel_baseline(rows[:6], labels[:6], rows[6:], n_components=20)

    assert probs.shape == (6, 2) and np.isfinite(probs).all()
    assert (np.asarray(classes)[probs.argmax(axis=1)] == labels[6:]).mean() > 0.9


def test_the_pixel_baseline_needs_two_classes():
    images, _ = two_kinds_of_image(6, size=32)

    with pytest.raises(ValueError, match="two classes"):
        pixel_baseline(images, ["spiral"] * 6, images)


def test_confident_mistakes_come_most_confident_first_and_skip_the_right_answers():
    y_true = ["spiral", "merger", "spiral", "elliptical", "merger", "spiral"]
    probs = np.array([[0.10, 0.10, 0.80],   # right
                      [0.70, 0.20, 0.10],   # merger -> elliptical at 0.7
                      [0.05, 0.90, 0.05],   # spiral -> merger at 0.9
                      [0.30, 0.20, 0.50],   # elliptical -> spiral at 0.5
                      [0.70, 0.25, 0.05],   # merger -> elliptical at 0.7, tie with row 1
                      [0.99, 0.00, 0.01]])  # spiral -> elliptical at 0.99

    mistakes = confident_mistakes(y_true, probs, CLASSES, k=4)

    assert [m["index"] for m in mistakes] == [5, 2, 1, 4]
    assert mistakes[0] == {"index": 5, "true": "spiral", "predicted": "elliptical", "probability": 0.99}
    assert len(confident_mistakes(y_true, probs, CLASSES)) == 5


def test_compare_lays_out_one_row_per_result_in_order():
    new = {"accuracy": 0.9, "balanced_accuracy": 0.8, "ece": 0.05, "n": 50}
    old = {"accuracy": 0.7, "balanced_accuracy": 0.6, "ece": 0.1, "n": 50}
    pixels = {"accuracy": 0.5, "balanced_accuracy": 0.4, "n": 50}

    rows = compare({"new version": new, "previous version": old, "pixels PCA(20)+LR": pixels})

    assert [row["name"] for row in rows] == ["new version", "previous version", "pixels PCA(20)+LR"]
    assert rows[0] == {"name": "new version", "accuracy": 0.9, "balanced_accuracy": 0.8, "ece": 0.05, "n": 50}
    assert rows[2]["ece"] is None
