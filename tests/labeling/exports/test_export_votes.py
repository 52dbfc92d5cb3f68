"""The votes export: a dataset's vote summaries written in the Galaxy Zoo layout they came in, which import_votes
reads back into the same summaries (the round trip of issue 6), for each of the three layouts. The whole real
Stripe 82 table's round trip is part of its import test (test_import_votes.py), which imports it anyway."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Dataset, Galaxy, VoteSummary
from labeling.services.exports import votes as export_votes
from labeling.services.exports.streams import export_lines, export_rows
from labeling.services.votes.aggregation import classification_create
from labeling.services.votes.trees import tree_get_or_load_shipped, tree_load
from tests.labeling.factories import make_galaxies
from tests.labeling.vote_import_helpers import (
    FEATURED,
    KAGGLE_HEADER,
    SMOOTH,
    SPIRAL,
    SPIRAL_REACH,
    decals_header,
    decals_row,
    gz2_answers,
    kaggle_row,
    read_table,
    run,
    stripe82,
    write_decals,
    write_table,
)

pytestmark = pytest.mark.django_db

STRIPE82_METADATA = ("sample", "total_votes", "total_classifications")
DECALS_METADATA = ("redshift", "elpetro_absmag_r", "upload_group", "wrong_size_statistic", "wrong_size_warning",
                   "png_loc")
SMOOTH_ROUND = {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a16_completely_round", "t06_odd": "a15_no"}
DISK_EDGE_ON = {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a04_yes",
                "t09_bulge_shape": "a25_rounded", "t06_odd": "a15_no"}
DECALS_SMOOTH = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
DECALS_BARRED = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "strong",
                 "has-spiral-arms": "no", "bulge-size": "small", "merging": "minor-disturbance"}


def exported(dataset_name: str, folder, *options: str, fmt: str = "csv"):
    """The votes export of a dataset as written by the command: (path, header, rows)."""
    out = folder / f"{dataset_name.replace(' ', '_')}-votes.{fmt}"
    call_command("export", "--dataset", dataset_name, "--what", "votes", "--format", fmt, "--out", str(out),
                 *options, stderr=io.StringIO())
    text = out.read_text(encoding="utf-8")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        return out, list(rows[0]) if rows else [], rows
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return out, reader.fieldnames, rows


def summaries(dataset_name: str) -> dict[tuple[str, str], tuple]:
    """(external id, question) -> (counts, total, fractions, reach, extra) of every summary of the dataset."""
    return {(galaxy, question): tuple(values) for galaxy, question, *values in VoteSummary.objects.filter(
        galaxy__dataset__name=dataset_name).values_list("galaxy__external_id", "question__key", "counts", "total",
                                                          "fractions", "reach", "extra")}


def coordinates(dataset_name: str) -> dict[str, tuple]:
    return {external_id: (ra, dec) for external_id, ra, dec in Galaxy.objects.filter(
        dataset__name=dataset_name).values_list("external_id", "ra", "dec")}


def round_trip(path, fmt: str, tmp_path) -> tuple[list[str], dict, dict]:
    """Import ``path`` as "original", export its votes, import that file as "copy": (exported header, original
    summaries, copied summaries)."""
    run(path, fmt, "original")
    out, header, _ = exported("original", tmp_path)
    run(out, fmt, "copy")
    assert coordinates("copy") == coordinates("original")
    return header, summaries("original"), summaries("copy")


def gz2_counts_row(external_id: str, counts: dict[str, dict[str, int]]) -> list:
    """A GZ2 table row with counts only; answers not in ``counts`` have none."""
    return [external_id, *(counts.get(q, {}).get(a, 0) for q, a in gz2_answers())]


GZ2_COUNTS_HEADER = ["objid", *(f"{q}_{a}_count" for q, a in gz2_answers())]


# The round trip, one test per layout --------------------------------------------------------------------------------


def test_real_gz2_stripe82_votes_come_back_as_the_same_summaries_in_the_same_columns(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=300)
    path = write_table(tmp_path / "stripe82_300.csv", header, rows)

    exported_header, original, copy = round_trip(path, "gz2-table", tmp_path)

    assert len(original) == 300 * 11
    assert copy == original  # counts, totals, fractions, reach and every published column, to the last bit
    # Exactly the table's vote columns, in its order; its other columns are galaxy metadata, not votes.
    assert exported_header == [column for column in header if column not in STRIPE82_METADATA]


def test_kaggle_solutions_come_back_as_the_same_fractions_and_reach(tmp_path):
    smooth = {"t01_smooth_or_features": {"a01_smooth": 0.9, "a03_star_or_artifact": 0.1},
              "t07_rounded": {"a16_completely_round": 0.7, "a18_cigar_shaped": 0.3}, "t06_odd": {"a15_no": 1.0}}
    path = write_table(tmp_path / "training_solutions_rev1.csv", KAGGLE_HEADER, [
        kaggle_row(100008, SPIRAL, SPIRAL_REACH),
        kaggle_row(100023, smooth, {"t01_smooth_or_features": 1.0, "t07_rounded": 0.9, "t06_odd": 0.9}),
    ])

    header, original, copy = round_trip(path, "gz2-kaggle", tmp_path)

    assert header == KAGGLE_HEADER
    assert copy.keys() == original.keys() and len(original) == 2 * 11
    for key, (counts, total, fractions, reach, extra) in original.items():
        copied = copy[key]
        assert copied[:2] == (counts, total) == (None, None) and copied[4] == extra == {}
        # Kaggle publishes products (fraction x reach) that the import divides again: equal to rounding error.
        assert copied[2] == pytest.approx(fractions, rel=1e-12, abs=1e-15), key
        assert copied[3] == pytest.approx(reach, rel=1e-12, abs=1e-15), key


def test_gz_decals_votes_come_back_with_the_questions_each_galaxy_was_asked(tmp_path):
    path = write_decals(tmp_path / "gz_decals_volunteers_5.csv", [
        decals_row("J000000.80+004200.0", FEATURED), decals_row("J000001.29-001535.5", SMOOTH, ra=0.0054),
    ])

    header, original, copy = round_trip(path, "gz-decals", tmp_path)

    assert copy == original
    assert len([key for key in original if key[0] == "J000001.29-001535.5"]) == 4  # not asked: not there
    assert header == [column for column in decals_header() if column not in DECALS_METADATA]


# Votes aggregated here -------------------------------------------------------------------------------------------


def test_votes_aggregated_here_export_as_a_gz2_table_that_imports_as_the_same_counts(volunteer, tmp_path):
    tree = tree_get_or_load_shipped(name="gz2")
    first, second = make_galaxies(2, dataset_name="classified here")
    Galaxy.objects.filter(pk=first.pk).update(ra=150.25, dec=2.5)
    for galaxy, walks in ((first, [SMOOTH_ROUND] * 3 + [DISK_EDGE_ON]), (second, [DISK_EDGE_ON])):
        for answers in walks:
            classification_create(galaxy=galaxy, tree=tree, answers=answers, user=volunteer)

    out, header, rows = exported("classified here", tmp_path)
    run(out, "gz2-table", "copy")

    assert header[:5] == ["objid", "ra", "dec", "t01_smooth_or_features_a01_smooth_count",
                          "t01_smooth_or_features_a01_smooth_fraction"]
    assert [(row["objid"], row["ra"], row["t01_smooth_or_features_a01_smooth_count"]) for row in rows] == [
        ("g0", "150.25", "3"), ("g1", "", "0")]
    original, copy = summaries("classified here"), summaries("copy")
    assert copy.keys() == original.keys() and len(copy) == 2 * 11
    for key, (counts, total, fractions, reach, extra) in original.items():
        assert extra == {}
        # The fraction column a GZ2 table always has comes back as a published column.
        assert copy[key] == (counts, total, fractions, reach, {"fraction": fractions}), key


def test_votes_aggregated_on_the_gz_decals_tree_export_as_a_gz_decals_catalogue(volunteer, tmp_path):
    tree = tree_get_or_load_shipped(name="gz_decals")
    (galaxy,) = make_galaxies(1, dataset_name="decals here")
    for answers in (DECALS_SMOOTH, DECALS_BARRED, DECALS_BARRED):
        classification_create(galaxy=galaxy, tree=tree, answers=answers, user=volunteer)

    out, header, rows = exported("decals here", tmp_path)
    run(out, "gz-decals", "copy")

    assert header[:4] == ["iauname", "smooth-or-featured_total-votes", "smooth-or-featured_smooth",
                          "smooth-or-featured_smooth_fraction"]
    assert rows[0]["bar_strong"] == "2" and rows[0]["bar_total-votes"] == "2"
    original, copy = summaries("decals here"), summaries("copy")
    assert {key: value[:4] for key, value in copy.items()} == {key: value[:4] for key, value in original.items()}


# Choosing the layout and the source ----------------------------------------------------------------------------


def test_a_dataset_with_votes_in_two_layouts_asks_which_and_exports_the_one_named(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=3)
    run(write_table(tmp_path / "gz2.csv", header, rows), "gz2-table", "mixed")
    run(write_decals(tmp_path / "decals.csv", [decals_row("J1", FEATURED), decals_row("J2", SMOOTH)]), "gz-decals",
        "mixed")
    dataset = Dataset.objects.get(name="mixed")

    message = ("dataset 'mixed' holds votes in 2 layouts: gz-decals (catalogue); gz2-table (catalogue); choose one "
               "with layout (--layout)")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_rows(dataset=dataset, what="votes")
    with pytest.raises(CommandError, match="holds votes in 2 layouts"):
        exported("mixed", tmp_path)

    _, decals, decals_rows = exported("mixed", tmp_path, "--layout", "gz-decals")
    _, gz2, gz2_rows = exported("mixed", tmp_path, "--layout", "gz2-table")
    assert [row["iauname"] for row in decals_rows] == ["J1", "J2"] and decals[0] == "iauname"
    assert [row["objid"] for row in gz2_rows] == [row[0] for row in rows] and gz2[0] == "objid"
    # A layout the dataset has no votes in: its header alone.
    _, kaggle, kaggle_rows = exported("mixed", tmp_path, "--layout", "gz2-kaggle")
    assert kaggle == KAGGLE_HEADER and kaggle_rows == []


def test_a_galaxy_with_imported_and_aggregated_votes_exports_the_source_with_more_volunteers(volunteer, tmp_path):
    few = {"t01_smooth_or_features": {"a02_features_or_disk": 1}, "t02_edgeon": {"a04_yes": 1},
           "t09_bulge_shape": {"a25_rounded": 1}, "t06_odd": {"a15_no": 1}}
    many = {"t01_smooth_or_features": {"a01_smooth": 9}, "t07_rounded": {"a17_in_between": 9},
            "t06_odd": {"a15_no": 9}}
    run(write_table(tmp_path / "gz2.csv", GZ2_COUNTS_HEADER, [gz2_counts_row("g0", few), gz2_counts_row("g1", many)]),
        "gz2-table", "both")
    tree = tree_get_or_load_shipped(name="gz2")
    for galaxy in Galaxy.objects.filter(dataset__name="both"):
        for answers in [SMOOTH_ROUND] * 3:
            classification_create(galaxy=galaxy, tree=tree, answers=answers, user=volunteer)

    _, _, rows = exported("both", tmp_path)

    smooth = "t01_smooth_or_features_a01_smooth_count"
    assert [(row["objid"], row[smooth]) for row in rows] == [("g0", "3"), ("g1", "9")]  # aggregated, catalogue


def test_exports_without_votes_to_give_are_refused_with_the_reason(tmp_path):
    (galaxy,) = make_galaxies(1, dataset_name="no votes")

    with pytest.raises(ValueError, match="dataset 'no votes' has no volunteer votes in a Galaxy Zoo layout$"):
        export_rows(dataset=galaxy.dataset, what="votes")
    with pytest.raises(CommandError, match="has no volunteer votes"):
        exported("no votes", tmp_path)
    with pytest.raises(ValueError, match="unknown vote layout 'gz3'; one of gz2-table, gz2-kaggle, gz-decals"):
        export_rows(dataset=galaxy.dataset, what="votes", layout="gz3")
    with pytest.raises(ValueError, match="a layout applies to the votes export only, not to 'labels'"):
        export_rows(dataset=galaxy.dataset, what="labels", layout="gz2-table")
    with pytest.raises(CommandError, match="invalid choice: 'gz3'"):
        exported("no votes", tmp_path, "--layout", "gz3")


def test_votes_of_a_tree_without_a_galaxy_zoo_layout_are_named_and_left_out(volunteer, tmp_path):
    shape = tree_load(definition={"name": "shape", "questions": [
        {"key": "round", "answers": [{"key": "yes"}, {"key": "no"}]}]})
    (galaxy,) = make_galaxies(1, dataset_name="own tree")
    classification_create(galaxy=galaxy, tree=shape, answers={"round": "yes"}, user=volunteer)

    with pytest.raises(ValueError, match=r"has no volunteer votes in a Galaxy Zoo layout \(its votes are of tree "
                                         r"shape, which no Galaxy Zoo layout names\)"):
        export_rows(dataset=galaxy.dataset, what="votes")

    classification_create(galaxy=galaxy, tree=tree_get_or_load_shipped(name="gz2"), answers=SMOOTH_ROUND,
                          user=volunteer)
    _, header, rows = exported("own tree", tmp_path)  # the gz2 votes alone: no layout to choose
    assert header[0] == "objid" and not [column for column in header if column.startswith("round")]
    assert [row["t01_smooth_or_features_a01_smooth_count"] for row in rows] == ["1"]


# Streaming and JSON Lines ------------------------------------------------------------------------------------------


def test_votes_are_read_a_chunk_of_galaxies_at_a_time_in_galaxy_order(volunteer, monkeypatch):
    tree = tree_get_or_load_shipped(name="gz2")
    galaxies = make_galaxies(5, dataset_name="chunked")
    for galaxy in galaxies:
        classification_create(galaxy=galaxy, tree=tree, answers=SMOOTH_ROUND, user=volunteer)
    monkeypatch.setattr(export_votes, "CHUNK", 2)
    rows, _ = export_rows(dataset=galaxies[0].dataset, what="votes")

    def summary_queries(captured) -> int:  # those that read summaries, not those that only check some exist
        return sum(1 for query in captured.captured_queries
                   if query["sql"].split(" FROM ", 1)[1].startswith('"labeling_votesummary"'))

    with CaptureQueriesContext(connection) as first:
        head = next(rows)
    with CaptureQueriesContext(connection) as rest:
        tail = list(rows)

    assert summary_queries(first) == 1  # only the first chunk's summaries were read for the first row
    assert summary_queries(rest) == 2
    assert [row["objid"] for row in [head, *tail]] == [f"g{i}" for i in range(5)]


def test_json_lines_have_the_csv_columns_as_keys_and_the_same_values(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=5)
    run(write_table(tmp_path / "gz2.csv", header, rows), "gz2-table", "five")

    _, csv_header, csv_rows = exported("five", tmp_path)
    _, _, json_rows = exported("five", tmp_path, fmt="jsonl")

    assert [list(row) for row in json_rows] == [csv_header] * 5
    as_text = [{key: "" if value is None else str(value) for key, value in row.items()} for row in json_rows]
    assert as_text == csv_rows
    assert isinstance(json_rows[0]["t01_smooth_or_features_a01_smooth_count"], int)


def test_export_lines_of_votes_stream_the_header_with_the_first_row(demo_data, tmp_path):
    header, rows = read_table(stripe82(demo_data), limit=2)
    run(write_table(tmp_path / "gz2.csv", header, rows), "gz2-table", "two")
    rows_out, columns = export_rows(dataset=Dataset.objects.get(name="two"), what="votes")

    lines = list(export_lines(rows=rows_out, columns=columns, fmt="csv"))

    assert len(lines) == 2 and lines[0].count("\n") == 2 and lines[0].startswith("objid,ra,dec,t01_")
