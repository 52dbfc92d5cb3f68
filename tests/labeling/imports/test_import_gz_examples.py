import shutil

import pytest

from labeling.models import ExpertLabel, Galaxy, LabelSchema
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.import_helpers import read_csv, snapshot, write_csv

pytestmark = pytest.mark.django_db


def _expected(rows):
    return {
        "galaxies": {row["git_blob"] for row in rows},
        "schemas": {f"gz-examples-{row['tree']}-q{row['question_index']}" for row in rows},
        # One label per galaxy and question: a galaxy that exemplifies two answers of one checkbox question keeps
        # the first.
        "labels": {(row["git_blob"], f"gz-examples-{row['tree']}-q{row['question_index']}") for row in rows},
    }


def test_it_imports_the_sloan_examples_one_galaxy_per_blob_and_a_schema_per_question(demo_data):
    rows = read_csv(demo_data / "gz_examples_sloan" / "labels.csv")
    expected = _expected(rows)

    report = galaxies_import(dataset_name="SDSS examples", fmt="gz-examples", path=demo_data / "gz_examples_sloan")

    assert (report.created, report.labels_created) == (len(expected["galaxies"]), 83)
    assert set(Galaxy.objects.values_list("external_id", flat=True)) == expected["galaxies"]
    assert set(LabelSchema.objects.values_list("name", flat=True)) == expected["schemas"]
    assert len(expected["schemas"]) == 10
    labels = ExpertLabel.objects.select_related("galaxy", "schema", "label_class")
    assert {(label.galaxy.external_id, label.schema.name, label.label_class.key) for label in labels} == {
        (row["git_blob"], f"gz-examples-sloan-q{row['question_index']}", row["answer_index"]) for row in rows}
    assert {label.provenance for label in labels} == {"imported from labels.csv"}


def test_each_question_schema_is_titled_by_tree_and_question_with_the_answers_as_classes(demo_data):
    galaxies_import(dataset_name="s", fmt="gz-examples", path=demo_data / "gz_examples_sloan")
    schema = LabelSchema.objects.get(name="gz-examples-sloan-q0")
    assert schema.title == "sloan: Shape — Is the galaxy simply smooth and rounded, with no sign of a disk?"
    assert [(c.key, c.name) for c in schema.classes.all()] == [("0", "Smooth"), ("1", "Features or disk"),
                                                               ("2", "Star or artifact")]


def test_survey_tree_and_processing_go_to_metadata(demo_data):
    row = read_csv(demo_data / "gz_examples_sloan" / "labels.csv")[0]
    galaxies_import(dataset_name="s", fmt="gz-examples", path=demo_data / "gz_examples_sloan")
    galaxy = Galaxy.objects.get(external_id=row["git_blob"])
    assert (galaxy.metadata["survey"], galaxy.metadata["tree"], galaxy.metadata["is_processed_real"]) == (
        "SDSS", "sloan", False)
    assert galaxy.metadata["examples"] == [{"tree": "sloan", "survey": "SDSS", "question_index": 0,
                                            "answer_index": 0, "answer_kind": "answer", "file": row["file"]}]
    assert (galaxy.width, galaxy.height) == (256, 256)


def test_importing_the_examples_twice_changes_nothing(demo_data, media_root):
    galaxies_import(dataset_name="s", fmt="gz-examples", path=demo_data / "gz_examples_sloan")
    before = snapshot(media_root)
    report = galaxies_import(dataset_name="s", fmt="gz-examples", path=demo_data / "gz_examples_sloan")
    assert (report.created, report.updated, report.unchanged, report.labels_created) == (0, 0, 83, 0)
    assert snapshot(media_root) == before


def test_the_full_example_set_makes_one_galaxy_per_blob_across_all_eight_trees(shared_data):
    folder = shared_data / "galaxy_zoo_examples"
    rows = read_csv(folder / "labels.csv")
    expected = _expected(rows)

    report = galaxies_import(dataset_name="examples", fmt="gz-examples", path=folder)

    assert len(rows) == 727 and len(expected["galaxies"]) == 653
    assert report.created == Galaxy.objects.count() == 653
    assert set(LabelSchema.objects.values_list("name", flat=True)) == expected["schemas"]
    assert report.labels_created == ExpertLabel.objects.count() == len(expected["labels"]) == 726
    # A galaxy shown for two trees is labelled in both.
    shared = [blob for blob in expected["galaxies"] if len({r["tree"] for r in rows if r["git_blob"] == blob}) > 1]
    assert shared
    assert ExpertLabel.objects.filter(galaxy__external_id=shared[0]).values("schema").distinct().count() >= 2
    # The one galaxy that exemplifies two answers of a checkbox question keeps the first and lists both.
    blob = "78af7fa918d4dedc541f7c49a9ef31c73e8754a0"
    label = ExpertLabel.objects.get(galaxy__external_id=blob, schema__name="gz-examples-decals-q10")
    assert label.label_class.name == "Ring"
    examples = Galaxy.objects.get(external_id=blob).metadata["examples"]
    assert [(e["question_index"], e["answer_index"]) for e in examples] == [(10, 1), (10, 6)]


@pytest.fixture
def examples_copy(demo_data, tmp_path):
    """Eight rows of the real example set, copied so a test can spoil them."""
    source = demo_data / "gz_examples_sloan"
    rows = read_csv(source / "labels.csv")[:8]
    (tmp_path / "ex" / "images").mkdir(parents=True)
    for row in rows:
        shutil.copy(source / row["file"], tmp_path / "ex" / row["file"])
    write_csv(tmp_path / "ex" / "labels.csv", rows)
    return tmp_path / "ex", rows


def test_rows_sharing_a_blob_make_one_galaxy_with_a_label_per_question(examples_copy):
    folder, rows = examples_copy
    other = dict(rows[0], question_index="3", question_title="Bar", answer_index="1", answer_text="No bar",
                 file="images/again.jpg")
    shutil.copy(folder / rows[0]["file"], folder / "images" / "again.jpg")
    write_csv(folder / "labels.csv", [*rows, other])

    report = galaxies_import(dataset_name="s", fmt="gz-examples", path=folder)

    assert (report.created, report.labels_created) == (8, 9)
    galaxy = Galaxy.objects.get(external_id=rows[0]["git_blob"])
    assert set(galaxy.expert_labels.values_list("schema__name", "label_class__key")) == {
        ("gz-examples-sloan-q0", "0"), ("gz-examples-sloan-q3", "1")}


def _same_blob_other_bytes(folder, rows):
    rows[1]["git_blob"] = rows[0]["git_blob"]
    return rows, ["labels.csv, row 3, column 'file'", "same git_blob as labels.csv, row 2 but different image bytes"]


def _two_answers_to_a_single_choice_question(folder, rows):
    shutil.copy(folder / rows[0]["file"], folder / "images" / "again.jpg")
    return [*rows, dict(rows[0], answer_index="2", file="images/again.jpg")], [
        "labels.csv, row 10, column 'answer_index'", "already the example of answer 0 of this single-choice"]


def _stated_width_differs(folder, rows):
    rows[2]["width"] = "424"
    return rows, ["labels.csv, row 4, column 'width'", "says 424 but the image is 256"]


def _unknown_answer_kind(folder, rows):
    rows[3]["answer_kind"] = "slider"
    return rows, ["labels.csv, row 5, column 'answer_kind'", "'slider' is not one of answer, checkbox"]


def _question_index_not_a_number(folder, rows):
    rows[4]["question_index"] = "first"
    return rows, ["labels.csv, row 6, column 'question_index'", "'first' is not a whole number"]


def _missing_git_blob_column(folder, rows):
    return [{k: v for k, v in row.items() if k != "git_blob"} for row in rows], [
        "labels.csv, row 1, column 'git_blob'", "required column is missing"]


def _two_blobs_with_the_same_bytes(folder, rows):
    shutil.copy(folder / rows[0]["file"], folder / "images" / "twin.jpg")
    return [*rows, dict(rows[1], file="images/twin.jpg", git_blob="f" * 40)], [
        "labels.csv, row 10, column 'file'", "the same image bytes as id"]


def _truncated_image(folder, rows):
    path = folder / rows[5]["file"]
    path.write_bytes(path.read_bytes()[:2000])
    return rows, ["labels.csv, row 7, column 'file'", rows[5]["file"], "truncated"]


BAD = [_same_blob_other_bytes, _two_answers_to_a_single_choice_question, _stated_width_differs,
       _unknown_answer_kind, _question_index_not_a_number, _missing_git_blob_column, _two_blobs_with_the_same_bytes,
       _truncated_image]


@pytest.mark.parametrize("spoil", BAD, ids=[case.__name__.strip("_") for case in BAD])
def test_bad_example_rows_are_refused_precisely_and_nothing_is_written(spoil, examples_copy, media_root):
    folder, rows = examples_copy
    rows, expected = spoil(folder, rows)
    write_csv(folder / "labels.csv", rows)
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="s", fmt="gz-examples", path=folder)

    assert any(all(part in line for part in expected) for line in failure.value.problems), failure.value.problems
    assert snapshot(media_root) == before


def test_skip_bad_imports_the_other_examples(examples_copy):
    folder, rows = examples_copy
    rows[2]["width"] = "424"
    write_csv(folder / "labels.csv", rows)
    report = galaxies_import(dataset_name="s", fmt="gz-examples", path=folder, skip_bad=True)
    assert (report.created, report.labels_created, len(report.skipped)) == (7, 7, 1)
    assert not Galaxy.objects.filter(external_id=rows[2]["git_blob"]).exists()


def test_a_schema_option_is_refused_because_every_question_has_its_own(demo_data):
    with pytest.raises(ImportFailed, match="does not apply to gz-examples"):
        galaxies_import(dataset_name="s", fmt="gz-examples", path=demo_data / "gz_examples_sloan",
                        schema_name="galaxy10")
