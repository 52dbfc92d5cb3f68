"""Model versions: the backbone, weights and image size that turn images into feature vectors, and which one is
active on each dataset.

The same request twice gives the same version, so features are never computed twice for one model. A checkpoint
file is identified by its path and SHA-256: replacing the file under the same name makes a new version.
"""

import hashlib
from pathlib import Path

from django.db import transaction

from labeling.models import Activation, Dataset, ModelVersion
from mlcore.weights import GALAXY

IMAGE_SIZES = range(32, 425)


class ModelVersionError(ValueError):
    """A model that cannot be made: unknown backbone, bad image size, a weights file that is not usable."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unique_version_name(name: str) -> str:
    """``name``, or ``name (N)`` when a version already has it (model version names are unique)."""
    taken = set(ModelVersion.objects.filter(name__startswith=name).values_list("name", flat=True))
    return name if name not in taken else f"{name} ({len(taken) + 1})"


def _galaxy_weights_file(backbone: str) -> str:
    from mlcore.features.backbone import WeightsError, resolve_weights

    try:
        return str(resolve_weights(backbone, GALAXY))
    except WeightsError as exc:
        raise ModelVersionError(str(exc)) from None


def _checked_weights_file(path: Path, backbone: str) -> dict:
    """The file's own metadata (backbone, image size; {} for a plain torchvision state_dict), once the backbone
    was built from it: that is the one check that catches every unusable file (corrupt, truncated, another
    architecture, missing layers). Imports torch lazily: only commands and workers get here."""
    from mlcore.features.backbone import WeightsError, build_backbone, read_checkpoint

    try:
        info = read_checkpoint(path)
    except WeightsError:
        info = {}  # not this project's checkpoint: perhaps a plain state_dict; building it says what is wrong
    if info.get("backbone") and info["backbone"] != backbone:
        raise ModelVersionError(f"{path.name} holds a {info['backbone']} backbone, not {backbone}")
    try:
        build_backbone(backbone, path)
    except WeightsError as exc:
        raise ModelVersionError(str(exc)) from None
    return info


@transaction.atomic
def model_version_get_or_create(*, backbone: str = "resnet18", weights: str = "galaxy", image_size: int | None = None,
                                seed: int = 0, user=None) -> ModelVersion:
    """The model version for these settings, made when missing.

    Args:
        backbone: resnet18, resnet34 or resnet50.
        weights: "galaxy" (the shipped galaxy backbone, a ResNet-18 checkpoint file), "random", "imagenet", or the
            path of a weights file (this project's checkpoint or a torchvision state_dict).
        image_size: pixels per side the images are resized to, 32-424; default 224, or the checkpoint's own size.
        seed: the seed of a random initialisation.

    Raises:
        ModelVersionError: naming what is wrong.
    """
    if backbone not in ModelVersion.Backbone.values:
        raise ModelVersionError(f"unknown backbone {backbone!r}; one of {', '.join(ModelVersion.Backbone.values)}")
    checkpoint, digest, kind = "", "", weights
    shipped = weights == GALAXY
    if shipped:
        weights = _galaxy_weights_file(backbone)
    if weights not in (ModelVersion.Weights.RANDOM, ModelVersion.Weights.IMAGENET):
        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            raise ModelVersionError(f"weights file {weights!r} does not exist (use random, imagenet or a file path)")
        info = _checked_weights_file(path, backbone)
        image_size = image_size or info.get("image_size")
        checkpoint, digest, kind = str(path), file_sha256(path), ModelVersion.Weights.FILE
    image_size = image_size or 224
    if image_size not in IMAGE_SIZES:
        raise ModelVersionError(f"image size {image_size} is outside 32-424 pixels")
    if kind != ModelVersion.Weights.RANDOM:
        seed = 0  # the seed only matters for random weights; keep one version per file or ImageNet
    found = ModelVersion.objects.filter(backbone=backbone, weights=kind, checkpoint=checkpoint,
                                        checkpoint_sha256=digest, seed=seed, image_size=image_size).first()
    if found is not None:
        return found
    label = {"random": f"random seed {seed}", "imagenet": "ImageNet"}.get(kind) or \
        (f"galaxy backbone {digest[:8]}" if shipped else f"{Path(checkpoint).name} {digest[:8]}")
    # The same file name with other contents gets a numbered name.
    name = unique_version_name(f"{backbone} · {label} · {image_size} px")
    return ModelVersion.objects.create(name=name, backbone=backbone, weights=kind, checkpoint=checkpoint,
                                       checkpoint_sha256=digest, seed=seed, image_size=image_size,
                                       status=ModelVersion.Status.READY, created_by=user)


@transaction.atomic
def model_version_activate(*, version: ModelVersion, dataset: Dataset, user=None) -> Dataset:
    """Make ``version`` the active one of ``dataset`` alone (its features feed that dataset's neighbours, clusters
    and queues) and record the switch in the dataset's activation history. Other datasets keep their own version.

    Returns:
        The dataset, with ``active_version`` set.
    """
    # The row lock makes the check and the switch one step: chains of one dataset that finish at once record one
    # switch each, in the order they leave the dataset, so the history's last row is the version left active (what
    # the rollback reads).
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if locked.active_version_id != version.pk:
        Dataset.objects.filter(pk=dataset.pk).update(active_version=version)
        Activation.objects.create(dataset=dataset, model_version=version, activated_by=user)
    dataset.active_version = version
    return dataset
