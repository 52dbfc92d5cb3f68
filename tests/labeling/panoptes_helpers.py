"""Helpers for the Panoptes export import tests: the real export rows in tests/labeling/imports/data/panoptes (see
SOURCE.md there), the galaxies they are classifications of, and the command run on them."""

import csv
import io
import json
from pathlib import Path

from django.core.management import call_command

from labeling.models import Galaxy, VolunteerClassification, VoteSummary
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.votes.trees import tree_load

DATA = Path(__file__).resolve().parent / "imports" / "data" / "panoptes"
EXCERPT = DATA / "gz_decals_dr5_export_excerpt.csv"  # real export rows, workflow 6122, versions 28.30 to 55.121
GZD5 = DATA / "gz_decals_gzd5_api_records.csv"  # real GZD-5 classifications (version 66.425), answer indices
V28_MAPPING = DATA / "gz_decals_dr5_v28_mapping.json"
# The NSA ids of the excerpt's subjects (subject_data's "nsa_id"), and the MaNGA galaxy of its version 55.121 row.
EXCERPT_GALAXIES = ["189862", "286096", "362563", "253408", "14345", "J030050.83-070523.4"]
GZD5_GALAXIES = ["J084322.59+042750.1", "J083126.95+051920.3", "J210319.32-002854.0", "J214244.05-084906.2",
                 "J002849.45-001500.4", "J122429.15+092139.8", "J171309.90+294409.6", "J204219.26-004740.5"]


def load_v28_tree():
    return tree_load(definition=json.loads((DATA / "gz_decals_dr5_v28_tree.json").read_text()))


def make_dataset(name: str, external_ids: list[str]):
    dataset = dataset_get_or_create(name=name)
    Galaxy.objects.bulk_create([Galaxy(dataset=dataset, external_id=external_id) for external_id in external_ids])
    return dataset


def run(path: Path, dataset: str, *options: str) -> str:
    out = io.StringIO()
    call_command("import_votes", str(path), "--dataset", dataset, "--format", "panoptes", *options, stdout=out)
    return out.getvalue()


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def edited(source: Path, target: Path, edit) -> Path:
    """``source`` written to ``target`` after ``edit(rows)`` changed its rows (dicts by column) in place."""
    header, rows = read_rows(source)
    edit(rows)
    return write_rows(target, header, rows)


def snapshot() -> dict:
    return {"classifications": VolunteerClassification.objects.count(), "summaries": VoteSummary.objects.count(),
            "galaxies": Galaxy.objects.count()}


def classification(external_id: str) -> VolunteerClassification:
    return VolunteerClassification.objects.select_related("galaxy").get(external_id=external_id)


def summaries(dataset: str, external_id: str) -> dict[str, VoteSummary]:
    return {s.question.key: s for s in VoteSummary.objects.filter(
        galaxy__dataset__name=dataset, galaxy__external_id=external_id, source="aggregated").select_related("question")}
