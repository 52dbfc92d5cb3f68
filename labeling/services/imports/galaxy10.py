"""Galaxy10 DECaLS HDF5: ``images`` (N x H x W x 3 uint8) and ``ans`` (N class numbers).

Optional ``ra`` and ``dec`` arrays fill the coordinates; any other numeric array of length N (``redshift``,
``pxscale``) goes to Galaxy.metadata; other datasets are ignored. The galaxy's external id is its row index, its
image is stored as lossless PNG, and ``ans`` becomes an expert label in the schema (default: the shipped
``galaxy10``), class key str(ans). The real file is 2.7 GB, so ``images`` is only ever read a block at a time.
"""

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from django.conf import settings

from labeling.services.imports.common import (
    Candidate,
    Plan,
    SchemaPlan,
    parse_coordinate,
    problem,
    schema_fixed_keys,
    schema_slug,
)
from labeling.services.imports.images import png_from_array
from labeling.services.imports.reports import ImportFailed, Progress

# How much of `images` one read brings into memory; tests lower it to prove the file is read in blocks.
READ_BYTES = 16 * 2**20


def _rows_per_read(images: h5py.Dataset) -> int:
    per_image = int(np.prod(images.shape[1:])) * images.dtype.itemsize
    rows = max(1, READ_BYTES // per_image)
    chunk = images.chunks[0] if images.chunks else 1
    # Whole HDF5 chunks per read, so no compressed chunk is decompressed twice.
    return rows // chunk * chunk if rows >= chunk else rows


def _blocks(images: h5py.Dataset, name: str) -> Iterator[tuple[int, np.ndarray]]:
    rows = _rows_per_read(images)
    for start in range(0, images.shape[0], rows):
        try:
            yield start, images[start:start + rows]
        except OSError as exc:
            stop = min(start + rows, images.shape[0]) - 1
            raise ImportFailed([problem(f"{name}, rows {start}-{stop}", "images", f"cannot be read ({exc})")]) from None


def _check_layout(handle: h5py.File, name: str) -> tuple[h5py.Dataset, h5py.Dataset, dict[str, h5py.Dataset]]:
    """The images, the answers and the per-galaxy numeric arrays; ImportFailed when the layout is wrong."""
    images, ans = handle.get("images"), handle.get("ans")
    faults = []
    if not isinstance(images, h5py.Dataset):
        faults.append(problem(name, "images", "missing: expected an N x H x W x 3 uint8 array"))
    elif images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        faults.append(problem(name, "images", f"shape {images.shape} of {images.dtype}; expected N x H x W x 3 "
                                              "uint8"))
    if not isinstance(ans, h5py.Dataset):
        faults.append(problem(name, "ans", "missing: expected N class numbers"))
    elif ans.ndim != 1 or ans.dtype.kind not in "iu":
        faults.append(problem(name, "ans", f"shape {ans.shape} of {ans.dtype}; expected N integers"))
    if faults:
        raise ImportFailed(faults)
    n = images.shape[0]
    if n == 0:
        faults.append(problem(name, "images", "no images"))
    if ans.shape[0] != n:
        faults.append(problem(name, "ans", f"{ans.shape[0]} values for {n} images"))
    pixels = images.shape[1] * images.shape[2]
    if pixels > settings.GALAXY_MAX_IMAGE_PIXELS:
        faults.append(problem(name, "images", f"{images.shape[2]}x{images.shape[1]} = {pixels:,} pixels per image "
                                              f"is over the limit of {settings.GALAXY_MAX_IMAGE_PIXELS:,}"))
    columns = {}
    for key, item in handle.items():
        if key in ("images", "ans") or not isinstance(item, h5py.Dataset):
            continue
        per_galaxy = item.ndim == 1 and item.shape[0] == n and item.dtype.kind in "iuf"
        if per_galaxy:
            columns[key] = item
        elif key in ("ra", "dec"):
            faults.append(problem(name, key, f"shape {item.shape} of {item.dtype}; expected {n} numbers"))
    if faults:
        raise ImportFailed(faults)
    return images, ans, columns


def _finite_or_none(value) -> float | int | None:
    value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def galaxy10_plan(*, dataset_name: str, path: Path, labels_csv: Path | None, schema_name: str | None,
                  progress: Progress) -> Plan:
    """Check a Galaxy10 HDF5 file without writing anything, reading its images a block at a time.

    Raises:
        ImportFailed: for a file that is not HDF5 or lacks the layout; bad rows are listed in Plan.problems.
    """
    if labels_csv:
        raise ImportFailed(["--labels does not apply to galaxy10-h5: the labels are the file's 'ans' array"])
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImportFailed([f"{path}: no such file"])
    schema = schema_slug(schema_name) if schema_name else "galaxy10"
    fixed_keys = schema_fixed_keys(schema)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ImportFailed([f"{name}: not an HDF5 file ({exc})"]) from None
    plan = Plan(candidates=[], payloads=lambda: iter(()), schemas={},
                provenance=f"imported from {name}", problems=[])
    classes: dict[str, str] = {}
    digests: dict[str, int] = {}
    with handle:
        images, ans, columns = _check_layout(handle, name)
        n, height, width = images.shape[:3]
        labels = ans[()]
        values = {key: item[()] for key, item in columns.items()}
        for start, block in _blocks(images, name):
            for offset, pixels in enumerate(block):
                row = start + offset
                progress(row + 1, n, "checking images")
                where = f"{name}, row {row}"
                faults, coordinates = [], {}
                key = str(int(labels[row]))
                if fixed_keys is not None and key not in fixed_keys:
                    faults.append(problem(where, "ans", f"{key!r} is not a class of schema {schema!r}"))
                for column in ("ra", "dec"):
                    value = _finite_or_none(values[column][row]) if column in values else None
                    try:
                        coordinates[column] = parse_coordinate("" if value is None else str(value), column=column)
                    except ValueError as exc:
                        faults.append(problem(where, column, str(exc)))
                digest = hashlib.sha256(pixels.tobytes()).hexdigest()
                if digest in digests:
                    faults.append(problem(where, "images", f"the same pixels as row {digests[digest]}"))
                if faults:
                    plan.problems.extend(faults)
                    continue
                digests[digest] = row
                classes.setdefault(key, key)
                plan.candidates.append(Candidate(
                    external_id=str(row), where=where, filename=f"{row}.png", width=width, height=height,
                    **coordinates, labels={schema: key},
                    metadata={k: _finite_or_none(v[row]) for k, v in values.items() if k not in ("ra", "dec")},
                ))
    plan.schemas[schema] = SchemaPlan(name=schema, fixed_keys=fixed_keys, classes=classes)
    keep = {row: digest for digest, row in digests.items()}

    def payloads() -> Iterator[bytes]:
        # Read again block by block: holding 17,736 PNGs from the check would cost gigabytes.
        with h5py.File(path, "r") as again:
            for start, block in _blocks(again["images"], name):
                for offset, pixels in enumerate(block):
                    row = start + offset
                    if row not in keep:
                        continue
                    if hashlib.sha256(pixels.tobytes()).hexdigest() != keep[row]:
                        raise ImportFailed([problem(f"{name}, row {row}", "images", "changed while importing")])
                    yield png_from_array(pixels)

    plan.payloads = payloads
    return plan
