"""ResNet backbones (mlcore/features/backbone.py): shapes, seeded init, our checkpoints, torchvision files, refusals,
offline."""

import socket
import threading
import time

import numpy as np
import pytest
import torch
import torchvision

from mlcore.features import backbone
from mlcore.features.backbone import (
    BACKBONES,
    WeightsError,
    WeightsUnavailable,
    build_backbone,
    read_checkpoint,
    save_backbone,
)

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's IMAGENET1K_V1 file name


def features(model: torch.nn.Module, seed: int = 0, size: int = 32) -> torch.Tensor:
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(images)


@pytest.fixture
def no_network(monkeypatch):
    """An offline machine: name resolution fails at once, as it does without a resolver."""

    def offline(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)


@pytest.fixture
def empty_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_backbone_gives_pooled_features_of_its_documented_size(name):
    model = build_backbone(name, seed=0)

    assert features(model).shape == (2, BACKBONES[name])
    assert isinstance(model.fc, torch.nn.Identity)
    assert not model.training


def test_the_same_seed_gives_the_same_random_weights_and_another_seed_does_not():
    first, again, other = (build_backbone("resnet18", seed=seed) for seed in (7, 7, 8))

    assert torch.equal(features(first), features(again))
    assert not torch.allclose(features(first), features(other))


def test_a_seeded_build_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    build_backbone("resnet18", seed=5)

    assert torch.equal(torch.rand(3), expected)


def test_an_unknown_backbone_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'; choose one of resnet18, resnet34, resnet50"):
        build_backbone("resnet19")


def test_a_saved_checkpoint_loads_back_to_identical_features(tmp_path):
    model = build_backbone("resnet18", seed=1)
    path = tmp_path / "models" / "v1" / "backbone.pth"

    save_backbone(model, path, name="resnet18", image_size=64, extra={"epochs": 3, "loss": [0.5, 0.25]})
    loaded = build_backbone("resnet18", path)

    assert torch.equal(features(loaded), features(model))
    assert read_checkpoint(path) == {"backbone": "resnet18", "feature_dim": 512, "image_size": 64,
                                     "extra": {"epochs": 3, "loss": [0.5, 0.25]}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["backbone.pth"]


def test_a_checkpoint_leaves_out_a_classifier_head(tmp_path):
    model = build_backbone("resnet18", seed=1)
    model.fc = torch.nn.Linear(512, 10)  # as during fine-tuning
    path = tmp_path / "backbone.pth"

    save_backbone(model, path, name="resnet18", image_size=64)

    state = torch.load(path, weights_only=True)["state_dict"]
    assert not [key for key in state if key.startswith("fc.")]
    model.fc = torch.nn.Identity()
    assert torch.equal(features(build_backbone("resnet18", path)), features(model))


def test_a_failed_save_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "backbone.pth"
    save_backbone(build_backbone("resnet18", seed=1), path, name="resnet18", image_size=64)
    before = path.read_bytes()

    def disk_full(obj, out):
        out.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_backbone(build_backbone("resnet18", seed=2), path, name="resnet18", image_size=64)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["backbone.pth"]


def test_save_refuses_extra_that_could_not_be_read_back(tmp_path):
    with pytest.raises(ValueError, match=r"extra\['accuracy'\] holds a float32"):
        save_backbone(build_backbone("resnet18"), tmp_path / "b.pth", name="resnet18", image_size=64,
                      extra={"accuracy": np.float32(0.9)})
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_model_of_another_architecture(tmp_path):
    with pytest.raises(ValueError, match="does not fit the resnet34 architecture: missing"):
        save_backbone(build_backbone("resnet18"), tmp_path / "b.pth", name="resnet34", image_size=64)


def test_a_plain_torchvision_state_dict_is_accepted_and_its_fc_ignored(tmp_path):
    torch.manual_seed(3)
    original = torchvision.models.resnet18()
    path = tmp_path / "resnet18-plain.pth"
    torch.save(original.state_dict(), path)

    loaded = build_backbone("resnet18", path)

    original.fc = torch.nn.Identity()
    assert torch.equal(features(loaded), features(original.eval()))


def test_a_state_dict_saved_from_data_parallel_is_accepted(tmp_path):
    original = build_backbone("resnet18", seed=4)
    path = tmp_path / "ddp.pth"
    torch.save({f"module.{key}": value for key, value in original.state_dict().items()}, path)

    assert torch.equal(features(build_backbone("resnet18", path)), features(original))


def test_a_missing_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "nowhere.pth"

    with pytest.raises(WeightsError, match=f"{path}: no such weights file"):
        build_backbone("resnet18", path)


def test_a_file_of_random_bytes_is_refused_as_corrupt(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))

    with pytest.raises(WeightsError, match="noise.pth: unreadable or corrupt weights file"):
        build_backbone("resnet18", path)


def test_a_truncated_checkpoint_is_refused_as_corrupt(tmp_path):
    path = tmp_path / "backbone.pth"
    save_backbone(build_backbone("resnet18"), path, name="resnet18", image_size=64)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(WeightsError, match="backbone.pth: unreadable or corrupt"):
        build_backbone("resnet18", path)
    with pytest.raises(WeightsError, match="backbone.pth: unreadable or corrupt"):
        read_checkpoint(path)


def test_it_refuses_a_checkpoint_for_another_backbone(tmp_path):
    path = tmp_path / "backbone.pth"
    save_backbone(build_backbone("resnet34"), path, name="resnet34", image_size=64)

    with pytest.raises(WeightsError, match="backbone.pth: a checkpoint for resnet34, not resnet18"):
        build_backbone("resnet18", path)


def test_it_refuses_a_state_dict_of_another_architecture_naming_keys(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)

    with pytest.raises(WeightsError, match=r"do not fit this architecture: unexpected \(\d+\): layer1\.0\.conv3"):
        build_backbone("resnet18", path)


def test_it_refuses_a_state_dict_with_a_missing_layer_naming_it(tmp_path):
    state = build_backbone("resnet18").state_dict()
    del state["layer4.1.bn2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)

    with pytest.raises(WeightsError, match=r"missing \(1\): layer4\.1\.bn2\.weight"):
        build_backbone("resnet18", path)


def test_it_refuses_a_state_dict_with_a_wrongly_shaped_tensor(tmp_path):
    state = build_backbone("resnet18").state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    path = tmp_path / "grey.pth"
    torch.save(state, path)

    with pytest.raises(WeightsError, match=r"wrong shape \(1\): conv1\.weight \(64, 1, 7, 7\) != \(64, 3, 7, 7\)"):
        build_backbone("resnet18", path)


def test_read_checkpoint_refuses_a_plain_state_dict(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)

    with pytest.raises(WeightsError, match="plain.pth: not a galaxy-labeling/backbone checkpoint"):
        read_checkpoint(path)


def test_a_checkpoint_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.pth"
    torch.save({"format": "galaxy-labeling/backbone", "version": 2, "backbone": "resnet18"}, path)

    with pytest.raises(WeightsError, match="checkpoint version 2; this code reads up to 1"):
        read_checkpoint(path)


def test_imagenet_offline_fails_fast_saying_what_to_fetch_and_where(empty_hub, no_network):
    started = time.perf_counter()

    with pytest.raises(WeightsUnavailable) as raised:
        build_backbone("resnet18", "imagenet")

    assert time.perf_counter() - started < 15
    message = str(raised.value)
    assert f"https://download.pytorch.org/models/{RESNET18_FILE}" in message
    assert f"--weights /path/to/{RESNET18_FILE}" in message
    assert str(empty_hub) in message
    assert not empty_hub.exists() or not list(empty_hub.iterdir())


def test_imagenet_gives_up_on_a_name_resolver_that_never_answers(empty_hub, monkeypatch):
    released = threading.Event()

    def silent(*args, **kwargs):
        released.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    monkeypatch.setattr(backbone, "DOWNLOAD_TIMEOUT_S", 0.2)
    started = time.perf_counter()
    try:
        with pytest.raises(WeightsUnavailable, match="no answer from https://download.pytorch.org"):
            build_backbone("resnet18", "imagenet")
    finally:
        released.set()

    assert time.perf_counter() - started < 5


def test_imagenet_weights_in_the_hub_cache_are_used_without_the_network(empty_hub, no_network):
    torch.manual_seed(9)
    original = torchvision.models.resnet18()
    empty_hub.mkdir(parents=True)
    torch.save(original.state_dict(), empty_hub / RESNET18_FILE)

    loaded = build_backbone("resnet18", "imagenet")

    original.fc = torch.nn.Identity()
    assert torch.equal(features(loaded), features(original.eval()))


def test_a_corrupt_file_in_the_hub_cache_is_reported_naming_it(empty_hub):
    empty_hub.mkdir(parents=True)
    (empty_hub / RESNET18_FILE).write_bytes(b"<html>captive portal</html>")

    with pytest.raises(WeightsError, match=f"{RESNET18_FILE}: unreadable or corrupt"):
        build_backbone("resnet18", "imagenet")
