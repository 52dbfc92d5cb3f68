"""The galaxy backbone recipe (mlcore/training/galaxy_backbone.py) on a folder of tiny synthetic galaxies, and the
shipped checkpoint it made (mlcore/weights/)."""

import csv
import hashlib
import re

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.features.backbone import (
    GALAXY_WEIGHTS,
    WeightsError,
    build_backbone,
    input_crop,
    read_checkpoint,
    resolve_weights,
)
from mlcore.training.galaxy_backbone import BackboneRecipe, list_images, make_galaxy_backbone

TINY = BackboneRecipe(epochs=1, batch_size=4, image_size=32, source_size=48, threads=1, device="cpu")
MODEL_CARD = GALAXY_WEIGHTS.with_name("MODEL_CARD.md")


def write_galaxies(folder, count: int = 8, seed: int = 0) -> None:
    """Round and elongated blobs of random colour on dark sky, as 64 px PNGs (two in a subfolder)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((64, 64)) - 31.5
    for index in range(count):
        ratio, angle = rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        u, v = x * np.cos(angle) + y * np.sin(angle), (-x * np.sin(angle) + y * np.cos(angle)) / ratio
        light = 220 * np.exp(-(u ** 2 + v ** 2) / rng.uniform(20, 80))
        image = np.clip(10 + light[..., None] * rng.uniform(0.5, 1.0, 3) + rng.normal(0, 2, (64, 64, 3)), 0, 255)
        target = folder / ("deeper" if index < 2 else "") / f"g{index}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(target)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("galaxies")
    write_galaxies(folder)
    output = tmp_path_factory.mktemp("out") / "galaxy.pt"
    return folder, output, make_galaxy_backbone([folder], output, recipe=TINY, log=lambda message: None)


def test_images_are_listed_in_a_fixed_order_from_every_folder(tmp_path):
    for name in ("b", "a"):
        write_galaxies(tmp_path / name, count=3)
    (tmp_path / "a" / "notes.txt").write_text("not an image")

    found = list_images([tmp_path / "b", tmp_path / "a"])

    assert [(folder.name, path.relative_to(folder).as_posix()) for folder, path in found] == [
        ("b", "deeper/g0.png"), ("b", "deeper/g1.png"), ("b", "g2.png"),
        ("a", "deeper/g0.png"), ("a", "deeper/g1.png"), ("a", "g2.png")]


def test_a_missing_or_empty_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"{re.escape(str(tmp_path / 'nowhere'))}: not a folder"):
        list_images([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no .jpg/.jpeg/.png images"):
        list_images([tmp_path / "empty"])


def test_the_recipe_writes_an_fp16_backbone_with_its_crop_and_method(made):
    _, output, result = made

    content = torch.load(output, weights_only=True)
    floats = [value for value in content["state_dict"].values() if value.is_floating_point()]
    assert floats and all(value.dtype == torch.float16 for value in floats)
    metadata = read_checkpoint(output)
    assert metadata["backbone"] == "resnet18" and metadata["image_size"] == 32
    assert metadata["extra"]["method"] == "simclr+targets" and metadata["extra"]["images"] == 8
    assert input_crop(output) == 0.5
    assert len(result.history) == 1
    # The halved weights load into an ordinary float32 model.
    model = build_backbone("resnet18", output)
    assert next(model.parameters()).dtype == torch.float32
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


def test_the_manifest_lists_every_image_with_its_hash(made):
    folder, output, _ = made

    rows = list(csv.DictReader(open(output.with_name("galaxy.images.csv"))))

    assert len(rows) == 8
    first = rows[0]
    assert first["folder"] == folder.name and first["file"] == "deeper/g0.png"
    data = (folder / "deeper" / "g0.png").read_bytes()
    assert first["sha256"] == hashlib.sha256(data).hexdigest() and int(first["bytes"]) == len(data)


def test_the_same_folders_and_seed_make_the_same_weights(made, tmp_path):
    folder, output, _ = made

    make_galaxy_backbone([folder], tmp_path / "again.pt", recipe=TINY, log=lambda message: None)

    first = torch.load(output, weights_only=True)["state_dict"]
    second = torch.load(tmp_path / "again.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_the_shipped_galaxy_backbone_is_small_half_precision_and_described():
    metadata = read_checkpoint(GALAXY_WEIGHTS)

    assert GALAXY_WEIGHTS.stat().st_size <= 25 * 1024 * 1024
    assert metadata["backbone"] == "resnet18" and input_crop("galaxy") == 0.5
    state = torch.load(GALAXY_WEIGHTS, weights_only=True)["state_dict"]
    assert all(value.dtype == torch.float16 for value in state.values() if value.is_floating_point())
    # The model card names this very file: replacing the weights without a new card fails here.
    digest = hashlib.sha256(GALAXY_WEIGHTS.read_bytes()).hexdigest()
    assert digest in MODEL_CARD.read_text()
    assert GALAXY_WEIGHTS.with_name("galaxy-resnet18.images.csv").is_file()


def test_galaxy_names_the_shipped_file_for_a_resnet18_only():
    assert resolve_weights("resnet18", "galaxy") == str(GALAXY_WEIGHTS)
    assert resolve_weights("resnet18", "random") == "random"
    with pytest.raises(WeightsError, match="galaxy weights are a resnet18, not a resnet50"):
        build_backbone("resnet50", "galaxy")
