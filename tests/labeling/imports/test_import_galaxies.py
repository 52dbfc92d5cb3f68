"""The import_galaxies command and the service's entry point; per-format behaviour is tested beside each reader
(test_import_folder*.py, test_import_galaxy10.py, test_import_gz_examples.py)."""

import io

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Dataset, ExpertLabel, Galaxy
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.import_helpers import read_csv, small_galaxy10_folder, snapshot, write_csv

pytestmark = pytest.mark.django_db


def test_the_command_creates_the_dataset_imports_the_folder_and_prints_the_summary(demo_data, capsys):
    out = io.StringIO()
    call_command("import_galaxies", str(demo_data / "galaxy10"), "--dataset", "Galaxy10 DECaLS", "--format",
                 "folder", "--schema", "galaxy10", stdout=out)

    assert out.getvalue().strip() == "dataset 'Galaxy10 DECaLS': 110 created, 0 updated, 0 unchanged, 110 expert labels"
    assert Dataset.objects.get(name="Galaxy10 DECaLS").galaxies.count() == 110
    assert ExpertLabel.objects.filter(schema__name="galaxy10").count() == 110
    progress = capsys.readouterr().err  # not a terminal: plain lines instead of bars
    assert "checking images: 110/110 img (100%)" in progress and "writing: 110/110 img (100%)" in progress
    assert "\r" not in progress


def test_the_command_fails_with_status_1_listing_every_problem_and_writes_nothing(demo_data, tmp_path, media_root):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    rows = read_csv(folder / "labels.csv")
    rows[1]["file"] = "../x.jpg"
    rows[3]["label"] = "42"
    write_csv(folder / "labels.csv", rows)
    before = snapshot(media_root)

    with pytest.raises(CommandError) as failure:
        call_command("import_galaxies", str(folder), "--dataset", "g", "--format", "folder", "--schema", "galaxy10")

    # manage.py turns a CommandError into this exit status (not run here: it closes the test's connection).
    assert failure.value.returncode == 1
    err = str(failure.value)
    assert "labels.csv, row 3, column 'file': '../x.jpg' points outside the folder" in err
    assert "labels.csv, row 5, column 'label': '42' is not a class of schema 'galaxy10'" in err
    assert "2 problem(s), nothing was imported" in err
    assert snapshot(media_root) == before


def test_skip_bad_prints_each_skipped_row_with_its_reason(demo_data, tmp_path):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    rows = read_csv(folder / "labels.csv")
    rows[2]["id"] = rows[0]["id"]
    write_csv(folder / "labels.csv", rows)
    out = io.StringIO()

    call_command("import_galaxies", str(folder), "--dataset", "g", "--format", "folder", "--skip-bad", stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert lines == [
        f"skipped: labels.csv, row 4, column 'id': id {rows[0]['id']!r} is also used by labels.csv, row 2",
        "dataset 'g': 5 created, 0 updated, 0 unchanged, 5 expert labels, 1 skipped",
    ]
    assert Galaxy.objects.count() == 5


def test_the_command_imports_the_example_layout_with_a_labels_option(demo_data, tmp_path):
    rows = read_csv(demo_data / "gz_examples_sloan" / "labels.csv")[:5]
    labels = write_csv(tmp_path / "five.csv", rows)
    out = io.StringIO()
    call_command("import_galaxies", str(demo_data / "gz_examples_sloan"), "--dataset", "s", "--format",
                 "gz-examples", "--labels", str(labels), stdout=out)
    assert "5 created" in out.getvalue()
    assert set(ExpertLabel.objects.values_list("provenance", flat=True)) == {"imported from five.csv"}


def test_the_command_refuses_an_unknown_format():
    with pytest.raises(CommandError, match="invalid choice: 'fits'"):
        call_command("import_galaxies", ".", "--dataset", "g", "--format", "fits")


def test_the_command_needs_a_dataset_name():
    with pytest.raises(CommandError, match="--dataset"):
        call_command("import_galaxies", ".", "--format", "folder")


def test_the_service_refuses_an_unknown_format_and_an_empty_dataset_name(demo_data):
    with pytest.raises(ImportFailed, match="unknown format 'fits'"):
        galaxies_import(dataset_name="g", fmt="fits", path=demo_data)
    with pytest.raises(ImportFailed, match="needs a name"):
        galaxies_import(dataset_name="  ", fmt="folder", path=demo_data / "galaxy10")
    assert not Dataset.objects.exists()


def test_a_missing_folder_is_reported_by_path(tmp_path):
    with pytest.raises(ImportFailed, match="no such folder"):
        galaxies_import(dataset_name="g", fmt="folder", path=tmp_path / "absent")


def test_an_empty_folder_is_refused_rather_than_making_an_empty_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFailed, match="no images to import"):
        galaxies_import(dataset_name="g", fmt="folder", path=tmp_path / "empty")
    assert not Dataset.objects.exists()


def test_progress_reports_both_phases_up_to_the_total(demo_data):
    calls = []
    galaxies_import(dataset_name="g", fmt="folder", path=demo_data / "gz2_examples",
                    progress=lambda done, total, phase: calls.append((done, total, phase)))
    assert calls[-13] == (12, 12, "checking images")
    assert calls[-1] == (12, 12, "writing")
    assert [phase for _, _, phase in calls].count("writing") == 12
