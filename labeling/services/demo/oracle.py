"""Known labels the demo holds back: most of Galaxy10's labels stay out of the database as an oracle, so the expert
has galaxies to label on the first visit, the simulation page has a finished run to show, and an expert's labels can
be checked against the catalogue's afterwards.

The bundled files are named after their class (g10_class_5_3.jpg), which would tell the expert the answer and make
any check of their labels empty, so the galaxies get neutral ids in a shuffled order (their database keys then say
nothing either). The split and the shuffle are seeded, so every demo database is the same.
"""

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from labeling.models import Dataset, FeatureSet, LabelSchema, QueueEntry, Simulation
from mlcore.active.query import DEFAULT_STRATEGY

IMPORTED_PER_CLASS = 3  # enough for the model's first predictions on every class, few enough to leave real work
SIMULATION = {"strategies": [DEFAULT_STRATEGY, "margin"], "initial": 10, "step": 10, "rounds": 6,
              "seeds": [0, 1, 2], "test_fraction": 0.25}


@dataclass(frozen=True)
class KnownLabels:
    imported: Path  # the catalogue with the held-back rows' labels blanked: what the import reads
    oracle: Path  # every row with its label: what the simulation and the checks read
    held_back: int


def known_labels_split(*, source: Path, out_dir: Path, per_class: int = IMPORTED_PER_CLASS,
                       id_prefix: str | None = None, seed: int = 0) -> KnownLabels:
    """Write the two halves of a folder catalogue (``file``, ``id``, ``label``, ``class_name`` columns) into
    ``out_dir``: the rows to import, where only the first ``per_class`` rows of each class keep their label, and the
    oracle, every labelled row. With ``id_prefix`` the rows are shuffled (seeded) and renamed ``<prefix>0001`` ...
    in that order, in both files. Rewritten on every call; the same source and seed give the same files."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = list(reader.fieldnames or []), list(reader)
    if id_prefix is not None:
        random.Random(seed).shuffle(rows)
        rows = [{**row, "id": f"{id_prefix}{number:04d}"} for number, row in enumerate(rows, start=1)]
        columns = columns if "id" in columns else ["id", *columns]
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    imported_rows, held_back = [], 0
    for row in rows:
        label = row.get("label", "")
        seen[label] = seen.get(label, 0) + 1
        if label and seen[label] > per_class:
            row = {**row, "label": "", "class_name": ""} if "class_name" in row else {**row, "label": ""}
            held_back += 1
        imported_rows.append(row)
    stem = source.parent.name
    imported, oracle = out_dir / f"{stem}-import.csv", out_dir / f"{stem}-oracle.csv"
    _write(imported, columns, imported_rows)
    _write(oracle, columns, [row for row in rows if row.get("label")])
    return KnownLabels(imported=imported, oracle=oracle, held_back=held_back)


def _write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def oracle_labels_by_id(oracle: Path) -> dict[str, str]:
    """External id (the ``id`` column, else the file's stem) -> known label."""
    with oracle.open(newline="") as handle:
        return {row.get("id") or Path(row["file"]).stem: row["label"] for row in csv.DictReader(handle)}


def demo_simulation(*, dataset: Dataset, feature_set: FeatureSet, oracle: Path, out_dir: Path) -> Simulation:
    """The finished run the simulation page shows from the start: the default strategy and margin against random,
    over three seeds, on the oracle's labels. Made once per dataset."""
    from labeling.services.learning.simulation import simulation_run

    existing = Simulation.objects.filter(dataset=dataset).order_by("pk").first()
    if existing is not None:
        return existing
    return simulation_run(dataset=dataset, feature_set=feature_set, oracle=oracle, out_dir=out_dir, **SIMULATION)


def demo_queue(*, dataset: Dataset, schema: LabelSchema, expert) -> int:
    """Fill the demo expert's queue now, so the labelling page has galaxies on the first visit without waiting for
    the worker. Returns the entries waiting."""
    from labeling.services.labelling.queue import queue_build

    pending = QueueEntry.objects.filter(expert=expert, dataset=dataset, schema=schema,
                                        status=QueueEntry.Status.PENDING)
    if not pending.exists():
        queue_build(dataset=dataset, schema=schema, experts=[expert])
    return pending.count()
