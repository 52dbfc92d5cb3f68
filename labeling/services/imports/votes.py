"""Import published volunteer votes (GZ2 tables, Kaggle Galaxy Zoo solutions, GZ DECaLS catalogues) into a dataset.

Two passes over the file, which is streamed (a .csv.gz is read as it is decompressed). The first checks every row
and writes nothing (labeling/services/imports/vote_tables.py reads the columns). The second, in one transaction, writes
the galaxies (created without image when the dataset lacks them) and their VoteSummary rows (source "catalogue")
in batches, comparing with what is stored first, so importing the same file again writes nothing.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Dataset, DecisionTree, Galaxy, Question, VoteSummary
from labeling.services.imports.common import dataset_name_checked
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.reports import ImportFailed, ImportReport, Progress, imports_take_turns, no_progress
from labeling.services.imports.vote_tables import Layout, VoteRow, read_table
from labeling.services.votes.trees import (
    TreeDefinitionError,
    read_tree_file,
    shipped_tree_path,
    tree_get_or_load_shipped,
)

# The decision tree each format's columns are named after.
FORMATS = {"gz2-table": "gz2", "gz2-kaggle": "gz2", "gz-decals": "gz_decals"}
# Galaxies written per round of queries: few round trips, flat memory (a GZ2 row makes 11 summaries).
BATCH = 1000
SUMMARY_FIELDS = ["counts", "total", "fractions", "reach", "extra", "imported_from"]


@dataclass
class _Checked:
    layout: Layout
    good: list[tuple[int, str]]  # (row number, id) of the rows to import, in file order
    problems: list[str]


def votes_import(
    *,
    dataset_name: str,
    fmt: str,
    path: Path,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a vote catalogue into the dataset ``dataset_name``, created when missing.

    Galaxies are matched by external id in the dataset and created (without image) when missing; their ra/dec
    are set from the file and its other non-vote columns merged into Galaxy.metadata. Each question with votes
    becomes a VoteSummary (source "catalogue", imported_from the file's name).

    Args:
        dataset_name: the dataset's name.
        fmt: "gz2-table" (published GZ2 tables), "gz2-kaggle" (Kaggle training_solutions_rev1) or "gz-decals"
            (GZ DECaLS volunteer catalogues).
        path: the CSV file; a name ending .gz is read through gzip.
        skip_bad: import the good rows and list the bad ones in ImportReport.skipped, instead of failing. Faults
            of the header (missing, repeated or unknown columns) fail the import all the same.
        progress: called as progress(done, total, phase); total is 0 while the rows are still being counted.

    Returns:
        Galaxies (rows of the file) created, updated (the galaxy or any of its summaries changed) and unchanged.

    Raises:
        ImportFailed: listing every problem (file, row, column); nothing was written.
    """
    if fmt not in FORMATS:
        raise ImportFailed([f"unknown format {fmt!r}; one of {', '.join(FORMATS)}"])
    name = dataset_name_checked(dataset_name)
    path = Path(path)
    progress = progress or no_progress
    checked = _check(path, fmt, _tree_definition(FORMATS[fmt]), progress)
    if checked.problems and not skip_bad:
        raise ImportFailed(checked.problems)
    report = ImportReport(dataset=name, skipped=list(checked.problems))
    with transaction.atomic():
        imports_take_turns()
        dataset = dataset_get_or_create(name=name)
        tree = tree_get_or_load_shipped(name=FORMATS[fmt])
        _write(path, checked, dataset=dataset, tree=tree, report=report, progress=progress)
    return report


def _tree_definition(name: str) -> dict:
    """The tree as stored, or as shipped when not loaded yet (it is loaded only when the import writes)."""
    tree = DecisionTree.objects.filter(name=name).first()
    if tree is not None:
        return tree.as_definition()
    try:
        return read_tree_file(shipped_tree_path(name))
    except TreeDefinitionError as exc:
        raise ImportFailed([str(exc)]) from None


def _check(path: Path, fmt: str, tree: dict, progress: Progress) -> _Checked:
    rows = read_table(path)
    header = next(rows, None)
    if header is None:
        raise ImportFailed([f"{path.name}: the file is empty; it needs a header row"])
    layout = Layout(fmt=fmt, header=header, tree=tree, file_name=path.name)
    if layout.problems:
        rows.close()
        raise ImportFailed(layout.problems)
    good, problems, first_seen = [], [], {}
    number = 0
    for number, fields in enumerate((fields for fields in rows if fields), start=1):
        row, faults = layout.parse(number, fields, build=False)
        external_id = fields[layout.id_index].strip() if layout.id_index < len(fields) else ""
        if external_id in first_seen:
            faults = [*faults, f"{path.name}, row {number} (id {external_id!r}), column {layout.id_column!r}: id "
                               f"{external_id!r} is also used by row {first_seen[external_id]}"]
        elif external_id:
            first_seen[external_id] = number
        if faults:
            problems.extend(faults)
        else:
            good.append((number, row.external_id))
        if number % 500 == 0:
            progress(number, 0, "checking")
    if number == 0:
        problems.append(f"{path.name}: no data rows below the header")
    progress(number, number, "checking")
    return _Checked(layout, good, problems)


def _write(path: Path, checked: _Checked, *, dataset: Dataset, tree: DecisionTree, report: ImportReport,
           progress: Progress) -> None:
    questions = {question.key: question for question in tree.questions.all()}
    wanted = dict(checked.good)
    batch: list[VoteRow] = []
    done = 0
    for number, fields in enumerate((fields for fields in read_table(path) if fields), start=0):
        if number not in wanted:  # the header is number 0; bad rows are left out
            continue
        row, faults = checked.layout.parse(number, fields)
        if faults or row.external_id != wanted[number]:
            # The file changed since it was checked; rolling back leaves the database as it was.
            raise ImportFailed([f"{path.name} changed while it was being imported; run the import again",
                                *faults])
        batch.append(row)
        if len(batch) == BATCH:
            _write_batch(batch, dataset=dataset, questions=questions, report=report, source_name=path.name)
            done += len(batch)
            batch = []
            progress(done, len(wanted), "writing")
    _write_batch(batch, dataset=dataset, questions=questions, report=report, source_name=path.name)
    progress(done + len(batch), len(wanted), "writing")
    if done + len(batch) != len(wanted):
        raise ImportFailed([f"{path.name} changed while it was being imported; run the import again"])


def _write_batch(rows: list[VoteRow], *, dataset: Dataset, questions: dict[str, Question], report: ImportReport,
                 source_name: str) -> None:
    if not rows:
        return
    galaxies = {galaxy.external_id: galaxy for galaxy in Galaxy.objects.filter(
        dataset=dataset, external_id__in=[row.external_id for row in rows]).only("id", "external_id", "ra", "dec",
                                                                                   "metadata")}
    new, changed = [], set()
    for row in rows:
        galaxy = galaxies.get(row.external_id)
        if galaxy is None:
            galaxies[row.external_id] = Galaxy(dataset=dataset, external_id=row.external_id, ra=row.ra, dec=row.dec,
                                               metadata=row.metadata)
            new.append(galaxies[row.external_id])
            continue
        fields = {"metadata": {**galaxy.metadata, **row.metadata}}
        fields.update({k: v for k, v in (("ra", row.ra), ("dec", row.dec)) if v is not None})
        for attribute, value in fields.items():
            if getattr(galaxy, attribute) != value:
                setattr(galaxy, attribute, value)
                changed.add(row.external_id)
    stored: dict[int, dict[int, tuple]] = {}  # galaxy id -> question id -> (summary id, *SUMMARY_FIELDS)
    old_ids = [galaxy.pk for galaxy in galaxies.values() if galaxy.pk is not None]
    if old_ids:
        for pk, galaxy_id, question_id, *values in VoteSummary.objects.filter(
                galaxy_id__in=old_ids, source=VoteSummary.Source.CATALOGUE, question__in=questions.values(),
        ).values_list("pk", "galaxy_id", "question_id", *SUMMARY_FIELDS):
            stored.setdefault(galaxy_id, {})[question_id] = (pk, *values)
    Galaxy.objects.bulk_create(new)
    Galaxy.objects.bulk_update([galaxies[key] for key in changed], ["ra", "dec", "metadata"])
    created, updated, stale = [], [], []
    now = timezone.now()
    for row in rows:
        galaxy = galaxies[row.external_id]
        mine = stored.get(galaxy.pk, {})
        kept = set()
        for summary in row.summaries:
            question_id = questions[summary.question].pk
            kept.add(question_id)
            values = (summary.counts, summary.total, summary.fractions, summary.reach, summary.extra, source_name)
            current = mine.get(question_id)
            if current is None:
                created.append((galaxy.pk, question_id, values))
                changed.add(row.external_id)
            elif current[1:] != values:
                fields = dict(zip(SUMMARY_FIELDS, values, strict=True))
                updated.append(VoteSummary(pk=current[0], updated_at=now, **fields))
                changed.add(row.external_id)
        # A question the catalogue no longer has votes for (GZ DECaLS: not in this galaxy's workflow) goes.
        gone = [current[0] for question_id, current in mine.items() if question_id not in kept]
        if gone:
            stale.extend(gone)
            changed.add(row.external_id)
    _insert_summaries(created, now=now)
    VoteSummary.objects.bulk_update(updated, [*SUMMARY_FIELDS, "updated_at"], batch_size=BATCH)
    if stale:
        VoteSummary.objects.filter(pk__in=stale).delete()
    new_ids = {galaxy.external_id for galaxy in new}
    report.created += len(new_ids)
    report.updated += len(changed - new_ids)
    report.unchanged += len(rows) - len(changed | new_ids)


def _insert_summaries(created: list[tuple[int, int, tuple]], *, now) -> None:
    """Insert new catalogue summaries: (galaxy id, question id, values in SUMMARY_FIELDS order) each.

    The GZ2 table alone makes 217,371 of them; bulk_create spends most of a minute preparing them field by field
    (measured on our 2-core machines: 25 s on SQLite, 64 s on PostgreSQL), so the rows go to the database as they
    are, JSON encoded as JSONField itself encodes it: COPY on PostgreSQL, executemany elsewhere.
    """
    if not created:
        return
    meta = VoteSummary._meta
    names = ["galaxy", "question", "source", *SUMMARY_FIELDS, "updated_at"]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    stamp = meta.get_field("updated_at").get_db_prep_value(now, connection)
    source = VoteSummary.Source.CATALOGUE.value
    # A generator: PostgreSQL parses the rows already sent while the next ones are encoded.
    rows = ((galaxy_id, question_id, source, _json(counts), total, _json(fractions), reach, _json(extra), imported_from,
             stamp) for galaxy_id, question_id, (counts, total, fractions, reach, extra, imported_from) in created)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy"):
            with cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(names))
            cursor.executemany(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})", list(rows))


def _json(value) -> str | None:
    # JSONField stores None as SQL NULL and anything else as json.dumps text (no custom encoder on these fields).
    return None if value is None else json.dumps(value)
