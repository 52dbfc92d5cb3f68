"""Bad folder input: every problem line names the file, row and column, and nothing is written."""

import os
import shutil
from pathlib import Path

import pytest

from labeling.models import Galaxy
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.import_helpers import png_header_only, read_csv, small_galaxy10_folder, snapshot, write_csv

pytestmark = pytest.mark.django_db


def _rows(folder: Path) -> list[dict]:
    return read_csv(folder / "labels.csv")


def _corrupt_png(folder, demo_data):
    data = bytearray((demo_data / "gz2_examples" / "images" / "Sb.png").read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\x00" * 64
    (folder / "images" / "broken.png").write_bytes(bytes(data))
    write_csv(folder / "labels.csv", [*_rows(folder), {"file": "images/broken.png", "id": "broken"}])
    return {}, ["labels.csv, row 8, column 'file'", "images/broken.png", "corrupt"]


def _truncated_jpeg(folder, demo_data):
    first = folder / _rows(folder)[0]["file"]
    first.write_bytes(first.read_bytes()[:4000])
    return {}, ["labels.csv, row 2, column 'file'", first.name, "truncated"]


def _not_an_image(folder, demo_data):
    (folder / "images" / "notes.jpg").write_text("observing notes, not pixels")
    write_csv(folder / "labels.csv", [*_rows(folder), {"file": "images/notes.jpg", "id": "notes"}])
    return {}, ["labels.csv, row 8, column 'file'", "images/notes.jpg", "not an image"]


def _decompression_bomb(folder, demo_data):
    (folder / "images" / "bomb.png").write_bytes(png_header_only(9000, 9000))
    write_csv(folder / "labels.csv", [*_rows(folder), {"file": "images/bomb.png", "id": "bomb"}])
    return {}, ["labels.csv, row 8, column 'file'", "images/bomb.png", "over the limit", "not decoded"]


def _missing_file_column(folder, demo_data):
    write_csv(folder / "labels.csv", [{"path": row["file"], "id": row["id"]} for row in _rows(folder)])
    return {}, ["labels.csv, row 1, column 'file'", "required column is missing"]


def _duplicate_id(folder, demo_data):
    rows = _rows(folder)
    rows[3]["id"] = rows[2]["id"]
    write_csv(folder / "labels.csv", rows)
    return {}, ["labels.csv, row 5, column 'id'", f"id {rows[2]['id']!r} is also used by labels.csv, row 4"]


def _same_bytes_two_ids(folder, demo_data):
    rows = _rows(folder)
    shutil.copy(folder / rows[2]["file"], folder / "images" / "copy.jpg")
    write_csv(folder / "labels.csv", [*rows, {**rows[2], "file": "images/copy.jpg", "id": "copy"}])
    return {}, ["labels.csv, row 8, column 'file'", f"the same image bytes as id {rows[2]['id']!r}"]


def _dot_dot_path(folder, demo_data):
    rows = _rows(folder)
    shutil.copy(folder / rows[0]["file"], folder.parent / "outside.jpg")
    rows[1]["file"] = "../outside.jpg"
    write_csv(folder / "labels.csv", rows)
    return {}, ["labels.csv, row 3, column 'file'", "'../outside.jpg' points outside the folder"]


def _absolute_path(folder, demo_data):
    rows = _rows(folder)
    rows[1]["file"] = str((folder / rows[1]["file"]).resolve())
    write_csv(folder / "labels.csv", rows)
    return {}, ["labels.csv, row 3, column 'file'", "is an absolute path"]


def _symlink_outside(folder, demo_data):
    rows = _rows(folder)
    shutil.copy(demo_data / "gz2_examples" / "images" / "Sb.png", folder.parent / "outside.png")
    os.symlink(folder.parent / "outside.png", folder / "images" / "link.png")
    write_csv(folder / "labels.csv", [*rows, {"file": "images/link.png", "id": "link"}])
    return {}, ["labels.csv, row 8, column 'file'", "'images/link.png' points outside the folder"]


def _missing_image(folder, demo_data):
    write_csv(folder / "labels.csv", [*_rows(folder), {"file": "images/absent.jpg", "id": "absent"}])
    return {}, ["labels.csv, row 8, column 'file'", "'images/absent.jpg': no such file"]


def _label_outside_an_existing_schema(folder, demo_data):
    rows = _rows(folder)
    rows[1]["label"] = "11"
    write_csv(folder / "labels.csv", rows)
    return {"schema_name": "galaxy10"}, ["labels.csv, row 3, column 'label'", "'11' is not a class of schema "
                                                                                 "'galaxy10'"]


def _bad_coordinates(folder, demo_data):
    rows = [{**row, "ra": "12.5", "dec": "-3"} for row in _rows(folder)]
    rows[2]["ra"] = "400"
    write_csv(folder / "labels.csv", rows)
    return {}, ["labels.csv, row 4, column 'ra'", "400.0 is outside [0, 360) degrees"]


def _unparsable_declination(folder, demo_data):
    rows = [{**row, "dec": "-3"} for row in _rows(folder)]
    rows[4]["dec"] = "north"
    write_csv(folder / "labels.csv", rows)
    return {}, ["labels.csv, row 6, column 'dec'", "'north' is not a number"]


def _ragged_row(folder, demo_data):
    text = (folder / "labels.csv").read_text()
    (folder / "labels.csv").write_text(text + "images/x.jpg,x,1,Merging,surplus\n")
    return {}, ["labels.csv, row 8", "5 fields but the header has 4"]


def _stray_file_without_csv(folder, demo_data):
    (folder / "labels.csv").unlink()
    (folder / "images" / "readme.rst").write_text("not an image")
    return {}, ["images/readme.rst: not an image"]


def _symlinked_folder_outside_without_csv(folder, demo_data):
    (folder / "labels.csv").unlink()
    (folder.parent / "elsewhere").mkdir()
    os.symlink(folder.parent / "elsewhere", folder / "images" / "more")
    return {}, ["images/more: a symlink to a folder outside"]


CASES = [_corrupt_png, _truncated_jpeg, _not_an_image, _decompression_bomb, _missing_file_column, _duplicate_id,
         _same_bytes_two_ids, _dot_dot_path, _absolute_path, _symlink_outside, _missing_image,
         _label_outside_an_existing_schema, _bad_coordinates, _unparsable_declination, _ragged_row,
         _stray_file_without_csv, _symlinked_folder_outside_without_csv]


@pytest.mark.parametrize("spoil", CASES, ids=[case.__name__.strip("_") for case in CASES])
def test_bad_input_is_refused_with_a_precise_problem_and_nothing_is_written(spoil, demo_data, tmp_path, media_root):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    options, expected = spoil(folder, demo_data)
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="folder", path=folder, **options)

    assert any(all(part in line for part in expected) for line in failure.value.problems), failure.value.problems
    assert snapshot(media_root) == before


def test_an_image_over_the_pixel_limit_setting_is_refused_on_every_row(demo_data, tmp_path, media_root, settings):
    settings.GALAXY_MAX_IMAGE_PIXELS = 1000
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="folder", path=folder)
    assert len(failure.value.problems) == 6
    assert all("256x256 = 65,536 pixels is over the limit of 1,000" in line for line in failure.value.problems)
    assert snapshot(media_root)["files"] == []


def test_bytes_already_in_the_dataset_under_another_id_are_refused(demo_data, tmp_path, media_root):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    galaxies_import(dataset_name="g", fmt="folder", path=folder)
    before = snapshot(media_root)
    rows = _rows(folder)
    rows[0]["id"] = "renamed"
    write_csv(folder / "labels.csv", rows)

    with pytest.raises(ImportFailed, match=r"row 2, column 'file': the same image bytes as galaxy '.*', already in"):
        galaxies_import(dataset_name="g", fmt="folder", path=folder)
    assert snapshot(media_root) == before


def test_skip_bad_imports_the_good_rows_and_reports_the_bad_ones(demo_data, tmp_path):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    rows = _rows(folder)
    rows[1]["ra"] = "-5"
    rows[4]["file"] = "../escape.jpg"
    write_csv(folder / "labels.csv", rows)

    report = galaxies_import(dataset_name="g", fmt="folder", path=folder, skip_bad=True)

    assert (report.created, report.labels_created) == (4, 4)
    assert [line.split(":")[0] for line in report.skipped] == [
        "labels.csv, row 3, column 'ra'", "labels.csv, row 6, column 'file'"]
    assert set(Galaxy.objects.values_list("external_id", flat=True)) == {
        row["id"] for i, row in enumerate(rows) if i not in (1, 4)}


def test_a_failure_while_writing_removes_the_files_already_written(demo_data, tmp_path, media_root, monkeypatch):
    from labeling.services.imports import galaxies as import_galaxies

    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    real_thumbnail, calls = import_galaxies.thumbnail_jpeg, []

    def thumbnail_that_fails_on_the_fourth(data, *, size):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk full")
        return real_thumbnail(data, size=size)

    monkeypatch.setattr(import_galaxies, "thumbnail_jpeg", thumbnail_that_fails_on_the_fourth)
    before = snapshot(media_root)

    with pytest.raises(OSError, match="disk full"):
        galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert len(calls) == 4
    assert snapshot(media_root) == before
