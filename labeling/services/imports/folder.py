"""The folder format: a folder of images, optionally with a CSV that names them.

CSV columns: ``file`` (required, relative to the folder), ``id`` (default: the file's stem), ``label`` and
``class_name`` (expert labels), ``ra``, ``dec``; any other column is kept in Galaxy.metadata. Without a CSV every
file under the folder is an image, except hidden files and .csv/.md/.txt/.json sidecars.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.text import slugify

from labeling.services.imports.common import (
    CLASS_KEY_MAX,
    CLASS_NAME_MAX,
    Candidate,
    Plan,
    SchemaPlan,
    SeenBefore,
    check_external_id,
    csv_rows,
    existing_dataset,
    parse_coordinate,
    path_inside,
    problem,
    schema_fixed_keys,
    schema_slug,
    stored_filename,
)
from labeling.services.imports.images import ImageRejected, image_inspect
from labeling.services.imports.reports import ImportFailed, Progress

SIDECAR_SUFFIXES = {".csv", ".md", ".txt", ".json"}
KNOWN_COLUMNS = {"file", "id", "label", "class_name", "ra", "dec"}


@dataclass
class _Entry:
    where: str
    relative: str
    values: dict[str, str]
    fault: str | None = None


def _csv_entries(labels_csv: Path) -> list[_Entry]:
    return [_Entry(f"{labels_csv.name}, row {number}", values["file"], values, fault)
            for number, values, fault in csv_rows(labels_csv, required=["file"])]


def _walk_entries(root: Path) -> Iterator[_Entry]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # os.walk does not follow symlinked folders; say so when one leads outside rather than skip it silently.
        for name in dirnames:
            if (here / name).is_symlink() and not (here / name).resolve().is_relative_to(root.resolve()):
                relative = (here / name).relative_to(root).as_posix()
                yield _Entry(relative, relative, {}, problem(relative, None, "a symlink to a folder outside "
                                                                               f"{root}"))
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() in SIDECAR_SUFFIXES:
                continue
            relative = (here / name).relative_to(root).as_posix()
            yield _Entry(relative, relative, {})


def folder_plan(*, dataset_name: str, path: Path, labels_csv: Path | None, schema_name: str | None,
                progress: Progress) -> Plan:
    """Check a folder of images (and its CSV) without writing anything.

    Raises:
        ImportFailed: for problems with the folder or the CSV as a whole; bad rows are listed in Plan.problems.
    """
    root = Path(path)
    if not root.is_dir():
        raise ImportFailed([f"{root}: no such folder"])
    if labels_csv is None and (root / "labels.csv").is_file():
        labels_csv = root / "labels.csv"
    entries = _csv_entries(Path(labels_csv)) if labels_csv else list(_walk_entries(root))
    if not entries:
        raise ImportFailed([f"{labels_csv or root}: no images to import"])

    labelled = any(entry.values.get("label") for entry in entries)
    schema = schema_slug(schema_name) if schema_name else slugify(dataset_name) or "imported"
    fixed_keys = schema_fixed_keys(schema) if schema_name and labelled else None
    plan = Plan(candidates=[], payloads=lambda: iter(()), schemas={},
                provenance=f"imported from {Path(labels_csv).name if labels_csv else root.name}", problems=[])
    seen = SeenBefore(existing_dataset(dataset_name))
    sources: list[Path] = []
    classes: dict[str, str] = {}
    max_pixels = settings.GALAXY_MAX_IMAGE_PIXELS
    file_column = "file" if labels_csv else None
    for done, entry in enumerate(entries, start=1):
        progress(done, len(entries), "checking images")
        faults = [entry.fault] if entry.fault else []
        values = entry.values
        source = info = None
        try:
            source = path_inside(root, entry.relative)
        except ValueError as exc:
            faults.append(problem(entry.where, file_column, str(exc)))
        try:
            external_id = check_external_id(values.get("id") or Path(entry.relative).stem)
        except ValueError as exc:
            faults.append(problem(entry.where, "id", str(exc)))
        coordinates = {}
        for column in ("ra", "dec"):
            try:
                coordinates[column] = parse_coordinate(values.get(column, ""), column=column)
            except ValueError as exc:
                faults.append(problem(entry.where, column, str(exc)))
        label = values.get("label", "")
        for column, longest in (("label", CLASS_KEY_MAX), ("class_name", CLASS_NAME_MAX)):
            if len(values.get(column, "")) > longest:
                faults.append(problem(entry.where, column, f"{len(values[column])} characters, more than {longest}"))
        if label and fixed_keys is not None and label not in fixed_keys:
            faults.append(problem(entry.where, "label", f"{label!r} is not a class of schema {schema!r} "
                                                        f"(its classes: {', '.join(sorted(fixed_keys))})"))
        if source is not None:
            try:
                info = image_inspect(source, max_pixels=max_pixels)
            except (ImageRejected, OSError) as exc:
                # With a CSV the row names the place and the message names the file; without, the file is both.
                faults.append(problem(entry.where, file_column, f"{entry.relative}: {exc}" if file_column else
                                      str(exc)))
        if not faults:
            clash = seen.clash(external_id, info.content_hash)
            if clash:
                faults.append(problem(entry.where, "id" if clash[0] == "id" else file_column, clash[1]))
        if faults:
            plan.problems.extend(faults)
            continue
        seen.add(external_id, info.content_hash, entry.where)
        if label:
            classes.setdefault(label, values.get("class_name") or label)
        plan.candidates.append(Candidate(
            external_id=external_id, where=entry.where, filename=stored_filename(external_id, info.suffix),
            width=info.width, height=info.height, content_hash=info.content_hash, **coordinates,
            metadata={k: v for k, v in values.items() if k not in KNOWN_COLUMNS},
            labels={schema: label} if label else {},
        ))
        sources.append(source)
    if classes:
        plan.schemas[schema] = SchemaPlan(name=schema, fixed_keys=fixed_keys, classes=classes)
    plan.payloads = lambda: (source.read_bytes() for source in sources)
    return plan
