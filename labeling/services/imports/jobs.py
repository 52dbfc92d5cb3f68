"""Imports as background jobs, started by admins from the Jobs page: the same importers as `manage.py
import_galaxies` and `manage.py import_votes`, on files under GALAXY_IMPORT_ROOT.

A browser upload would not carry a catalogue of gigabytes (an HDF5 file, a folder of 17,000 images), so the files
are put on the server first (copied into, or mounted at, GALAXY_IMPORT_ROOT) and the page names them relative to
that folder; anything that resolves outside it, symlinks included, is refused. The importers check everything before
they write, then write in one transaction: a bad file fails the job with every problem named (file, row, column)
and nothing written, as on the command line.
"""

import os
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from labeling.models import Dataset, Job
from labeling.services.imports import galaxies, votes
from labeling.services.imports.common import dataset_name_checked, path_inside
from labeling.services.imports.reports import ImportFailed, ImportReport
from labeling.services.jobs.lifecycle import JobCancelled, JobReporter, job_create

PANOPTES = "panoptes"  # a Zooniverse classification export (labeling/services/imports/panoptes.py)
IMPORT_FORMATS = {Job.Kind.IMPORT_GALAXIES: sorted(galaxies.FORMATS),
                  Job.Kind.IMPORT_VOTES: [*votes.FORMATS, PANOPTES]}
# The files the Jobs page offers: what the importers read, a folder of images, an HDF5 file or a (gzipped) CSV.
SOURCE_SUFFIXES = (".csv", ".csv.gz", ".h5", ".hdf5")
SOURCES_LISTED = 500
SKIPPED_ROWS_KEPT = 50


class ImportArgumentError(ValueError):
    """A refused argument of an import job: ``field`` names it, ``message`` says why, for the form and the API."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def import_root() -> Path:
    return Path(settings.GALAXY_IMPORT_ROOT)


def import_source(relative: str, *, field: str = "path") -> Path:
    """The file or folder ``relative`` names under GALAXY_IMPORT_ROOT.

    Raises:
        ImportArgumentError: for ``field``, as import_common.path_inside refuses: an absolute or home path, one
            that leaves the folder (``..``, a symlink out), one that does not exist or cannot be read.
    """
    try:
        return path_inside(import_root(), relative, folders=True)
    except ValueError as exc:
        raise ImportArgumentError(field, str(exc)) from None


def import_sources(limit: int = SOURCES_LISTED) -> list[str]:
    """Folders and catalogue files under GALAXY_IMPORT_ROOT, relative to it, for the form to offer: two levels deep
    (a catalogue's folder and what is in it), not inside folders of images."""
    root = import_root()
    if not root.is_dir():
        return []
    found: list[str] = []
    for folder, subfolders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")) if depth < 2 else []
        here = Path(folder).relative_to(root)
        found += [str(here / name) for name in subfolders]
        found += [str(here / name) for name in sorted(files) if name.lower().endswith(SOURCE_SUFFIXES)]
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def import_job_start(*, kind: str, path: str, fmt: str, dataset_name: str, labels: str = "", schema: str = "",
                     skip_bad: bool = False, panoptes: dict | None = None, user=None) -> Job:
    """Queue an import of the file or folder ``path`` (relative to GALAXY_IMPORT_ROOT) into ``dataset_name``.
    ``panoptes`` (format "panoptes" only): ``mapping`` (a shipped mapping's name, or a file under
    GALAXY_IMPORT_ROOT), and optionally ``workflow_id``, ``workflow_versions`` and ``subject_keys``, as the command's
    options.

    Raises:
        ImportArgumentError: for a kind or format the importers do not know, a bad dataset name, a path outside the
            import folder (see import_source), a Panoptes export without its mapping, or Panoptes options given for
            another format. JobConflict: when the same import is queued or running.
    """
    if kind not in IMPORT_FORMATS:
        raise ImportArgumentError("kind", f"{kind!r} is not an import")
    if fmt not in IMPORT_FORMATS[kind]:
        raise ImportArgumentError("format", f"{fmt!r} is not one of {', '.join(IMPORT_FORMATS[kind])}")
    dataset_name = import_dataset_name(dataset_name)
    import_source(path)
    if labels:
        import_source(labels, field="labels")
    arguments = {"path": path, "format": fmt, "dataset_name": dataset_name, "skip_bad": bool(skip_bad)}
    if kind == Job.Kind.IMPORT_GALAXIES:
        arguments.update(labels=labels, schema=schema)
    if fmt == PANOPTES:
        arguments["panoptes"] = panoptes_arguments(panoptes or {})
    elif panoptes and any(panoptes.values()):
        raise ImportArgumentError("mapping", f"only for the format {PANOPTES!r}")
    return job_create(kind=kind, arguments=arguments, dataset=Dataset.objects.filter(name=dataset_name).first(),
                      user=user)


def panoptes_arguments(given: dict) -> dict:
    """A Panoptes import's options, checked: the mapping is a shipped one's name or a file under the import folder
    (never any other file of the server)."""
    from labeling.services.imports.panoptes_mapping import SHIPPED_MAPPINGS_DIR

    mapping = (given.get("mapping") or "").strip()
    if not mapping:
        shipped = ", ".join(sorted(p.stem for p in SHIPPED_MAPPINGS_DIR.glob("*.json")))
        raise ImportArgumentError("mapping", f"a Panoptes export needs its mapping: {shipped} or a file under "
                                             "the import folder")
    if not (SHIPPED_MAPPINGS_DIR / f"{mapping}.json").is_file() or "/" in mapping:
        import_source(mapping, field="mapping")
    return {"mapping": mapping, "workflow_id": given.get("workflow_id"),
            "workflow_versions": [str(v) for v in given.get("workflow_versions") or []],
            "subject_keys": [str(k) for k in given.get("subject_keys") or []]}


def _panoptes_run(arguments: dict, path: Path, progress) -> ImportReport:
    from labeling.services.imports.panoptes import panoptes_import
    from labeling.services.imports.panoptes_mapping import SHIPPED_MAPPINGS_DIR

    options = arguments["panoptes"]
    mapping = options["mapping"]
    if not (SHIPPED_MAPPINGS_DIR / f"{mapping}.json").is_file() or "/" in mapping:
        mapping = import_source(mapping, field="mapping")  # checked again: the folder may have changed
    return panoptes_import(dataset_name=arguments["dataset_name"], path=path, mapping=mapping,
                           workflow_id=options["workflow_id"], workflow_versions=tuple(options["workflow_versions"]),
                           subject_keys=tuple(options["subject_keys"]), skip_bad=arguments["skip_bad"],
                           progress=progress)


def import_dataset_name(name: str) -> str:
    """``name`` stripped, when it can name a dataset. Raises ImportArgumentError for "dataset"."""
    try:
        return dataset_name_checked(name)
    except ImportFailed as exc:
        raise ImportArgumentError("dataset", "; ".join(exc.problems)) from None


def import_job_run(job: Job, reporter: JobReporter) -> dict:
    """The work of an import job (labeling.tasks.import_galaxies / import_votes): the importer, its report as the
    job's result. The paths are checked again: the folder may have changed since the job was queued. Progress goes
    through an ImportProgress rather than job_run's ``reporter``, which would write inside the import's
    transaction."""
    arguments = job.arguments
    path = import_source(arguments["path"])
    progress = ImportProgress(job.pk)
    try:
        if job.kind == Job.Kind.IMPORT_GALAXIES:
            labels = import_source(arguments["labels"], field="labels") if arguments.get("labels") else None
            report = galaxies.galaxies_import(
                dataset_name=arguments["dataset_name"], fmt=arguments["format"], path=path, labels_csv=labels,
                schema_name=arguments.get("schema") or None, skip_bad=arguments["skip_bad"], progress=progress)
        elif arguments["format"] == PANOPTES:
            report = _panoptes_run(arguments, path, progress)
        else:
            report = votes.votes_import(dataset_name=arguments["dataset_name"], fmt=arguments["format"],
                                        path=path, skip_bad=arguments["skip_bad"], progress=progress)
    finally:
        progress.close()
    dataset = Dataset.objects.get(name=report.dataset)
    Job.objects.filter(pk=job.pk).update(dataset=dataset)
    return _result(report, dataset)


def _result(report: ImportReport, dataset: Dataset) -> dict:
    return {"dataset": dataset.pk, "dataset_slug": dataset.slug, "summary": report.summary(),
            "created": report.created, "updated": report.updated, "unchanged": report.unchanged,
            "labels_created": report.labels_created, "skipped": len(report.skipped),
            "skipped_rows": report.skipped[:SKIPPED_ROWS_KEPT]}


class ImportProgress(JobReporter):
    """Progress of an import job, and its cancellation, as the importers call progress(done, total, phase).

    The importers write in one transaction. Progress written through that transaction would show nobody anything
    until it commits, and would hold the job's row locked, so that a person's Cancel would wait for the import to
    end. On PostgreSQL it is written through a connection of its own instead. SQLite lets one writer in at a time:
    there, progress inside the transaction is not written at all (the page shows the last phase before it).
    A cancel is read through the import's own connection, which sees what others committed.
    """

    def __init__(self, job_id: int):
        super().__init__(job_id)
        self._side = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if self.cancel_requested():
            raise JobCancelled()
        self.progress(done, total, message)

    def write(self, percent: float, message: str) -> None:
        if not connection.in_atomic_block:
            super().write(percent, message)
        elif connection.vendor == "postgresql":
            if self._side is None:
                self._side = connections.create_connection(DEFAULT_DB_ALIAS)
            table, quote = Job._meta.db_table, self._side.ops.quote_name
            with self._side.cursor() as cursor:
                cursor.execute(f"UPDATE {quote(table)} SET progress = %s, message = %s, heartbeat_at = %s "
                               f"WHERE id = %s", [percent, message, timezone.now(), self.job_id])

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None
