"""Fine-tuning (mlcore/training/finetune.py, data.py, galaxy_model.py): it learns, it repeats under a seed, it
stops when asked, it reports progress, its files load both ways, a full disk leaves nothing behind, bad data is
refused."""

import errno
import shutil
import time

import numpy as np
import pytest
import torch

from mlcore.features.backbone import build_backbone, read_checkpoint
from mlcore.training.data import epoch_batches, sampling_weights
from mlcore.training.finetune import (
    CheckpointError,
    TrainConfig,
    TrainData,
    TrainingCancelled,
    heads_path,
    load_model,
    predict,
    pseudo_labels,
    train,
)
from mlcore.training.galaxy_model import save_model

SIZE = 32
CLASSES = ["dark", "disk"]


def disks(count: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised "images": faint noise on dark sky, and every other one with a bright central disk (class 1)."""
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    disk = (((yy - SIZE / 2 + 0.5) ** 2 + (xx - SIZE / 2 + 0.5) ** 2).sqrt() < SIZE / 4).float()
    labels = torch.arange(count) % 2
    images = 0.2 * torch.randn(count, 3, SIZE, SIZE, generator=generator) - 1.0
    return images + 3.0 * labels[:, None, None, None] * disk, labels


def labelled_data(count: int = 16, **changes) -> TrainData:
    images, labels = disks(count)
    fields = {"images": images, "hard": labels, "hard_weight": torch.ones(count), "votes": torch.zeros(count, 0),
              "question_slices": [], "classes": CLASSES}
    return TrainData(**{**fields, **changes})


def config(**changes) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 8, "image_size": SIZE, "threads": 1, "device": "cpu",
                          **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    result = train(labelled_data(), config=config(epochs=4), checkpoint_path=folder / "model.pt")
    return result


def test_training_on_bright_disks_against_dark_sky_learns_to_tell_them_apart(trained):
    images, labels = disks()

    probs = predict(trained.model, images, device="cpu")["probs"]

    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    assert trained.history[-1]["train_accuracy"] >= 0.9
    assert (probs.argmax(axis=1) == labels.numpy()).mean() >= 0.9


def test_the_same_seed_gives_identical_weights_and_another_seed_different_ones():
    torch.set_num_threads(2)  # runs take 1 (config): more would crawl on 2 busy cores
    try:
        runs = [train(labelled_data(), config=config(seed=seed)).model.state_dict() for seed in (5, 5, 6)]
        threads_after = torch.get_num_threads()
    finally:
        torch.set_num_threads(1)

    assert all(torch.equal(runs[0][key], runs[1][key]) for key in runs[0])
    assert not all(torch.equal(runs[0][key], runs[2][key]) for key in runs[0])
    # The run's thread count and deterministic mode do not leak into the caller's process.
    assert threads_after == 2
    assert not torch.are_deterministic_algorithms_enabled()


def test_cancelling_between_batches_raises_and_writes_no_file(tmp_path):
    asked = []

    def cancel_on_second_batch() -> bool:
        asked.append(True)
        return len(asked) == 2

    with pytest.raises(TrainingCancelled, match="batch 2"):
        train(labelled_data(), config=config(), should_cancel=cancel_on_second_batch,
              checkpoint_path=tmp_path / "model.pt")

    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_after_every_batch_with_a_sane_eta():
    reports, clock = [], []
    started = time.perf_counter()

    def record(report: dict) -> None:
        reports.append(report)
        clock.append(time.perf_counter() - started)

    train(labelled_data(), config=config(epochs=2), progress=record)

    assert [(r["epoch"], r["batch"]) for r in reports] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["epochs"] == 2 and r["batches"] == 2 and np.isfinite(r["loss"]) for r in reports)
    assert all(r["images_per_s"] > 0 for r in reports)
    # After the first of four batches the ETA is three batches at the pace so far: positive, and no more than
    # three times what the first batch took, model building included.
    assert 0 < reports[0]["eta_s"] <= 3 * clock[0]
    assert reports[-1]["eta_s"] == 0


def test_the_checkpoint_loads_as_a_backbone_and_round_trips_through_load_model(trained):
    images, _ = disks()
    expected = predict(trained.model, images, device="cpu")

    backbone = build_backbone("resnet18", weights=trained.checkpoint)
    with torch.inference_mode():
        features = backbone(images).numpy()
    model, info = load_model(trained.checkpoint)
    again = predict(model, images, device="cpu")

    assert trained.heads == heads_path(trained.checkpoint) and trained.heads.is_file()
    np.testing.assert_allclose(features, expected["features"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(again["probs"], expected["probs"])
    assert info["classes"] == CLASSES and info["image_size"] == SIZE and len(info["history"]) == 4
    assert read_checkpoint(trained.checkpoint)["extra"]["config"]["epochs"] == 4


def failing_torch_save(monkeypatch, fail_on_call: int) -> None:
    real_save, calls = torch.save, []

    def save(*args, **kwargs):
        calls.append(True)
        if len(calls) == fail_on_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_while_writing_the_backbone_gives_checkpoint_error_and_leaves_no_file(tmp_path, monkeypatch):
    failing_torch_save(monkeypatch, fail_on_call=2)  # the heads (first) are written, the backbone fails

    with pytest.raises(CheckpointError, match="model.pt.*No space left"):
        train(labelled_data(), config=config(), checkpoint_path=tmp_path / "model.pt")

    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_writing_the_heads_leaves_the_previous_model_untouched(trained, tmp_path, monkeypatch):
    shutil.copy(trained.checkpoint, tmp_path / "model.pt")
    shutil.copy(trained.heads, heads_path(tmp_path / "model.pt"))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    failing_torch_save(monkeypatch, fail_on_call=1)

    with pytest.raises(CheckpointError, match="heads"):
        save_model(trained.model, tmp_path / "model.pt", image_size=SIZE, extra={"classes": CLASSES})

    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_load_model_refuses_missing_corrupt_and_foreign_heads_naming_the_file(trained, tmp_path):
    checkpoint = tmp_path / "model.pt"
    shutil.copy(trained.checkpoint, checkpoint)
    with pytest.raises(ValueError, match="model.pt.heads.pt"):
        load_model(checkpoint)

    heads_path(checkpoint).write_bytes(b"\x00 not a torch file")
    with pytest.raises(ValueError, match="model.pt.heads.pt: unreadable"):
        load_model(checkpoint)

    foreign = torch.load(trained.heads, weights_only=True)
    torch.save({**foreign, "pair_id": "another run"}, heads_path(checkpoint))
    with pytest.raises(ValueError, match="does not belong"):
        load_model(checkpoint)


def test_training_on_votes_alone_learns_the_vote_fractions():
    images, labels = disks()
    disk = labels.bool()
    # Question 1 (smooth / featured) is reached by all 40 volunteers; question 2 by the 10 who said featured.
    votes = torch.zeros(16, 5)
    votes[disk, :2] = torch.tensor([36.0, 4.0])
    votes[~disk, :2] = torch.tensor([4.0, 36.0])
    votes[:, 2:] = torch.tensor([5.0, 3.0, 2.0])
    data = TrainData(images=images, hard=torch.full((16,), -1), hard_weight=torch.zeros(16), votes=votes,
                     question_slices=[(0, 2), (2, 5)], classes=[])

    result = train(data, config=config(epochs=4, soft_vote_weight=1.0))
    fractions = predict(result.model, images, device="cpu")["vote_fractions"]

    assert fractions.shape == (16, 5) and result.history[-1]["vote_loss"] < result.history[0]["vote_loss"]
    assert fractions[disk.numpy(), 0].mean() > fractions[~disk.numpy(), 0].mean() + 0.2
    np.testing.assert_allclose(fractions[:, 2:].sum(axis=1), 1.0, rtol=1e-5)


def test_balanced_sampling_draws_a_rare_class_as_often_as_a_common_one():
    hard = torch.tensor([0] * 9 + [1] * 3 + [-1] * 5)
    votes = torch.zeros(17, 2)
    votes[12:16] = 3.0  # four galaxies with votes only; the last one has nothing at all
    data = TrainData(images=torch.zeros(17, 3, SIZE, SIZE), hard=hard, hard_weight=torch.ones(17), votes=votes,
                     question_slices=[(0, 2)], classes=CLASSES)

    weights = sampling_weights(data, balance=True)
    generator = torch.Generator().manual_seed(0)
    drawn = torch.cat([torch.cat(epoch_batches(weights, 5, generator, balance=True)) for _ in range(300)])

    np.testing.assert_allclose(weights[:9].sum(), weights[9:12].sum())
    assert weights[:12].sum() == pytest.approx(12) and torch.all(weights[12:16] == 1) and weights[16] == 0
    common, rare = int((drawn < 9).sum()), int(((drawn >= 9) & (drawn < 12)).sum())
    assert abs(common - rare) / (common + rare) < 0.05 and 16 not in drawn.tolist()
    sizes = [len(rows) for rows in epoch_batches(weights, 5, generator, balance=True)]
    assert sizes == [4, 4, 4, 4] and torch.all(sampling_weights(data, balance=False)[:16] == 1)


def test_pseudo_labels_are_the_confident_eligible_galaxies():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.02, 0.98]])
    eligible = np.array([True, True, True, False])

    indices, classes = pseudo_labels(probs, threshold=0.9, eligible=eligible)

    assert indices.tolist() == [0, 2] and classes.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"\(4,\)"):
        pseudo_labels(probs, threshold=0.9, eligible=eligible[:3])


@pytest.mark.parametrize(("changes", "message"), [
    ({"hard": torch.zeros(16, dtype=torch.int64)}, "at least two classes with labels"),
    ({"hard": torch.zeros(15, dtype=torch.int64)}, r"hard must have shape \(16,\)"),
    ({"votes": torch.zeros(15, 2)}, r"votes must be \(16, T\)"),
    ({"votes": torch.zeros(16, 3), "question_slices": [(0, 2)]}, "without gaps"),
    ({"classes": [], "hard": torch.full((16,), -1)}, "nothing to train on"),
    ({"hard_weight": -torch.ones(16)}, "non-negative"),
])
def test_inconsistent_training_data_is_refused_clearly(changes, message):
    with pytest.raises(ValueError, match=message):
        labelled_data(**changes)


def test_images_of_another_size_than_configured_are_refused():
    with pytest.raises(ValueError, match="32 px but config.image_size is 64"):
        train(labelled_data(), config=config(image_size=64))
