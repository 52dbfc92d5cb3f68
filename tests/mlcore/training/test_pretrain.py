"""Self-supervised SimCLR pretraining and its NT-Xent loss (mlcore/training/pretrain.py), on tiny synthetic galaxies."""

import math
import re

import pytest
import torch

from mlcore.features.backbone import build_backbone, read_checkpoint
from mlcore.training.pretrain import PretrainingCancelled, SSLConfig, nt_xent, pretrain

SIZE = 32
# One thread: the module fixture runs before conftest's per-test fixture sets it, and tiny models are fastest so.
TINY = SSLConfig(epochs=2, batch_size=8, image_size=SIZE, threads=1, device="cpu")


def synthetic_galaxies(count: int = 16, seed: int = 0) -> torch.Tensor:
    """Elliptical blobs of random size, axis ratio, orientation and colour on noisy sky, roughly normalised."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    images = []
    for _ in range(count):
        a, b = (0.15 + 0.5 * torch.rand(2, generator=generator)).tolist()
        angle = math.pi * torch.rand(1, generator=generator).item()
        u = x * math.cos(angle) + y * math.sin(angle)
        v = -x * math.sin(angle) + y * math.cos(angle)
        colour = torch.rand(3, 1, 1, generator=generator)
        sky = 0.1 * torch.randn(3, SIZE, SIZE, generator=generator)
        images.append(4 * colour * torch.exp(-(u / a) ** 2 - (v / b) ** 2) - 1 + sky)
    return torch.stack(images)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """One short run shared by the tests that only read its results."""
    reports = []
    path = tmp_path_factory.mktemp("ssl") / "backbones" / "simclr.pt"
    result = pretrain(synthetic_galaxies(), config=TINY, progress=reports.append, checkpoint_path=path)
    return result, reports


def features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(images)


def test_nt_xent_equals_a_hand_computation():
    z1 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    z2 = torch.tensor([[3.0, 1.0], [0.0, 2.0]])  # not unit length: the loss normalises
    t = 0.5
    views = [[1.0, 0.0], [1.0, 1.0], [3.0, 1.0], [0.0, 2.0]]
    views = [[c / math.hypot(*v) for c in v] for v in views]
    positive = {0: 2, 1: 3, 2: 0, 3: 1}
    total = 0.0
    for i in range(4):
        scores = {j: sum(p * q for p, q in zip(views[i], views[j], strict=True)) / t for j in range(4) if j != i}
        total += -scores[positive[i]] + math.log(sum(math.exp(s) for s in scores.values()))

    assert nt_xent(z1, z2, t).item() == pytest.approx(total / 4, rel=1e-6)


def test_nt_xent_is_lower_for_matched_pairs_than_for_shuffled_ones():
    generator = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 16, generator=generator)
    z2 = z1 + 0.1 * torch.randn(6, 16, generator=generator)

    assert nt_xent(z1, z2, 0.2) < nt_xent(z1, z2.roll(1, dims=0), 0.2)


def test_nt_xent_rejects_views_of_different_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(2, 4\)"):
        nt_xent(torch.zeros(3, 4), torch.zeros(2, 4), 0.2)


def test_pretraining_lowers_the_loss_and_reports_every_step(pretrained):
    result, reports = pretrained

    assert len(result.history) == 2 and result.history[1] < result.history[0]
    assert result.device == "cpu" and result.seconds > 0 and result.images_per_s > 0
    assert [(r["epoch"], r["batch"]) for r in reports] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert reports[-1]["epochs"] == 2 and reports[-1]["batches"] == 2 and reports[-1]["eta_s"] == 0
    assert all(set(r) == {"epoch", "epochs", "batch", "batches", "loss", "eta_s", "images_per_s"} for r in reports)


def test_the_checkpoint_is_an_ordinary_backbone_that_learned_something(pretrained):
    result, _ = pretrained
    images = synthetic_galaxies(4, seed=1)

    loaded = build_backbone("resnet18", weights=result.checkpoint)
    metadata = read_checkpoint(result.checkpoint)

    assert metadata["image_size"] == SIZE and metadata["feature_dim"] == 512
    assert metadata["extra"]["method"] == "simclr"
    assert metadata["extra"]["history"] == result.history
    assert metadata["extra"]["config"]["temperature"] == TINY.temperature
    # Pretraining started from the seeded random initialisation; its weights, hence its features, have moved.
    start = build_backbone("resnet18", seed=TINY.seed)
    assert not torch.allclose(features(loaded, images), features(start, images), atol=1e-3)


def test_pretraining_is_deterministic_under_its_seed(pretrained, tmp_path):
    result, _ = pretrained

    again = pretrain(synthetic_galaxies(), config=TINY, checkpoint_path=tmp_path / "again.pt")

    assert again.history == result.history
    first = torch.load(result.checkpoint, weights_only=True)["state_dict"]
    second = torch.load(again.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_another_seed_gives_another_run(pretrained, tmp_path):
    result, _ = pretrained
    config = SSLConfig(**{**TINY.__dict__, "epochs": 1, "seed": 1})

    other = pretrain(synthetic_galaxies(), config=config, checkpoint_path=tmp_path / "other.pt")

    assert other.history[0] != result.history[0]


def test_cancelling_raises_and_writes_nothing(tmp_path):
    calls = []

    def cancel_at_the_second_step() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(PretrainingCancelled):
        pretrain(synthetic_galaxies(), config=TINY, should_cancel=cancel_at_the_second_step,
                 checkpoint_path=tmp_path / "cancelled.pt")

    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_names_the_path_and_leaves_no_partial_file(tmp_path, monkeypatch):
    config = SSLConfig(**{**TINY.__dict__, "epochs": 1})

    def disk_full(obj, stream, *args, **kwargs):
        stream.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    destination = tmp_path / "simclr.pt"

    with pytest.raises(OSError, match=f"{re.escape(str(destination))}.*No space left"):
        pretrain(synthetic_galaxies(), config=config, checkpoint_path=destination)

    assert list(tmp_path.iterdir()) == []


def test_it_rejects_images_of_another_size_than_the_config_says(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        pretrain(synthetic_galaxies(), config=SSLConfig(image_size=64, views="d4"), checkpoint_path=tmp_path / "x.pt")
    # Galaxy views zoom into larger sources: smaller ones are refused.
    with pytest.raises(ValueError, match=r"S >= 64"):
        pretrain(synthetic_galaxies(), config=SSLConfig(image_size=64), checkpoint_path=tmp_path / "x.pt")

    assert list(tmp_path.iterdir()) == []


def test_galaxy_views_record_the_crop_extraction_should_use_and_d4_views_the_whole_cutout(pretrained, tmp_path):
    result, _ = pretrained
    config = SSLConfig(**{**TINY.__dict__, "epochs": 1, "views": "d4"})

    d4 = pretrain(synthetic_galaxies(), config=config, checkpoint_path=tmp_path / "d4.pt")

    assert read_checkpoint(result.checkpoint)["extra"]["crop_fraction"] == 0.5
    assert read_checkpoint(d4.checkpoint)["extra"]["crop_fraction"] == 1.0
    assert read_checkpoint(d4.checkpoint)["extra"]["config"]["views"] == "d4"


def test_morphology_targets_add_a_regression_that_the_run_learns(tmp_path):
    images = synthetic_galaxies()
    # A target the images really carry: each galaxy's mean brightness, and a second, noisier one.
    brightness = images.mean(dim=(1, 2, 3))
    targets = torch.stack([brightness, brightness + 0.1 * torch.randn(len(images))], dim=1)
    config = SSLConfig(**{**TINY.__dict__, "epochs": 3})

    with_targets = pretrain(images, config=config, targets=targets, checkpoint_path=tmp_path / "t.pt")
    without = pretrain(images, config=config, checkpoint_path=tmp_path / "n.pt")

    extra = read_checkpoint(with_targets.checkpoint)["extra"]
    assert extra["method"] == "simclr+targets"
    assert read_checkpoint(without.checkpoint)["extra"]["method"] == "simclr"
    # The target loss is added to NT-Xent: the combined loss starts higher and the runs differ.
    assert with_targets.history[0] > without.history[0]
    assert with_targets.history[-1] < with_targets.history[0]


@pytest.mark.parametrize("targets", [torch.zeros(15, 2), torch.zeros(16), torch.full((16, 2), float("nan"))])
def test_targets_of_the_wrong_shape_or_not_finite_are_refused(targets, tmp_path):
    with pytest.raises(ValueError, match="targets must be a finite"):
        pretrain(synthetic_galaxies(), config=TINY, targets=targets, checkpoint_path=tmp_path / "x.pt")

    assert list(tmp_path.iterdir()) == []


def test_moco_trains_with_a_queue_deterministically_and_says_so(tmp_path):
    config = SSLConfig(**{**TINY.__dict__, "epochs": 3, "method": "moco", "queue_size": 32})

    first = pretrain(synthetic_galaxies(), config=config, checkpoint_path=tmp_path / "moco.pt")
    again = pretrain(synthetic_galaxies(), config=config, checkpoint_path=tmp_path / "again.pt")

    metadata = read_checkpoint(first.checkpoint)
    assert metadata["extra"]["method"] == "moco"
    assert metadata["extra"]["config"]["queue_size"] == 32 and metadata["extra"]["config"]["momentum"] == 0.99
    # (MoCo's loss rises at first, as real keys replace the queue's random start: no claim on its trend here.)
    assert first.history == again.history and len(first.history) == 3
    start = build_backbone("resnet18", seed=TINY.seed)
    loaded = build_backbone("resnet18", weights=first.checkpoint)
    assert not torch.allclose(features(loaded, synthetic_galaxies(4, seed=1)),
                              features(start, synthetic_galaxies(4, seed=1)), atol=1e-3)


def test_the_moco_key_encoder_follows_by_momentum_and_the_queue_wraps():
    from mlcore.training.moco import MomentumContrast

    model, projection = torch.nn.Linear(4, 4), torch.nn.Sequential(torch.nn.Linear(4, 3))
    moco = MomentumContrast(model, projection, queue_size=5, momentum=0.9, temperature=0.2,
                            generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    before = moco.key_model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    keys = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)

    moco.follow(keys)
    moco.follow(keys[:3])

    # Two steps towards a weight 1 higher: 1 - 0.9 ** 2 of the way.
    assert torch.allclose(moco.key_model.weight, before + 0.19, atol=1e-6)
    assert moco.pointer == 2
    assert torch.equal(moco.queue[:2], keys[1:3]) and torch.equal(moco.queue[4], keys[0])
    # A query equal to its key beats one orthogonal to it.
    assert moco.loss(keys[:1] * 5, keys[:1]) < moco.loss(torch.tensor([[0.0, 0.0, 0.0]]) + keys[1:2], keys[:1])


@pytest.mark.parametrize("change, message", [({"method": "byol"}, "config.method"),
                                             ({"method": "moco", "momentum": 1.0}, "config.momentum"),
                                             ({"method": "moco", "queue_size": 0}, "config.queue_size")])
def test_bad_moco_settings_are_refused(change, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        pretrain(synthetic_galaxies(), config=SSLConfig(**{**TINY.__dict__, **change}),
                 checkpoint_path=tmp_path / "x.pt")
