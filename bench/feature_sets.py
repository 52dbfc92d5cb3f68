"""The feature sets bench/feature_quality.py compares, computed from image files the way the product does.

Each function takes a list of image paths and returns (N, d) float32 features and the images per second it ran at,
decoding included: the CNN sets go through the product's own loader and extraction (``ImageFiles``, ``make_loader``,
``extract``) with the crop their weights ask for (``input_crop``).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from mlcore.features.augment import decode_all
from mlcore.features.backbone import build_backbone, input_crop, read_checkpoint, resolve_weights
from mlcore.features.extraction import extract
from mlcore.features.images import ImageFiles, load_rgb, make_loader, make_transform
from mlcore.training.galaxy_backbone import morphology_targets

PIXEL_SIZE, PIXEL_COMPONENTS = 32, 50


def cnn(paths, weights: str, image_size: int | None = None, crop: float | None = None, *,
        seed: int = 0) -> tuple[np.ndarray, float]:
    """ResNet-18 features; image_size and crop default to the checkpoint's own (random: 224 px, whole cutout)."""
    if image_size is None:
        image_size = read_checkpoint(resolve_weights("resnet18", weights))["image_size"] \
            if weights not in ("random", "imagenet") else 224
    crop = input_crop(weights) if crop is None else crop
    model = build_backbone("resnet18", weights, seed=seed)
    files = ImageFiles([str(path) for path in paths], range(len(paths)), make_transform(image_size, crop))
    started = time.perf_counter()
    vectors = np.concatenate([batch.vectors for batch in extract(model, make_loader(files, batch_size=64),
                                                                   device="cpu")])
    return vectors.astype(np.float32), len(paths) / (time.perf_counter() - started)


def cnn_like(paths, weights: str, like: str) -> tuple[np.ndarray, float]:
    """``weights`` run at the image size and crop of the checkpoint ``like``: a comparison at equal input."""
    size = read_checkpoint(resolve_weights("resnet18", like))["image_size"]
    return cnn(paths, weights, size, input_crop(like))


def morphology(paths) -> tuple[np.ndarray, float]:
    """The morphology measurements (mlcore.features.morphology), as the galaxy backbone's recipe measures them."""
    started = time.perf_counter()
    values = morphology_targets(list(paths)).numpy()
    return values.astype(np.float32), len(paths) / (time.perf_counter() - started)


def pixels(paths) -> tuple[np.ndarray, float]:
    """PCA (50 components, fitted on the set's own images, no labels) of 32 x 32 grey pixels of the whole cutout."""
    started = time.perf_counter()
    grey = np.stack([np.asarray(load_rgb(path, min_size=PIXEL_SIZE).convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)),
                                dtype=np.float32).ravel() / 255 for path in paths])
    components = min(PIXEL_COMPONENTS, len(paths) - 1)
    values = PCA(components, random_state=0).fit_transform(grey)
    return values.astype(np.float32), len(paths) / (time.perf_counter() - started)


def standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), 1e-6)


def concatenated(*blocks: np.ndarray) -> np.ndarray:
    """Blocks side by side, each standardised and scaled by 1/sqrt(its width), so no block wins by size alone."""
    return np.hstack([standardised(block) / np.sqrt(block.shape[1]) for block in blocks]).astype(np.float32)


def decoded(paths, image_size: int, crop: float) -> torch.Tensor:
    images, failures = decode_all(list(paths), image_size, crop_fraction=crop)
    if failures:
        raise ValueError(failures[0][1])
    return images
