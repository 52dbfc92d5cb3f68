"""The file that describes a training run for other processes (``mlcore.training.launch``): the training set, the
hyperparameters, the architecture and the initial weights.

It is one ``torch.save`` file of tensors and plain values. ``read_spec`` loads it with ``weights_only=True``, so
nothing in it is executed, and with ``mmap=True``, so the processes on one machine share one copy of the decoded
images in the page cache instead of each holding its own.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from mlcore.features.backbone import BACKBONES
from mlcore.training.data import TrainData
from mlcore.training.finetune import TrainConfig

SPEC_FORMAT = "galaxy-labeling/train-spec"
SPEC_VERSION = 1


class SpecError(ValueError):
    """A training spec is missing, unreadable or inconsistent; the message names the file."""


@dataclass
class TrainSpec:
    """What ``mlcore.training.finetune.train`` is called with: ``train(data, backbone=, weights=, config=)``."""

    data: TrainData
    config: TrainConfig
    backbone: str
    weights: str


def write_spec(path: str | os.PathLike, spec: TrainSpec) -> Path:
    """Write ``spec`` to ``path`` atomically (a process never reads half a file); returns the path."""
    data = spec.data
    content = {"format": SPEC_FORMAT, "version": SPEC_VERSION, "backbone": spec.backbone,
               "weights": str(spec.weights), "config": dataclasses.asdict(spec.config),
               "data": {"images": data.images.contiguous(), "hard": data.hard, "hard_weight": data.hard_weight,
                        "votes": data.votes, "question_slices": [list(pair) for pair in data.question_slices],
                        "classes": list(data.classes)}}
    destination = Path(path)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(content, out)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def read_spec(path: str | os.PathLike) -> TrainSpec:
    """Read a spec written by ``write_spec``, checked as ``TrainData`` and ``TrainConfig`` check themselves.

    Raises:
        SpecError: naming the file, when it is missing, not a training spec, of a newer version, or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such training spec file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        raise SpecError(f"{path}: unreadable training spec ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict) or content.get("format") != SPEC_FORMAT:
        raise SpecError(f"{path}: not a training spec (a {SPEC_FORMAT} file written by mlcore.training.spec)")
    if not isinstance(content.get("version"), int) or content["version"] > SPEC_VERSION:
        raise SpecError(f"{path}: training spec version {content.get('version')!r}; this code reads up to "
                        f"{SPEC_VERSION}")
    try:
        backbone = content["backbone"]
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; one of {', '.join(BACKBONES)}")
        return TrainSpec(data=TrainData(**content["data"]), config=TrainConfig(**content["config"]),
                         backbone=backbone, weights=str(content["weights"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: inconsistent training spec ({type(exc).__name__}: {exc})") from exc
