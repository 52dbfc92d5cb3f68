"""What the per-format readers hand to the writer (labeling/services/imports/galaxies.py), and the checks they share:
CSV reading, paths that must stay inside the given folder, coordinates, ids and image bytes met twice.

Readers only read: they return a Plan of checked candidates and a list of problems, and write nothing.
"""

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename, slugify

from labeling.models import Dataset, Galaxy, LabelClass, LabelSchema
from labeling.services.imports.reports import ImportFailed
from labeling.services.votes.schemas import SHIPPED_SCHEMAS_DIR, SchemaDefinitionError, read_schema_file

EXTERNAL_ID_MAX = Galaxy._meta.get_field("external_id").max_length
DATASET_NAME_MAX = Dataset._meta.get_field("name").max_length
SCHEMA_NAME_MAX = LabelSchema._meta.get_field("name").max_length
CLASS_KEY_MAX = LabelClass._meta.get_field("key").max_length
CLASS_NAME_MAX = LabelClass._meta.get_field("name").max_length
# PostgreSQL refuses a NUL character in any text (and in JSON); SQLite stores it. Refused up front on both, with the
# row and column, rather than as a database error halfway through the writing.
NUL = "\x00"
NUL_MESSAGE = "contains a NUL character, which cannot be stored"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class Candidate:
    """One galaxy to create or update, already checked. ``where`` names its row in problem lines."""

    external_id: str
    where: str
    filename: str
    width: int
    height: int
    # sha256 of the bytes that will be stored; None when they only exist once encoded (HDF5 arrays to PNG).
    content_hash: str | None = None
    ra: float | None = None
    dec: float | None = None
    metadata: dict = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # schema name -> class key


@dataclass
class SchemaPlan:
    """A schema the import labels in. ``fixed_keys``: an existing schema's classes, which the import must not
    change; None when the import's labels define (or extend) the classes, named as in ``classes``."""

    name: str
    fixed_keys: set[str] | None
    classes: dict[str, str] = field(default_factory=dict)
    title: str = ""


@dataclass
class Plan:
    """A checked import: candidates in order, and ``payloads()`` yielding the bytes to store for each, in order."""

    candidates: list[Candidate]
    payloads: Callable[[], Iterator[bytes]]
    schemas: dict[str, SchemaPlan]
    provenance: str
    problems: list[str]


def problem(where: str, column: str | None, message: str) -> str:
    """One problem line: 'labels.csv, row 5, column 'file': why'."""
    return f"{where}, column {column!r}: {message}" if column else f"{where}: {message}"


def existing_dataset(name: str) -> Dataset | None:
    return Dataset.objects.filter(name=name.strip()).first()


def schema_slug(name: str) -> str:
    slug = slugify(name)
    if not slug:
        raise ImportFailed([f"--schema {name!r}: not a usable schema name"])
    if len(slug) > SCHEMA_NAME_MAX:
        raise ImportFailed([f"--schema {name[:40]!r}...: a schema name is at most {SCHEMA_NAME_MAX} characters"])
    return slug


def dataset_name_checked(name: str) -> str:
    """``name`` stripped, when it can be a Dataset's name.

    Raises:
        ImportFailed: empty, longer than the column, or with a control character.
    """
    name = name.strip()
    if not name:
        raise ImportFailed(["a dataset needs a name"])
    if len(name) > DATASET_NAME_MAX:
        raise ImportFailed([f"dataset name {name[:40]!r}...: a dataset name is at most {DATASET_NAME_MAX} characters"])
    if CONTROL_CHARACTERS.search(name):
        raise ImportFailed([f"dataset name {name!r}: contains a control character"])
    return name


def schema_fixed_keys(name: str) -> set[str] | None:
    """The class keys of schema ``name`` when it exists (in the database, or shipped and not yet loaded), else
    None. Reads only: a shipped schema is loaded when the import writes."""
    schema = LabelSchema.objects.filter(name=name).first()
    if schema is not None:
        return set(schema.classes.values_list("key", flat=True))
    path = SHIPPED_SCHEMAS_DIR / f"{name}.json"
    if not path.exists():
        return None
    try:
        return {str(raw["key"]) for raw in read_schema_file(path)["classes"]}
    except SchemaDefinitionError as exc:
        raise ImportFailed([str(exc)]) from None


def csv_rows(path: Path, *, required: list[str]) -> Iterator[tuple[int, dict[str, str], str | None]]:
    """Rows of a UTF-8 CSV as (row number, {column: stripped value}, fault or None); the header is row 1.

    A row with more fields than the header comes with a fault (the row is bad); short rows are padded with "".

    Raises:
        ImportFailed: for an unreadable file, or a header without the required columns or with a repeated
            column, as the rows are read.
    """
    name = path.name
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [column.strip() for column in next(reader, [])]
            faults = [problem(f"{name}, row 1", column, "required column is missing")
                      for column in required if column not in header]
            faults += [problem(f"{name}, row 1", column, "column appears twice")
                       for column in sorted({c for c in header if header.count(c) > 1})]
            faults += [problem(f"{name}, row 1", column, NUL_MESSAGE) for column in header if NUL in column]
            if faults:
                raise ImportFailed(faults)
            for number, fields in enumerate(reader, start=2):
                if not fields:
                    continue
                fault = None
                if len(fields) > len(header):
                    fault = f"{name}, row {number}: {len(fields)} fields but the header has {len(header)}"
                    fields = fields[:len(header)]
                fields += [""] * (len(header) - len(fields))
                if fault is None and NUL in "".join(fields):
                    column = next(column for column, value in zip(header, fields, strict=True) if NUL in value)
                    fault = problem(f"{name}, row {number}", column, NUL_MESSAGE)
                yield number, {column: value.strip() for column, value in zip(header, fields, strict=True)}, fault
    except FileNotFoundError:
        raise ImportFailed([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ImportFailed([f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError as exc:
        raise ImportFailed([f"{name}: not UTF-8 text ({exc})"]) from None
    except csv.Error as exc:
        raise ImportFailed([f"{name}: not a readable CSV file ({exc})"]) from None


def path_inside(root: Path, relative: str, *, folders: bool = False) -> Path:
    """``relative`` resolved inside the folder ``root``: a file, or with ``folders`` a file or a folder.

    Raises:
        ValueError: empty, with a NUL byte, in a home folder ('~/'), absolute, escaping the folder (by '..' or by a
            symlink), missing, not a file, or unreadable (a name too long for the file system, a symlink loop).
    """
    if not relative:
        raise ValueError("empty file name")
    if "\x00" in relative:
        raise ValueError(f"{relative!r} contains a NUL byte")  # the OS would refuse it with a message naming nothing
    first, _, rest = relative.partition("/")
    if first.startswith("~") and rest:
        # Never expanded here, so '~/x.jpg' would quietly mean a folder called '~' inside the import folder.
        raise ValueError(f"{relative!r} starts with {first!r}, a home folder; give the path relative to the folder")
    if Path(relative).is_absolute():
        raise ValueError(f"{relative!r} is an absolute path; give the path relative to the folder")
    try:
        resolved = (root / relative).resolve()
        inside, exists, is_file = resolved.is_relative_to(root.resolve()), resolved.exists(), resolved.is_file()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, from resolve() before Python 3.13
        raise ValueError(f"{relative!r} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if not inside:
        raise ValueError(f"{relative!r} points outside the folder {root}")
    if not exists:
        raise ValueError(f"{relative!r}: no such file")
    if not is_file and not folders:
        raise ValueError(f"{relative!r} is not a file")
    return resolved


def parse_coordinate(value: str, *, column: str) -> float | None:
    """A right ascension or declination in degrees, or None for an empty cell.

    Raises:
        ValueError: not a finite number, or outside [0, 360) for ra / [-90, 90] for dec.
    """
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if column == "ra" and not 0 <= number < 360:
        raise ValueError(f"{number} is outside [0, 360) degrees")
    if column == "dec" and not -90 <= number <= 90:
        raise ValueError(f"{number} is outside [-90, 90] degrees")
    return number


def check_external_id(value: str) -> str:
    """``value`` when it can be a Galaxy.external_id; ValueError otherwise."""
    if not value:
        raise ValueError("empty id")
    if len(value) > EXTERNAL_ID_MAX:
        raise ValueError(f"id is {len(value)} characters, more than {EXTERNAL_ID_MAX}")
    if CONTROL_CHARACTERS.search(value):
        # A NUL cannot be stored on PostgreSQL; a tab, line break or escape would garble every list and export.
        raise ValueError(f"id {value!r} contains a control character")
    return value


class SeenBefore:
    """The ids and image hashes met so far in one import, and the image hashes the dataset already holds."""

    def __init__(self, dataset: Dataset | None):
        self.ids: dict[str, str] = {}
        self.hashes: dict[str, tuple[str, str]] = {}
        self.stored: dict[str, str] = {}
        if dataset is not None:
            self.stored = dict(Galaxy.objects.filter(dataset=dataset).exclude(content_hash="")
                               .values_list("content_hash", "external_id"))

    def clash(self, external_id: str, content_hash: str | None) -> tuple[str, str] | None:
        """Why this id or these bytes cannot be imported, as (what is at fault: "id" or "image", why), or None."""
        if external_id in self.ids:
            return "id", f"id {external_id!r} is also used by {self.ids[external_id]}"
        if content_hash in self.hashes:
            other_id, where = self.hashes[content_hash]
            return "image", f"the same image bytes as id {other_id!r} ({where})"
        owner = self.stored.get(content_hash) if content_hash else None
        if owner is not None and owner != external_id:
            return "image", f"the same image bytes as galaxy {owner!r}, already in the dataset"
        return None

    def add(self, external_id: str, content_hash: str | None, where: str) -> None:
        self.ids[external_id] = where
        if content_hash:
            self.hashes[content_hash] = (external_id, where)


def stored_filename(external_id: str, suffix: str) -> str:
    """A safe file name for a galaxy's image: the id with unsafe characters dropped (the storage makes it unique)."""
    try:
        stem = get_valid_filename(external_id)
    except SuspiciousFileOperation:
        stem = "galaxy"
    return f"{stem}{suffix}"
