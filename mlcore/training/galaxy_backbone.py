"""The recipe of the shipped galaxy backbone: image folders in, one fp16 checkpoint and a list of what went in out.

``make_galaxy_backbone`` lists every image under the folders (sorted, so the order and therefore the run depend on the
files alone), decodes them once, measures their morphology (``mlcore.features.morphology``) as label-free targets,
pretrains with galaxy views (``mlcore.training.pretrain``), and writes the backbone in half precision beside a
manifest of the images (path relative to its folder, size in bytes, sha256). On CPU the same folders, settings and
seed give the same weights; on CUDA, up to cuDNN's nondeterministic kernels.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mlcore.features.augment import decode_all
from mlcore.features.backbone import halve_checkpoint
from mlcore.features.images import IMAGENET_MEAN, IMAGENET_STD
from mlcore.features.morphology import measure_batch
from mlcore.features.views import SOURCE_CROP
from mlcore.training.pretrain import SSLConfig, SSLResult, pretrain

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Morphology is measured on a 128 px view of the central 60% of each cutout: enough pixels for r20 and the arms,
# little enough sky that the segmentation finds the galaxy and not its neighbours.
MORPHOLOGY_SIZE, MORPHOLOGY_CROP = 128, 0.6


@dataclass
class BackboneRecipe:
    """Settings of a galaxy-backbone run (the shipped one used the defaults).

    Attributes:
        epochs, batch_size, lr, image_size, seed, target_weight: as in ``SSLConfig``.
        source_size: side the images are decoded at (their central ``SOURCE_CROP``); views zoom within it.
        targets: predict the morphology measurements as well as matching views.
        method: "simclr" or "moco" (``SSLConfig.method``).
        threads, device: as in ``SSLConfig``.
    """

    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3
    image_size: int = 64
    source_size: int = 96
    seed: int = 0
    target_weight: float = 1.0
    targets: bool = True
    method: str = "simclr"
    threads: int | None = None
    device: str | None = None


def list_images(folders: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Every image file under ``folders`` as (folder, path), sorted by folder order then path.

    Raises:
        ValueError: a folder that does not exist or holds no images.
    """
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
        files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
        if not files:
            raise ValueError(f"{folder}: no .jpg/.jpeg/.png images in it")
        found += [(folder, path) for path in files]
    return found


def write_manifest(images: Sequence[tuple[Path, Path]], path: str | os.PathLike) -> None:
    """CSV of folder, path inside it, bytes and sha256 of every image that went into a backbone.

    A folder is named by its path below the folders' common parent (``kaggle_gz2_dev/images`` for
    ``.../data/kaggle_gz2_dev/images`` among other ``.../data/*`` folders), or by its own name when alone.
    """
    folders = sorted({folder for folder, _ in images})
    common = Path(os.path.commonpath(folders)) if folders else Path()
    names = {folder: folder.relative_to(common).as_posix() if folder != common else folder.name for folder in folders}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["folder", "file", "bytes", "sha256"])
        for folder, image in images:
            data = image.read_bytes()
            writer.writerow([names[folder], image.relative_to(folder).as_posix(), len(data),
                             hashlib.sha256(data).hexdigest()])


def morphology_targets(paths: Sequence[Path]) -> torch.Tensor:
    """(N, K) morphology measurements of the images (``mlcore.features.morphology``)."""
    images, failures = decode_all(paths, MORPHOLOGY_SIZE, crop_fraction=MORPHOLOGY_CROP)
    if failures:
        raise ValueError(f"unreadable images: {'; '.join(message for _, message in failures[:3])}")
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    values = []
    for start in range(0, len(images), 256):  # back to 0-255 pixels a chunk at a time, to bound memory
        chunk = images[start:start + 256].permute(0, 2, 3, 1).numpy()
        values.append(measure_batch(np.clip((chunk * std + mean) * 255, 0, 255)))
    return torch.from_numpy(np.concatenate(values))


def make_galaxy_backbone(folders: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                         recipe: BackboneRecipe | None = None, progress: Callable[[dict], None] | None = None,
                         log: Callable[[str], None] = print) -> SSLResult:
    """Pretrain a ResNet-18 on every image under ``folders`` and write it, in fp16, to ``output``.

    Beside ``output`` goes ``<output stem>.images.csv`` (``write_manifest``).

    Raises:
        ValueError: missing folders, no images, unreadable images (named).
    """
    recipe = BackboneRecipe() if recipe is None else recipe
    images = list_images(folders)
    paths = [path for _, path in images]
    log(f"{len(paths)} images from {len(folders)} folders")
    decoded, failures = decode_all(paths, recipe.source_size, crop_fraction=SOURCE_CROP)
    if failures:
        raise ValueError(f"unreadable images: {'; '.join(message for _, message in failures[:3])}")
    targets = None
    if recipe.targets:
        log("measuring morphology (the label-free targets)")
        targets = morphology_targets(paths)
    config = SSLConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                       image_size=recipe.image_size, views="galaxy", target_weight=recipe.target_weight,
                       seed=recipe.seed, method=recipe.method, threads=recipe.threads, device=recipe.device)
    output = Path(output)
    result = pretrain(decoded, config=config, targets=targets, progress=progress, checkpoint_path=output)
    halve_checkpoint(output)
    write_manifest(images, output.with_name(output.stem + ".images.csv"))
    return result
