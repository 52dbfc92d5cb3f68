"""Bad Panoptes exports and mappings: the command fails naming the file, the row (and classification id) and the
field of every problem, and writes nothing; --skip-bad imports the good rows and lists the bad ones."""

import json

import pytest
from django.core.management import CommandError, call_command

from labeling.models import DecisionTree
from labeling.services.imports.panoptes_mapping import SHIPPED_MAPPINGS_DIR
from tests.labeling.panoptes_helpers import (
    EXCERPT,
    EXCERPT_GALAXIES,
    GZD5,
    GZD5_GALAXIES,
    V28_MAPPING,
    classification,
    edited,
    load_v28_tree,
    make_dataset,
    read_rows,
    run,
    snapshot,
    write_rows,
)

pytestmark = pytest.mark.django_db

V28 = ("--mapping", str(V28_MAPPING), "--subject-key", "nsa_id")


def failure(path, dataset, *options) -> list[str]:
    before = snapshot()
    with pytest.raises(CommandError) as caught:
        run(path, dataset, *options)
    assert snapshot() == before
    return str(caught.value).splitlines()


def gzd5_with(tmp_path, edit):
    make_dataset("GZD-5", GZD5_GALAXIES)
    return edited(GZD5, tmp_path / "export.csv", edit)


def annotations(row: dict, change) -> None:
    value = json.loads(row["annotations"])
    change(value)
    row["annotations"] = json.dumps(value)


def test_it_names_the_row_and_field_of_annotations_that_are_not_json(tmp_path):
    path = gzd5_with(tmp_path, lambda rows: rows[2].update(annotations='[{"task": "T0", "value": 0'))

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[0].startswith("export.csv, row 3 (classification 156463594), column 'annotations': not valid JSON")
    assert lines[-1] == "1 problem(s), nothing was imported"


def test_it_names_a_task_the_mapping_does_not_know(tmp_path):
    path = gzd5_with(tmp_path, lambda rows: annotations(rows[0], lambda a: a.append({"task": "T12", "value": 0})))

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[0] == ("export.csv, row 1 (classification 156463584), column 'annotations': unknown task 'T12': "
                        "not in mapping gz_decals.json (map it to a question, or to \"ignore\")")


def test_it_names_an_answer_index_out_of_range(tmp_path):
    path = gzd5_with(tmp_path, lambda rows: annotations(rows[1], lambda a: a[0].update(value=3)))

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[0] == ("export.csv, row 2 (classification 156463587), column 'annotations': task 'T0': answer "
                        "index 3 is out of range (the mapping gives 3 answers, 0 to 2)")


def test_it_names_the_real_labels_of_a_version_the_mapping_was_not_written_for():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    lines = failure(EXCERPT, "DR5", *V28, "--workflow-version", "55")

    # Version 55.121 rewrote the merger answers and made rare features a single choice.
    assert lines[0] == ("gz_decals_dr5_export_excerpt.csv, row 6 (classification 92948312), column 'annotations': "
                        "task 'T11': answer label 'Neither (No Merger & No Tidal Debris)' is none of the mapping's "
                        "labels for question 'merging'")


def test_it_names_a_subject_that_is_no_galaxy_of_the_dataset():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES[1:])

    lines = failure(EXCERPT, "DR5", *V28)

    assert lines[0] == ("gz_decals_dr5_export_excerpt.csv, row 1 (classification 91178981), column 'subject_data': "
                        "subject 15715879 is no galaxy of dataset 'DR5' (tried '189862')")


def test_it_says_which_keys_it_tried_when_the_subject_data_names_no_galaxy():
    load_v28_tree()
    make_dataset("DR5", EXCERPT_GALAXIES)

    lines = failure(EXCERPT, "DR5", "--mapping", str(V28_MAPPING))

    assert "column 'subject_data': subject 15715879 has none of the keys external_id, id_str, iauname" in lines[0]
    assert lines[0].endswith("to find its galaxy by; name the key with --subject-key")


def test_it_lists_every_bad_row_and_writes_nothing(tmp_path):
    def spoil(rows):
        rows[0]["created_at"] = "yesterday"
        rows[3]["subject_data"] = "{}"
        rows[5]["user_id"] = "admin"
        annotations(rows[6], lambda a: a.insert(0, {"task": "T0", "value": [0, 1]}))

    path = gzd5_with(tmp_path, spoil)

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[:-1] == [
        "export.csv, row 1 (classification 156463584), column 'created_at': 'yesterday' is not a date and time",
        "export.csv, row 4 (classification 156463607), column 'subject_data': no metadata for subject 28489095",
        "export.csv, row 6 (classification 156463626), column 'user_id': 'admin' is not a Panoptes user id",
        "export.csv, row 7 (classification 156463633), column 'annotations': task 'T0' gives 2 answers but "
        "question 'smooth-or-featured' takes one",
    ]


def test_skip_bad_imports_the_good_rows_and_lists_the_bad_ones(tmp_path):
    path = gzd5_with(tmp_path, lambda rows: annotations(rows[1], lambda a: a[0].update(value=7)))

    out = run(path, "GZD-5", "--mapping", "gz_decals", "--skip-bad")

    assert out.splitlines()[0] == ("skipped: export.csv, row 2 (classification 156463587), column 'annotations': "
                                   "task 'T0': answer index 7 is out of range (the mapping gives 3 answers, 0 to 2)")
    assert out.splitlines()[-1] == ("dataset 'GZD-5': 7 classifications imported, 0 already imported, 1 skipped, "
                                    "votes recounted for 7 galaxies")
    assert classification("156463584").answers["how-rounded"] == "round"


def test_a_walk_that_does_not_follow_the_tree_is_refused(tmp_path):
    # A smooth galaxy asked whether its disk is edge-on: the tree never gets there.
    path = gzd5_with(tmp_path, lambda rows: annotations(rows[0], lambda a: a.insert(1, {"task": "T2", "value": 0})))

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[0].endswith("column 'annotations': question 'disk-edge-on' was answered but the walk never reaches it")


def test_a_drawing_task_is_refused_unless_the_mapping_ignores_it(tmp_path):
    drawing = {"task": "T0", "value": [{"x": 212.5, "y": 201.0, "tool": 0, "frame": 0, "details": []}]}
    path = gzd5_with(tmp_path, lambda rows: annotations(rows[0], lambda a: a.__setitem__(0, drawing)))

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert "task 'T0' holds a drawing, survey or dropdown annotation" in lines[0]


def test_a_header_without_the_export_columns_fails_before_any_row(tmp_path):
    make_dataset("GZD-5", GZD5_GALAXIES)
    header, rows = read_rows(GZD5)
    header.remove("subject_data")
    path = write_rows(tmp_path / "export.csv", header, [{k: v for k, v in r.items() if k in header} for r in rows])

    lines = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert lines[0] == "export.csv, header, column 'subject_data': required column is missing"


def test_it_needs_the_dataset_to_exist():
    lines = failure(GZD5, "nowhere", "--mapping", "gz_decals")

    assert lines[0].startswith("no dataset named 'nowhere': import its galaxies first")


def test_a_mapping_is_checked_against_its_tree(tmp_path):
    make_dataset("GZD-5", GZD5_GALAXIES)
    mapping = json.loads((SHIPPED_MAPPINGS_DIR / "gz_decals.json").read_text())
    mapping["tasks"]["T4"]["answers"][1]["answer"] = "weakish"
    mapping["tasks"]["T6"]["question"] = "how-rounded"
    (tmp_path / "mine.json").write_text(json.dumps(mapping))

    lines = failure(GZD5, "GZD-5", "--mapping", str(tmp_path / "mine.json"))

    assert lines[:-1] == [
        "mine.json, tasks.T4.answers[1]: 'weakish' is not an answer of question 'bar' (strong, weak, no)",
        "mine.json, tasks.T6: question 'how-rounded' is also task T1",
        "mine.json, tasks.T6.answers[0]: 'tight' is not an answer of question 'how-rounded' (round, in-between, "
        "cigar-shaped)",
        "mine.json, tasks.T6.answers[1]: 'medium' is not an answer of question 'how-rounded' (round, in-between, "
        "cigar-shaped)",
        "mine.json, tasks.T6.answers[2]: 'loose' is not an answer of question 'how-rounded' (round, in-between, "
        "cigar-shaped)",
    ]
    assert not DecisionTree.objects.filter(name="gz_decals").exists()


def test_a_mapping_without_a_workflow_asks_for_one():
    make_dataset("GZ2", ["x"])

    lines = failure(GZD5, "GZ2", "--mapping", "gz2")

    assert lines[:-1] == ["gz2.json names no workflow: give --workflow-id",
                          "gz2.json names no workflow version: give --workflow-version (66 takes every 66.x)"]


def test_the_panoptes_options_go_with_the_panoptes_format_only():
    with pytest.raises(CommandError, match="needs --mapping"):
        run(GZD5, "GZD-5")
    with pytest.raises(CommandError, match="--mapping, --subject-key: only for --format panoptes"):
        call_command("import_votes", str(GZD5), "--dataset", "x", "--format", "gz-decals", "--mapping", "gz_decals",
                     "--subject-key", "iauname")


def test_a_row_cut_short_is_named_not_taken_for_another_workflow(tmp_path):
    make_dataset("GZD-5", GZD5_GALAXIES)
    lines = GZD5.read_text().splitlines()
    path = tmp_path / "export.csv"
    path.write_text("\n".join([*lines[:2], "156463587,,1882254,,6122", *lines[3:]]) + "\n")

    problems = failure(path, "GZD-5", "--mapping", "gz_decals")

    assert problems[0] == "export.csv, row 2 (classification 156463587): 5 fields but the header has 14"
