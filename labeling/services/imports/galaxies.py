"""Import galaxy images (with labels and coordinates) into a dataset, from a folder, a Galaxy10 HDF5 file or the
Galaxy Zoo example-set layout.

Two passes. The format's reader (import_folder, import_galaxy10, import_gz_examples) checks everything, decoding
every image, and writes nothing. Then one transaction writes the galaxies, their files and their labels; if
anything fails there, the files written so far are deleted and the transaction rolls back, so a failed import
leaves neither rows nor files. Importing the same input again changes nothing.
"""

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from labeling.models import Dataset, ExpertLabel, Galaxy, LabelClass, LabelSchema
from labeling.services.imports.common import Candidate, Plan, SchemaPlan, dataset_name_checked, problem
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.folder import folder_plan
from labeling.services.imports.galaxy10 import galaxy10_plan
from labeling.services.imports.gz_examples import gz_examples_plan
from labeling.services.imports.images import sha256_bytes, thumbnail_jpeg
from labeling.services.imports.reports import ImportFailed, ImportReport, Progress, imports_take_turns, no_progress
from labeling.services.labelling.labels import expert_label_set
from labeling.services.votes.schemas import SchemaDefinitionError, schema_ensure_classes, schema_get_or_load_shipped

FORMATS: dict[str, Callable[..., Plan]] = {
    "folder": folder_plan,
    "galaxy10-h5": galaxy10_plan,
    "gz-examples": gz_examples_plan,
}
# Galaxies looked up per query while writing: enough to save round trips, few enough to keep memory flat.
BATCH = 200


class _Rejected(Exception):
    """A candidate found bad only while writing (its encoded bytes clash with another galaxy)."""


def galaxies_import(
    *,
    dataset_name: str,
    fmt: str,
    path: Path,
    labels_csv: Path | None = None,
    schema_name: str | None = None,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import galaxy images into the dataset ``dataset_name``, created when missing.

    Args:
        dataset_name: the dataset's name.
        fmt: "folder", "galaxy10-h5" or "gz-examples" (see the reader modules for each layout).
        path: the folder, or the HDF5 file.
        labels_csv: the CSV for "folder" and "gz-examples" when it is not PATH/labels.csv.
        schema_name: the label schema for "folder" (default: one named after the dataset) and "galaxy10-h5"
            (default: galaxy10). An existing schema's classes are fixed: a label outside them is a bad row.
        skip_bad: import the good rows and list the bad ones in ImportReport.skipped, instead of failing.
        progress: called as progress(done, total, phase).

    Returns:
        What was created, updated, left unchanged and skipped.

    Raises:
        ImportFailed: listing every problem (file, row, column); nothing was written.
    """
    if fmt not in FORMATS:
        raise ImportFailed([f"unknown format {fmt!r}; one of {', '.join(FORMATS)}"])
    dataset_name = dataset_name_checked(dataset_name)
    progress = progress or no_progress
    plan = FORMATS[fmt](dataset_name=dataset_name, path=Path(path), labels_csv=labels_csv,
                        schema_name=schema_name, progress=progress)
    if plan.problems and not skip_bad:
        raise ImportFailed(plan.problems)
    report = ImportReport(dataset=dataset_name, skipped=list(plan.problems))
    _write(plan, report=report, skip_bad=skip_bad, progress=progress)
    return report


def _schema(plan: SchemaPlan) -> tuple[LabelSchema, dict[str, LabelClass]]:
    try:
        if plan.fixed_keys is not None:
            schema = schema_get_or_load_shipped(name=plan.name)
        else:
            schema = schema_ensure_classes(name=plan.name, classes=plan.classes)
            if plan.title and schema.title != plan.title:
                schema.title = plan.title
                schema.save(update_fields=["title"])
    except SchemaDefinitionError as exc:
        raise ImportFailed([str(exc)]) from None
    return schema, {label_class.key: label_class for label_class in schema.classes.all()}


def _write(plan: Plan, *, report: ImportReport, skip_bad: bool, progress: Progress) -> None:
    storage = Galaxy._meta.get_field("image").storage
    written: list[str] = []
    rejected: list[str] = []
    payloads = plan.payloads()
    try:
        with transaction.atomic():
            imports_take_turns()
            dataset = dataset_get_or_create(name=report.dataset)
            _orphans_remove(dataset, storage)
            schemas = {name: _schema(schema_plan) for name, schema_plan in plan.schemas.items()}
            # Current imported labels per schema, so an unchanged label costs no query.
            current = {
                name: dict(ExpertLabel.objects.filter(
                    schema=schema, galaxy__dataset=dataset, expert__isnull=True, provenance=plan.provenance,
                    superseded_at__isnull=True,
                ).values_list("galaxy_id", "label_class_id"))
                for name, (schema, _) in schemas.items()
            }
            total = len(plan.candidates)
            for start in range(0, total, BATCH):
                batch = plan.candidates[start:start + BATCH]
                existing = {galaxy.external_id: galaxy for galaxy in Galaxy.objects.filter(
                    dataset=dataset, external_id__in=[candidate.external_id for candidate in batch])}
                for done, candidate in enumerate(batch, start=start + 1):
                    progress(done, total, "writing")
                    data = next(payloads)
                    try:
                        galaxy, outcome = _save_galaxy(dataset, candidate, data, existing.get(candidate.external_id),
                                                       written)
                    except _Rejected as exc:
                        rejected.append(str(exc))
                        continue
                    except IntegrityError:
                        # Imports take turns, but the plan was checked before this one's turn came, and the admin
                        # site writes galaxies too: another writer stored this id or these bytes meanwhile. A clear
                        # conflict, and the transaction rolls back: nothing of this import is written.
                        raise ImportFailed([problem(candidate.where, None, "another import or an admin stored this "
                                                    "galaxy, or the same image bytes, in the dataset while this "
                                                    "import ran; nothing was imported: run it again")]) from None
                    setattr(report, outcome, getattr(report, outcome) + 1)
                    for schema_name, key in candidate.labels.items():
                        schema, classes = schemas[schema_name]
                        if current[schema_name].get(galaxy.pk) != classes[key].pk:
                            expert_label_set(galaxy=galaxy, schema=schema, label_class=classes[key], expert=None,
                                             provenance=plan.provenance)
                            report.labels_created += 1
            if rejected and not skip_bad:
                raise ImportFailed(rejected)
    except BaseException:
        for name in written:
            with suppress(OSError):  # a failed clean-up must not hide why the import failed
                storage.delete(name)
        raise
    finally:
        close = getattr(payloads, "close", None)
        if close:
            close()
    report.skipped.extend(rejected)


def _orphans_remove(dataset: Dataset, storage) -> None:
    """Delete the files in the dataset's image and thumbnail folders that no galaxy refers to. An import killed
    before it committed (SIGKILL, power loss: no chance to clean up) leaves its files there while its rows roll
    back; the next import into the dataset, which would otherwise write the same images again beside them under
    new names, takes them away. Safe under imports_take_turns: no other import is writing there meanwhile."""
    probe = Galaxy(dataset=dataset)
    for field_name in ("image", "thumbnail"):
        folder = Path(Galaxy._meta.get_field(field_name).upload_to(probe, "-")).parent.as_posix()
        if not storage.exists(folder):
            continue
        kept = set(Galaxy.objects.filter(**{f"{field_name}__startswith": f"{folder}/"})
                   .values_list(field_name, flat=True))
        for name in storage.listdir(folder)[1]:
            if f"{folder}/{name}" not in kept:
                with suppress(FileNotFoundError):
                    storage.delete(f"{folder}/{name}")


def _save_galaxy(dataset: Dataset, candidate: Candidate, data: bytes, galaxy: Galaxy | None,
                 written: list[str]) -> tuple[Galaxy, str]:
    """Create or update one galaxy; returns it and "created", "updated" or "unchanged"."""
    digest = sha256_bytes(data)
    if candidate.content_hash is not None and digest != candidate.content_hash:
        raise ImportFailed([problem(candidate.where, None, "the image changed while importing; try again")])
    new_bytes = galaxy is None or galaxy.content_hash != digest
    if candidate.content_hash is None and new_bytes:
        # Bytes that only exist once encoded could not be compared with the dataset while checking.
        owner = (Galaxy.objects.filter(dataset=dataset, content_hash=digest)
                 .exclude(external_id=candidate.external_id).values_list("external_id", flat=True).first())
        if owner is not None:
            raise _Rejected(problem(candidate.where, None, f"the same image bytes as galaxy {owner!r}, already in "
                                                           "the dataset"))
    outcome = "created" if galaxy is None else "unchanged"
    if galaxy is None:
        galaxy = Galaxy(dataset=dataset, external_id=candidate.external_id)
    changed = False
    if new_bytes or not galaxy.image or not galaxy.thumbnail:
        replaced = [name for name in (galaxy.image.name, galaxy.thumbnail.name) if name]
        galaxy.image.save(candidate.filename, ContentFile(data), save=False)
        written.append(galaxy.image.name)
        thumbnail = thumbnail_jpeg(data, size=settings.GALAXY_THUMBNAIL_SIZE)
        galaxy.thumbnail.save(f"{Path(galaxy.image.name).stem}.jpg", ContentFile(thumbnail), save=False)
        written.append(galaxy.thumbnail.name)
        galaxy.content_hash = digest
        changed = True
        if replaced:
            # The old files go only once the new rows are committed; a rollback keeps them.
            storage = galaxy.image.storage
            transaction.on_commit(lambda: [storage.delete(name) for name in replaced])
    fields = {"width": candidate.width, "height": candidate.height,
              "metadata": {**galaxy.metadata, **candidate.metadata}}
    fields.update({k: v for k, v in (("ra", candidate.ra), ("dec", candidate.dec)) if v is not None})
    for attribute, value in fields.items():
        if getattr(galaxy, attribute) != value:
            setattr(galaxy, attribute, value)
            changed = True
    if changed:
        galaxy.save()
        if outcome == "unchanged":
            outcome = "updated"
    return galaxy, outcome
