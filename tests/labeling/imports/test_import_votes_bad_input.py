"""Bad vote catalogues: the command exits with status 1, every problem line names the file, the row (1-based data
row and the galaxy's id) and the column, and nothing is written; --skip-bad imports the good rows instead."""

import gzip
from pathlib import Path

import pytest
from django.core.management import CommandError

from labeling.models import Dataset
from tests.labeling.vote_import_helpers import (
    FEATURED,
    KAGGLE_HEADER,
    SMOOTH,
    SPIRAL,
    SPIRAL_REACH,
    decals_header,
    decals_row,
    kaggle_row,
    read_table,
    run,
    snapshot,
    stored,
    stripe82,
    write_decals,
    write_table,
)

pytestmark = pytest.mark.django_db


def gz2_file(demo_data: Path, tmp_path: Path, edit=None, *, rows: int = 5) -> tuple[Path, list[list[str]]]:
    """The first ``rows`` galaxies of the real Stripe 82 table as gz2.csv, after ``edit(header, rows)``."""
    header, data = read_table(stripe82(demo_data), limit=rows)
    if edit:
        edit(header, data)
    return write_table(tmp_path / "gz2.csv", header, data), data


def set_cell(row: int, column: str, value: str):
    def edit(header, rows):
        rows[row - 1][header.index(column)] = value
    return edit


def add_column(name: str, value: str = "0"):
    def edit(header, rows):
        header.append(name)
        for row in rows:
            row.append(value)
    return edit


def drop_column(name: str):
    def edit(header, rows):
        index = header.index(name)
        del header[index]
        for row in rows:
            del row[index]
    return edit


GZ2_CASES = {
    "negative count": (set_cell(3, "t03_bar_a06_bar_count", "-2"),
                       "row 3 (id {id3}), column 't03_bar_a06_bar_count': '-2': a vote count cannot be negative"),
    "non-numeric count": (set_cell(2, "t04_spiral_a08_spiral_count", "lots"),
                          "row 2 (id {id2}), column 't04_spiral_a08_spiral_count': 'lots' is not a number"),
    "fractional count": (set_cell(2, "t04_spiral_a08_spiral_count", "2.5"),
                         "row 2 (id {id2}), column 't04_spiral_a08_spiral_count': '2.5' is not a whole number"),
    "empty count": (set_cell(4, "t06_odd_a14_yes_count", ""),
                    "row 4 (id {id4}), column 't06_odd_a14_yes_count': no vote count while other answers of the "
                    "question have one"),
    "fraction above one": (set_cell(1, "t01_smooth_or_features_a01_smooth_fraction", "1.7"),
                           "row 1 (id {id1}), column 't01_smooth_or_features_a01_smooth_fraction': '1.7' is "
                           "outside 0..1"),
    "negative debiased fraction": (set_cell(5, "t09_bulge_shape_a25_rounded_debiased", "-0.1"),
                                   "row 5 (id {id5}), column 't09_bulge_shape_a25_rounded_debiased': '-0.1' is "
                                   "outside 0..1"),
    "ra outside 0..360": (set_cell(2, "ra", "361.5"), "row 2 (id {id2}), column 'ra': 361.5 is outside [0, 360)"),
    "declination not a number": (set_cell(3, "dec", "south"), "row 3 (id {id3}), column 'dec': 'south' is not a "
                                                              "number"),
    "duplicate id": (set_cell(4, "objid", "{id2}"),
                     "row 4 (id {id2}), column 'objid': id {id2} is also used by row 2"),
    "empty id": (set_cell(2, "objid", ""), "row 2, column 'objid': empty id"),
    "unknown answer column": (add_column("t01_smooth_or_features_a99_bar_count"),
                              "header, column 't01_smooth_or_features_a99_bar_count': unknown answer"),
    "unknown question column": (add_column("t12_foo_a99_bar_count"),
                                "header, column 't12_foo_a99_bar_count': unknown question"),
    "missing count column": (drop_column("t02_edgeon_a05_no_count"),
                             "header, column 't02_edgeon_a05_no_count': required column is missing"),
    "missing id column": (drop_column("objid"),
                          "header: required id column is missing (one of 'objid' or 'dr7objid' or 'id')"),
    "repeated column": (add_column("ra", "12.0"), "header, column 'ra': column appears twice"),
}


@pytest.mark.parametrize("case", GZ2_CASES)
def test_a_bad_gz2_table_fails_naming_file_row_and_column_and_writes_nothing(case, demo_data, tmp_path):
    edit, expected = GZ2_CASES[case]
    _, original = read_table(stripe82(demo_data), limit=5)
    ids = {f"id{n}": repr(row[0]) for n, row in enumerate(original, start=1)}
    if case == "duplicate id":
        edit = set_cell(4, "objid", original[1][0])
    path, _ = gz2_file(demo_data, tmp_path, edit)
    before = snapshot()

    with pytest.raises(CommandError) as failure:
        run(path, "gz2-table", "Stripe 82")

    assert failure.value.returncode == 1
    message = str(failure.value)
    assert f"gz2.csv, {expected.format(**ids)}" in message
    assert message.endswith("problem(s), nothing was imported")
    assert snapshot() == before
    assert not Dataset.objects.filter(name="Stripe 82").exists()


def test_every_missing_column_is_listed_at_once(demo_data, tmp_path):
    def edit(header, rows):
        drop_column("t02_edgeon_a05_no_count")(header, rows)
        drop_column("t11_arms_number_a37_cant_tell_count")(header, rows)

    path, _ = gz2_file(demo_data, tmp_path, edit)

    with pytest.raises(CommandError) as failure:
        run(path, "gz2-table")

    assert str(failure.value).splitlines() == [
        "gz2.csv, header, column 't02_edgeon_a05_no_count': required column is missing",
        "gz2.csv, header, column 't11_arms_number_a37_cant_tell_count': required column is missing",
        "2 problem(s), nothing was imported",
    ]


def write_kaggle(tmp_path: Path, edit=None) -> Path:
    header, rows = list(KAGGLE_HEADER), [kaggle_row(100008, SPIRAL, SPIRAL_REACH), kaggle_row(100023, SPIRAL,
                                                                                             SPIRAL_REACH)]
    if edit:
        edit(header, rows)
    return write_table(tmp_path / "training_solutions_rev1.csv", header, rows)


KAGGLE_CASES = {
    "unknown question": (add_column("Class12.1"), "header, column 'Class12.1': unknown question"),
    "unknown answer": (add_column("Class1.4"), "header, column 'Class1.4': unknown answer"),
    "probability above one": (set_cell(2, "Class4.1", "1.2"),
                              "row 2 (id '100023'), column 'Class4.1': '1.2' is outside 0..1"),
    "missing probability": (set_cell(1, "Class2.2", ""), "row 1 (id '100008'), column 'Class2.2': no probability"),
    "missing column": (drop_column("Class11.6"), "header, column 'Class11.6': required column is missing"),
    "missing id column": (drop_column("GalaxyID"), "header: required id column is missing (one of 'GalaxyID')"),
}


@pytest.mark.parametrize("case", KAGGLE_CASES)
def test_a_bad_kaggle_file_fails_naming_file_row_and_column_and_writes_nothing(case, tmp_path):
    edit, expected = KAGGLE_CASES[case]
    path = write_kaggle(tmp_path, edit)
    before = snapshot()

    with pytest.raises(CommandError) as failure:
        run(path, "gz2-kaggle")

    assert f"training_solutions_rev1.csv, {expected}" in str(failure.value)
    assert snapshot() == before


def decals_with(edit) -> tuple[list[str], list[dict]]:
    header, rows = decals_header(), [decals_row("J000000.80+004200.0", FEATURED), decals_row("J000001.29-0015", SMOOTH)]
    edit(header, rows)
    return header, rows


DECALS_CASES = {
    "unknown answer": (lambda header, rows: header.append("bar_medium"),
                       "header, column 'bar_medium': unknown answer 'medium' to question 'bar'"),
    "unknown question": (lambda header, rows: header.append("has-rings_yes"),
                         "header, column 'has-rings_yes': unknown question 'has-rings'"),
    "unknown question-level column": (lambda header, rows: header.append("bar_proportion-asked"),
                                      "header, column 'bar_proportion-asked': unknown answer 'proportion-asked'"),
    "total that does not add up": (lambda header, rows: rows[0].update({"smooth-or-featured_total-votes": 41}),
                                   "row 1 (id 'J000000.80+004200.0'), column 'smooth-or-featured_total-votes': 41 "
                                   "votes in total but the answer counts add up to 40"),
    "one answer missing": (lambda header, rows: rows[1].update({"merging_merger": "nan"}),
                           "row 2 (id 'J000001.29-0015'), column 'merging_merger': no vote count while other answers "
                           "of the question have one"),
    "missing answer column": (lambda header, rows: header.remove("bar_weak"),
                              "header, column 'bar_weak': required column is missing"),
}


@pytest.mark.parametrize("case", DECALS_CASES)
def test_a_bad_gz_decals_catalogue_fails_naming_file_row_and_column_and_writes_nothing(case, tmp_path):
    edit, expected = DECALS_CASES[case]
    header, rows = decals_with(edit)
    path = write_decals(tmp_path / "gz_decals_volunteers_5.csv", rows, header)
    before = snapshot()

    with pytest.raises(CommandError) as failure:
        run(path, "gz-decals")

    assert f"gz_decals_volunteers_5.csv, {expected}" in str(failure.value)
    assert snapshot() == before


def test_files_that_cannot_be_read_fail_with_their_name_and_write_nothing(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(",".join(KAGGLE_HEADER) + "\n")
    not_gzip = tmp_path / "votes.csv.gz"
    not_gzip.write_text("objid,ra\n1,2\n")
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(",".join(KAGGLE_HEADER).encode() * 200)[:300])
    before = snapshot()

    for path, expected in [
        (empty, "empty.csv: the file is empty"),
        (header_only, "header_only.csv: no data rows below the header"),
        (not_gzip, "votes.csv.gz: not a readable gzip file"),
        (truncated, "cut.csv.gz: not a readable gzip file"),
        (tmp_path / "nowhere.csv", "nowhere.csv: no such file"),
    ]:
        with pytest.raises(CommandError, match=expected):
            run(path, "gz2-kaggle")
    assert snapshot() == before


def test_skip_bad_imports_the_good_rows_and_prints_every_skipped_row_with_its_reason(demo_data, tmp_path):
    def edit(header, rows):
        rows[1][header.index("t01_smooth_or_features_a02_features_or_disk_count")] = "-1"
        rows[3][header.index("objid")] = rows[0][0]

    path, rows = gz2_file(demo_data, tmp_path, edit)

    lines = run(path, "gz2-table", "votes", "--skip-bad").strip().splitlines()

    assert lines == [
        f"skipped: gz2.csv, row 2 (id {rows[1][0]!r}), column 't01_smooth_or_features_a02_features_or_disk_count': "
        "'-1': a vote count cannot be negative",
        f"skipped: gz2.csv, row 4 (id {rows[0][0]!r}), column 'objid': id {rows[0][0]!r} is also used by row 1",
        "dataset 'votes': 3 created, 0 updated, 0 unchanged, 2 skipped",
    ]
    assert sorted(stored("votes", rows[0][0])) != [] and stored("votes", rows[1][0]) == {}
    assert snapshot()["galaxies"] == 3 and snapshot()["summaries"] == 33


def test_skip_bad_does_not_skip_a_bad_header(demo_data, tmp_path):
    path, _ = gz2_file(demo_data, tmp_path, add_column("t01_smooth_or_features_a99_bar_count"))

    with pytest.raises(CommandError, match="unknown answer"):
        run(path, "gz2-table", "votes", "--skip-bad")
    assert snapshot()["datasets"] == 0
