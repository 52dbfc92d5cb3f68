"""ResNet backbones without their classifier: build one from random, ImageNet or file weights; save and inspect ours.

A backbone maps a normalised image batch (B, 3, S, S) to pooled features (B, d), d = ``BACKBONES[name]``: it is the
torchvision ResNet with ``fc`` replaced by ``torch.nn.Identity()``.

Weights come from one of four places:

- ``"galaxy"``: the galaxy backbone this project ships (``GALAXY_WEIGHTS``, a ResNet-18 pretrained on real SDSS and
  DECaLS galaxies; its model card lies beside it), the default wherever features are made.
- ``"random"``: torchvision's own initialisation, reproducible under ``seed``.
- ``"imagenet"``: torchvision's IMAGENET1K_V1 file, from torch's hub cache, else downloaded with short timeouts.
  Offline this fails within seconds with ``WeightsUnavailable`` saying which file to fetch and where to put it.
- a file: either a plain torchvision state_dict (``fc.*`` keys are ignored), or this project's checkpoint, a dict::

      {"format": "galaxy-labeling/backbone", "version": 1, "backbone": "resnet18", "feature_dim": 512,
       "image_size": 224, "state_dict": {...}, "extra": {...}}

  ``extra["crop_fraction"]``, when present, is the centred crop (a fraction of the cutout's side) the weights were
  trained on; ``input_crop`` reads it so that extraction shows the network what it learnt from.

Files are read with ``torch.load(weights_only=True)``, so a weights file cannot run code.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import urllib.request
from pathlib import Path

import torch
import torchvision

from mlcore.weights import GALAXY, GALAXY_WEIGHTS

BACKBONES: dict[str, int] = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
GALAXY_BACKBONE = "resnet18"

CHECKPOINT_FORMAT = "galaxy-labeling/backbone"
CHECKPOINT_VERSION = 1
# Connect/read timeout for an ImageNet download; the whole attempt to get an answer is bounded by twice this, so an
# offline machine (even one whose name resolver never answers) gets WeightsUnavailable within seconds.
DOWNLOAD_TIMEOUT_S = 5.0

# Keys a state_dict may lack without harm: BatchNorm's batch counter only matters in training with momentum=None,
# and files saved by old PyTorch versions (some torchvision downloads among them) do not have it.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


class WeightsError(ValueError):
    """A weights file that is missing, unreadable, corrupt, or made for another architecture."""


class WeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but are neither in torch's hub cache nor downloadable."""


def build_backbone(name: str, weights: str | os.PathLike = "random", *, seed: int | None = None) -> torch.nn.Module:
    """Build a ResNet feature extractor in eval mode.

    Args:
        name: one of ``BACKBONES``.
        weights: ``"galaxy"``, ``"random"``, ``"imagenet"``, or the path of a weights file (plain torchvision
            state_dict or this project's checkpoint, see the module docstring).
        seed: makes ``"random"`` initialisation reproducible; the global torch RNG is left as it was.

    Returns:
        The model; ``model(x)`` maps (B, 3, S, S) to (B, BACKBONES[name]).

    Raises:
        ValueError: unknown backbone name.
        WeightsError: a weights file that is missing, corrupt, or for another architecture.
        WeightsUnavailable: ``"imagenet"`` offline with nothing in the hub cache.
    """
    _check_name(name)
    weights = resolve_weights(name, weights)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = torchvision.models.get_model(name, weights=None)
    model.fc = torch.nn.Identity()
    if weights != "random":
        path = imagenet_weights_file(name) if weights == "imagenet" else Path(weights)
        _load_into(model, _state_dict_for(name, _load_file(path), path), path)
    return model.eval()


def resolve_weights(name: str, weights: str | os.PathLike) -> str | os.PathLike:
    """``weights`` with ``"galaxy"`` replaced by the shipped file's path; anything else unchanged.

    Raises:
        WeightsError: ``"galaxy"`` for another architecture than ResNet-18, or the shipped file is missing.
    """
    if weights != GALAXY:
        return weights
    if name != GALAXY_BACKBONE:
        raise WeightsError(f"the galaxy weights are a {GALAXY_BACKBONE}, not a {name}; use --backbone "
                           f"{GALAXY_BACKBONE}, or random or a weights file for {name}")
    if not GALAXY_WEIGHTS.is_file():
        raise WeightsError(f"the galaxy backbone {GALAXY_WEIGHTS} is missing from this installation; its model card "
                           "beside it says how to make it again (manage.py pretrain --folder ...)")
    return os.fspath(GALAXY_WEIGHTS)


def input_crop(weights: str | os.PathLike) -> float:
    """The centred crop, as a fraction of a cutout's side, that images should get before going to these weights.

    1.0 (the whole cutout) for random and ImageNet weights and for files that do not say; a project checkpoint's
    ``extra["crop_fraction"]`` otherwise (the galaxy backbone learnt from the central half of each cutout).

    Raises:
        WeightsError: an unreadable weights file.
    """
    if weights in ("random", "imagenet"):
        return 1.0
    path = Path(resolve_weights(GALAXY_BACKBONE, weights)) if weights == GALAXY else Path(weights)
    content = _load_file(path)
    if not _is_checkpoint(content):
        return 1.0
    crop = content.get("extra", {}).get("crop_fraction", 1.0)
    if isinstance(crop, bool) or not isinstance(crop, int | float) or not 0 < crop <= 1:
        raise WeightsError(f"{path}: bad crop_fraction {crop!r} in the checkpoint's extra")
    return float(crop)


def save_backbone(model: torch.nn.Module, path: str | os.PathLike, *, name: str, image_size: int,
                  extra: dict | None = None) -> None:
    """Write ``model``'s weights as this project's checkpoint, atomically (a reader never sees half a file).

    Args:
        model: a ResNet of architecture ``name``; its ``fc`` layer (a classifier head, if any) is not saved.
        path: destination; missing parent folders are created.
        name: the architecture, one of ``BACKBONES``.
        image_size: the input size the weights were trained for, kept for the extraction that follows.
        extra: plain metadata (str, int, float, bool, None, and lists/tuples/dicts of them), e.g. training metrics.

    Raises:
        ValueError: unknown name, a bad image_size, extra that is not plain data, or a model whose weights do not
            fit the ``name`` architecture.
    """
    _check_name(name)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    extra = {} if extra is None else extra
    if not isinstance(extra, dict):
        raise ValueError(f"extra must be a dict, got {type(extra).__name__}")
    _check_plain(extra, "extra")
    state = {key.removeprefix("module."): tensor.detach().to("cpu") for key, tensor in model.state_dict().items()}
    state = {key: tensor for key, tensor in state.items() if not key.startswith("fc.")}
    problems = _mismatches(_reference_shapes(name), state)
    if problems:
        raise ValueError(f"model does not fit the {name} architecture: {problems}")
    checkpoint = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "backbone": name,
                  "feature_dim": BACKBONES[name], "image_size": image_size, "state_dict": state, "extra": extra}
    _write_atomically(checkpoint, Path(path))


def _write_atomically(checkpoint: dict, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(checkpoint, out)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private (0600); a checkpoint is as readable as any file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def halve_checkpoint(path: str | os.PathLike) -> None:
    """Rewrite a project checkpoint with its floating-point weights in fp16, atomically: half the bytes on disk.

    Loading converts them back to the model's float32 (``load_state_dict`` copies across dtypes); features from the
    halved weights differ from the float32 ones by about 1e-3 relative, far below any difference between galaxies.

    Raises:
        WeightsError: not a readable project checkpoint.
    """
    path = Path(path)
    content = _load_file(path)
    if not _is_checkpoint(content):
        raise WeightsError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    _check_checkpoint(content, path)
    content["state_dict"] = {key: value.half() if value.is_floating_point() else value
                             for key, value in content["state_dict"].items()}
    _write_atomically(content, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a project checkpoint's metadata without building a model.

    Returns:
        ``{"backbone": str, "feature_dim": int, "image_size": int, "extra": dict}``.

    Raises:
        WeightsError: missing or corrupt file, or a file that is not a project checkpoint (a plain state_dict).
    """
    path = Path(path)
    content = _load_file(path)
    if not _is_checkpoint(content):
        raise WeightsError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint (a plain state_dict has no metadata)")
    _check_checkpoint(content, path)
    return {key: content[key] for key in ("backbone", "feature_dim", "image_size", "extra")}


def imagenet_weights_file(name: str) -> Path:
    """The path of torchvision's ImageNet weights for ``name``: from torch's hub cache, else downloaded there.

    Raises:
        ValueError: unknown backbone name.
        WeightsUnavailable: not cached and the download failed (offline); the message says what to fetch.
    """
    _check_name(name)
    url = torchvision.models.get_model_weights(name).IMAGENET1K_V1.url
    file_name = url.rsplit("/", 1)[-1]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    cached = folder / file_name
    if cached.is_file():
        return cached
    try:
        _download(url, cached)
    except OSError as exc:  # URLError, socket timeouts and disk errors are all OSErrors
        raise WeightsUnavailable(
            f"ImageNet weights for {name} are not in torch's hub cache and could not be downloaded ({exc}). "
            f"On a machine with internet, fetch {url} ({file_name}), then either give it as "
            f"--weights /path/to/{file_name} or put it in the hub cache folder {folder}"
        ) from exc
    return cached


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def _load_file(path: Path) -> object:
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file (weights are 'random', 'imagenet' or a file)")
    if not path.is_file():
        raise WeightsError(f"{path}: not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        raise WeightsError(f"{path}: unreadable or corrupt weights file ({type(exc).__name__}: {exc})") from exc


def _is_checkpoint(content: object) -> bool:
    return isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT


def _check_checkpoint(content: dict, path: Path) -> None:
    version = content.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: checkpoint version {version!r}; this code reads up to {CHECKPOINT_VERSION}")
    backbone = content.get("backbone")
    if backbone not in BACKBONES:
        raise WeightsError(f"{path}: checkpoint for unknown backbone {backbone!r}")
    if content.get("feature_dim") != BACKBONES[backbone]:
        raise WeightsError(f"{path}: feature_dim {content.get('feature_dim')!r} does not match {backbone}")
    image_size = content.get("image_size")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise WeightsError(f"{path}: bad image_size {image_size!r}")
    if not isinstance(content.get("state_dict"), dict) or not isinstance(content.get("extra"), dict):
        raise WeightsError(f"{path}: checkpoint lacks its state_dict or extra dict")


def _state_dict_for(name: str, content: object, path: Path) -> dict[str, torch.Tensor]:
    """The backbone weights held by a loaded file, without the fc layer."""
    if _is_checkpoint(content):
        _check_checkpoint(content, path)
        if content["backbone"] != name:
            raise WeightsError(f"{path}: a checkpoint for {content['backbone']}, not {name}")
        content = content["state_dict"]
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise WeightsError(f"{path}: neither a state_dict of tensors nor a {CHECKPOINT_FORMAT} checkpoint")
    # "module." is what DataParallel/DistributedDataParallel put in front of every key.
    state = {str(key).removeprefix("module."): tensor for key, tensor in content.items()}
    return {key: tensor for key, tensor in state.items() if not key.startswith("fc.")}


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    problems = _mismatches(expected, state)
    if problems:
        raise WeightsError(f"{path}: weights do not fit this architecture: {problems}")
    model.load_state_dict(state, strict=False)


def _mismatches(expected: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor]) -> str:
    """A short description of missing, unexpected and wrongly shaped keys ("" when the state fits)."""
    missing = [key for key in expected if key not in state and not key.endswith(_OPTIONAL_SUFFIXES)]
    unexpected = [key for key in state if key not in expected]
    wrong = [f"{key} {tuple(state[key].shape)} != {expected[key]}"
             for key in expected if key in state and tuple(state[key].shape) != expected[key]]
    parts = [f"{label} ({len(keys)}): {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
             for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    return "; ".join(parts)


def _reference_shapes(name: str) -> dict[str, tuple[int, ...]]:
    # The meta device allocates nothing, so checking a model against its architecture costs no memory.
    with torch.device("meta"):
        reference = torchvision.models.get_model(name, weights=None)
    reference.fc = torch.nn.Identity()
    return {key: tuple(value.shape) for key, value in reference.state_dict().items()}


def _check_plain(value: object, where: str) -> None:
    """Refuse values ``torch.load(weights_only=True)`` could not read back (numpy scalars, arbitrary objects)."""
    if type(value) in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif type(value) is dict:
        for key, item in value.items():
            _check_plain(key, f"{where} key")
            _check_plain(item, f"{where}[{key!r}]")
    elif type(value) not in (str, int, float, bool, type(None)):
        raise ValueError(f"{where} holds a {type(value).__name__}; only plain Python data can be saved")


def _download(url: str, destination: Path) -> None:
    """Fetch ``url`` into ``destination`` (atomically), checking the sha256 prefix torchvision puts in file names."""
    response = _open_url(url, DOWNLOAD_TIMEOUT_S)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with response, os.fdopen(handle, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        expected = re.search(r"-([a-f0-9]+)\.", destination.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise OSError(f"downloaded file has sha256 {digest.hexdigest()[:12]}..., expected {expected.group(1)}")
        os.replace(temporary, destination)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _open_url(url: str, timeout: float):
    """``urlopen`` with a hard deadline: its own timeout covers connect and reads, but not name resolution."""
    outcome: dict[str, object] = {}

    def attempt() -> None:
        try:
            outcome["response"] = urllib.request.urlopen(url, timeout=timeout)
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=attempt, name="weights-download", daemon=True)
    worker.start()
    worker.join(2 * timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer from {url} within {2 * timeout:g} s")
    if "error" in outcome:
        error = outcome["error"]
        raise error if isinstance(error, OSError) else OSError(str(error))
    return outcome["response"]
