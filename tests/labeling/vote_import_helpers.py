"""Helpers shared by the vote import tests: small real-looking catalogues in each layout, and what the database
holds."""

import csv
import gzip
import io
import json
from pathlib import Path

from django.core.management import call_command
from django.db.models import Max

from labeling.models import Dataset, Galaxy, VoteSummary

TREES = Path(__file__).resolve().parents[2] / "labeling" / "trees"
GZ2_TREE = json.loads((TREES / "gz2.json").read_text())
DECALS_TREE = json.loads((TREES / "gz_decals.json").read_text())


def stripe82(demo_data: Path) -> Path:
    return demo_data / "gz2_stripe82" / "gz2_table5_stripe82_votes.csv.gz"


def read_table(path: Path, limit: int | None = None) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for _, row in zip(range(limit), reader, strict=False)] if limit else list(reader)
    return header, rows


def write_table(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def snapshot() -> dict:
    return {"datasets": Dataset.objects.count(), "galaxies": Galaxy.objects.count(),
            "summaries": VoteSummary.objects.count(), "last_update": VoteSummary.objects.aggregate(Max("updated_at"))}


def run(path: Path, fmt: str, dataset: str = "votes", *options: str) -> str:
    out = io.StringIO()
    call_command("import_votes", str(path), "--dataset", dataset, "--format", fmt, *options, stdout=out)
    return out.getvalue()


def stored(dataset: str, external_id: str) -> dict[str, VoteSummary]:
    return {s.question.key: s for s in VoteSummary.objects.filter(
        galaxy__dataset__name=dataset, galaxy__external_id=external_id).select_related("question")}


def gz2_answers() -> list[tuple[str, str]]:
    return [(q["key"], a["key"]) for q in GZ2_TREE["questions"] for a in q["answers"]]


def kaggle_row(galaxy_id: int, conditional: dict[str, dict[str, float]], reached: dict[str, float]) -> list:
    """One training_solutions_rev1 row: each answer's share among those who reached the question, times the share
    of volunteers who reached it, as the Kaggle challenge published them (6 decimals)."""
    values = [galaxy_id]
    for question in GZ2_TREE["questions"]:
        for answer in question["answers"]:
            share = conditional.get(question["key"], {}).get(answer["key"], 0.0)
            values.append(round(share * reached.get(question["key"], 0.0), 6))
    return values


KAGGLE_HEADER = ["GalaxyID"] + [a["aliases"]["kaggle"] for q in GZ2_TREE["questions"] for a in q["answers"]]
SPIRAL = {
    "t01_smooth_or_features": {"a01_smooth": 0.383, "a02_features_or_disk": 0.617},
    "t02_edgeon": {"a05_no": 1.0},
    "t03_bar": {"a06_bar": 0.2, "a07_no_bar": 0.8},
    "t04_spiral": {"a08_spiral": 0.68, "a09_no_spiral": 0.32},
    "t05_bulge_prominence": {"a11_just_noticeable": 0.7, "a12_obvious": 0.3},
    "t06_odd": {"a14_yes": 0.05, "a15_no": 0.95},
    "t07_rounded": {"a16_completely_round": 0.5, "a17_in_between": 0.5},
    "t08_odd_feature": {"a19_ring": 1.0},
    "t10_arms_winding": {"a28_tight": 0.45, "a29_medium": 0.3, "a30_loose": 0.25},
    "t11_arms_number": {"a32_2": 0.6, "a33_3": 0.3, "a37_cant_tell": 0.1},
}
SPIRAL_REACH = {"t01_smooth_or_features": 1.0, "t02_edgeon": 0.617, "t03_bar": 0.617, "t04_spiral": 0.617,
                "t05_bulge_prominence": 0.617, "t06_odd": 1.0, "t07_rounded": 0.383, "t08_odd_feature": 0.05,
                "t10_arms_winding": 0.41956, "t11_arms_number": 0.41956}


DECALS_EXTRA_COLUMNS = ["iauname", "ra", "dec", "redshift", "elpetro_absmag_r", "upload_group",
                        "wrong_size_statistic", "wrong_size_warning", "png_loc"]


def decals_header() -> list[str]:
    header = list(DECALS_EXTRA_COLUMNS)
    for question in DECALS_TREE["questions"]:
        header.append(f"{question['key']}_total-votes")
        for answer in question["answers"]:
            header += [f"{question['key']}_{answer['key']}" + suffix for suffix in ("", "_fraction", "_debiased")]
    return header


def decals_row(name: str, votes: dict[str, dict[str, int]], **extra) -> dict:
    """A catalogue row; questions missing from ``votes`` are NaN, as for galaxies outside that workflow."""
    row = {"iauname": name, "ra": 0.0034, "dec": 0.7, "redshift": 0.0735, "elpetro_absmag_r": -21.4,
           "upload_group": "dr5_pre_active", "wrong_size_statistic": 0.97, "wrong_size_warning": "False",
           "png_loc": f"/dr5/J000/{name}.png", **extra}
    for question in DECALS_TREE["questions"]:
        counts = votes.get(question["key"])
        total = sum(counts.values()) if counts is not None else None
        row[f"{question['key']}_total-votes"] = "nan" if counts is None else total
        for answer in question["answers"]:
            count = None if counts is None else counts.get(answer["key"], 0)
            prefix = f"{question['key']}_{answer['key']}"
            row[prefix] = "nan" if count is None else count
            row[f"{prefix}_fraction"] = "nan" if not total else round(count / total, 6)
            row[f"{prefix}_debiased"] = "nan" if not total else round(count / total * 0.9, 6)
    return row


FEATURED = {
    "smooth-or-featured": {"smooth": 8, "featured-or-disk": 30, "artifact": 2},
    "disk-edge-on": {"yes": 2, "no": 28},
    "has-spiral-arms": {"yes": 25, "no": 3},
    "bar": {"strong": 3, "weak": 10, "no": 15},
    "bulge-size": {"large": 4, "moderate": 14, "small": 10},
    "how-rounded": {"round": 5, "in-between": 3},
    "edge-on-bulge": {"rounded": 2},
    "spiral-winding": {"tight": 5, "medium": 12, "loose": 8},
    "spiral-arm-count": {"2": 17, "cant-tell": 8},
    "merging": {"none": 36, "minor-disturbance": 4},
}
SMOOTH = {"smooth-or-featured": {"smooth": 35, "featured-or-disk": 4, "artifact": 1},
          "how-rounded": {"round": 30, "in-between": 5}, "disk-edge-on": {"yes": 0, "no": 4},
          "merging": {"none": 40}}


def write_decals(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or decals_header()
    return write_table(path, header, [[row.get(column, "") for column in header] for row in rows])
