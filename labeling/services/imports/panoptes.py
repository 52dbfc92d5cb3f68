"""Import a Panoptes classification export (Zooniverse's CSV of a workflow's classifications) as volunteer
classifications of a dataset's galaxies, then recount their vote summaries.

One pass over the file, streamed (a .csv.gz is read as it is decompressed), inside one transaction: rows are read
(labeling/services/imports/panoptes_rows.py) and matched to galaxies a batch at a time, and each batch is written at
once, so memory holds one batch whatever the size of the export. A bad row stops the writing (the rest is still
checked, so that every problem is listed) and the transaction is rolled back: nothing is written. Under skip_bad
the bad rows are left out and listed. A classification already stored (the same classification_id, tree and
galaxy: an export imported again, or a row repeated) is counted and not written again. Rows of other workflows or
versions are counted per workflow and version, and not read further: their tasks may mean something else.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction

from labeling.models import Dataset, DecisionTree, Galaxy, VolunteerClassification
from labeling.services.imports.common import dataset_name_checked, existing_dataset, problem
from labeling.services.imports.panoptes_mapping import mapping_path, read_mapping, read_mapping_file
from labeling.services.imports.panoptes_rows import Classification, ExportLayout
from labeling.services.imports.reports import ImportFailed, ImportReport, Progress, imports_take_turns, no_progress
from labeling.services.imports.vote_tables import read_table
from labeling.services.votes.aggregation import votes_aggregate
from labeling.services.votes.trees import (
    TreeDefinitionError,
    read_tree_file,
    shipped_tree_path,
    tree_get_or_load_shipped,
)
from mlcore.votes.tree import parse_tree

# Rows matched and written per round of queries: few round trips, and the most the import holds in memory.
BATCH = 2000
# Galaxies recounted per round: their classifications are all loaded to be counted.
RECOUNT_BATCH = 500


@dataclass
class PanoptesReport(ImportReport):
    """``created``: classifications imported; ``unchanged``: already imported (or repeated in the file);
    ``other_workflows``: rows left out, per "workflow W version V"; ``recounted``: galaxies whose vote summaries
    were recounted."""

    other_workflows: Counter = field(default_factory=Counter)
    recounted: int = 0

    def summary(self) -> str:
        parts = [f"{self.created} classifications imported", f"{self.unchanged} already imported"]
        if self.other_workflows:
            counts = "; ".join(f"{key}: {n}" for key, n in sorted(self.other_workflows.items()))
            parts.append(f"{sum(self.other_workflows.values())} of other workflows or versions left out ({counts})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        parts.append(f"votes recounted for {self.recounted} galaxies")
        return f"dataset {self.dataset!r}: " + ", ".join(parts)


def panoptes_import(
    *,
    dataset_name: str,
    path: Path,
    mapping: str | Path,
    workflow_id: int | None = None,
    workflow_versions: tuple[str, ...] = (),
    subject_keys: tuple[str, ...] = (),
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> PanoptesReport:
    """Import the classifications of one workflow from a Panoptes export into the galaxies of ``dataset_name``.

    Args:
        dataset_name: an existing dataset; each classification's subject must be one of its galaxies.
        path: the export (.csv, or .csv.gz read through gzip).
        mapping: a mapping file, or the name of a shipped one ("gz_decals", "gz2"); it names the tree.
        workflow_id: the workflow to import; the mapping's when None.
        workflow_versions: versions to import, "66" for every 66.x or "66.425" for one; the mapping's when empty.
        subject_keys: subject_data keys that hold a galaxy's external id; the mapping's, else common ones.
        skip_bad: import the good rows and list the bad ones in the report, instead of failing.
        progress: called as progress(done, total, phase); total is 0 while the rows are being read.

    Returns:
        Classifications imported and already there, rows of other workflows or versions, galaxies recounted.

    Raises:
        ImportFailed: listing every problem (file, row, column); nothing was written.
    """
    name = dataset_name_checked(dataset_name)
    path, progress = Path(path), progress or no_progress
    dataset = existing_dataset(name)
    if dataset is None:
        raise ImportFailed([f"no dataset named {name!r}: import its galaxies first (the export's subjects are "
                            "matched to them)"])
    source = mapping_path(mapping)
    raw = read_mapping_file(source)
    definition = _tree_definition(raw["tree"])
    the_mapping = read_mapping(source, raw=raw, tree=definition)
    workflow_id = workflow_id if workflow_id is not None else the_mapping.workflow_id
    versions = tuple(v.strip() for v in workflow_versions if v.strip()) or the_mapping.workflow_versions
    missing = [] if workflow_id is not None else [f"{source.name} names no workflow: give --workflow-id"]
    if not versions:
        missing.append(f"{source.name} names no workflow version: give --workflow-version (66 takes every 66.x)")
    if missing:
        raise ImportFailed(missing)
    rows = read_table(path)
    header = next(rows, None)
    if header is None:
        raise ImportFailed([f"{path.name}: the file is empty; it needs a header row"])
    layout = ExportLayout(header=header, file_name=path.name, mapping=the_mapping,
                          spec=parse_tree(definition), workflow_id=workflow_id,
                          versions=versions, subject_keys=tuple(subject_keys) or the_mapping.subject_keys)
    if layout.problems:
        rows.close()
        raise ImportFailed(layout.problems)
    report = PanoptesReport(dataset=name)
    with transaction.atomic():
        imports_take_turns()
        writer = _Writer(dataset=dataset, tree=tree_get_or_load_shipped(name=the_mapping.tree), report=report,
                         skip_bad=skip_bad)
        number = 0
        for number, fields in enumerate((fields for fields in rows if fields), start=1):
            other = layout.other_workflow(fields)
            if other is not None:
                report.other_workflows[other] += 1
            else:
                writer.add(*layout.parse(number, fields))
            if number % 1000 == 0:
                progress(number, 0, "importing")
        writer.flush()
        progress(number, number, "importing")
        if number == 0:
            writer.problems.append(f"{path.name}: no data rows below the header")
        if writer.problems and not skip_bad:
            raise ImportFailed(writer.problems)
        report.skipped = writer.problems
        _recount(writer.touched, tree=writer.tree, progress=progress)
        report.recounted = len(writer.touched)
    return report


def _tree_definition(name: str) -> dict:
    """The tree as stored, or as shipped when not loaded yet (it is loaded only when the import writes)."""
    tree = DecisionTree.objects.filter(name=name).first()
    if tree is not None:
        return tree.as_definition()
    try:
        return read_tree_file(shipped_tree_path(name))
    except TreeDefinitionError:
        raise ImportFailed([f"the mapping's tree {name!r} is neither loaded nor shipped (load it with load_tree)"]) \
            from None


class _Writer:
    """Matches checked rows to galaxies a batch at a time and writes them, while no row has failed (or skip_bad)."""

    def __init__(self, *, dataset: Dataset, tree: DecisionTree, report: PanoptesReport, skip_bad: bool):
        self.dataset, self.tree, self.report, self.skip_bad = dataset, tree, report, skip_bad
        self.batch: list[Classification] = []
        self.problems: list[str] = []
        self.touched: set[int] = set()  # galaxies given a classification, to recount

    def add(self, row: Classification | None, problems: list[str]) -> None:
        self.problems.extend(problems)
        if row is not None:
            self.batch.append(row)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        wanted = {candidate for row in batch for candidate in row.candidates}
        galaxies = dict(Galaxy.objects.filter(dataset=self.dataset, external_id__in=wanted)
                        .values_list("external_id", "pk"))
        matched = []
        for row in batch:
            galaxy_id = next((galaxies[c] for c in row.candidates if c in galaxies), None)
            if galaxy_id is None:
                tried = ", ".join(repr(c) for c in row.candidates[:4])
                why = f"subject {row.subject_id} is no galaxy of dataset {self.dataset.name!r} (tried {tried})"
                self.problems.append(problem(row.where, "subject_data", why))
            else:
                matched.append((row, galaxy_id))
        if self.problems and not self.skip_bad:
            return  # the import will fail: the rest of the file is only checked
        # Already stored: the same classification of the same galaxy and tree (the unique constraint's columns, so
        # that its index answers; "not empty" lets PostgreSQL and SQLite use that partial index with a long IN list).
        stored = set(VolunteerClassification.objects.filter(
            tree=self.tree, external_id__in={row.classification_id for row, _ in matched},
            galaxy_id__in={galaxy_id for _, galaxy_id in matched}).exclude(external_id="")
            .values_list("external_id", "galaxy_id"))
        fresh = []
        for row, galaxy_id in matched:
            if (row.classification_id, galaxy_id) in stored:
                self.report.unchanged += 1
                continue
            stored.add((row.classification_id, galaxy_id))
            fresh.append((row, galaxy_id))
            self.touched.add(galaxy_id)
        _insert(fresh, tree_id=self.tree.pk)
        self.report.created += len(fresh)


def _insert(rows: list[tuple[Classification, int]], *, tree_id: int) -> None:
    """Insert imported classifications as they are: COPY on PostgreSQL, executemany elsewhere. bulk_create would
    prepare every field of every object first, most of the time of a large import (see _insert_summaries in
    labeling/services/imports/votes.py, measured there)."""
    if not rows:
        return
    meta = VolunteerClassification._meta
    names = ["galaxy", "tree", "volunteer_id", "answers", "source", "created_at", "external_id"]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    source = VolunteerClassification.Source.IMPORTED.value
    with connection.cursor() as cursor:
        copy = connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy")
        # COPY takes aware datetimes as they are; elsewhere the field says how the database stores them.
        created_at = meta.get_field("created_at")
        stamp = (lambda moment: moment) if copy else (lambda moment: created_at.get_db_prep_value(moment, connection))
        values = ((galaxy_id, tree_id, row.volunteer_id, json.dumps(row.answers), source, stamp(row.created_at),
                   row.classification_id) for row, galaxy_id in rows)
        if copy:
            with cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            placeholders = ", ".join(["%s"] * len(names))
            cursor.executemany(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})", list(values))


def _recount(galaxy_ids: set[int], *, tree: DecisionTree, progress: Progress) -> None:
    ordered = sorted(galaxy_ids)
    for start in range(0, len(ordered), RECOUNT_BATCH):
        votes_aggregate(tree=tree, galaxy_ids=ordered[start:start + RECOUNT_BATCH])
        progress(min(start + RECOUNT_BATCH, len(ordered)), len(ordered), "recounting votes")

