"""The Zooniverse subject set: a folder (or zip) with the images under neutral names and a manifest whose metadata
columns are all hidden from volunteers ("#"), that panoptes-cli and the Project Builder upload as it is, and whose
#external_id brings a classification export's subjects back to their galaxies."""

import io
import os
import re
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image

from labeling.models import Galaxy
from tests.labeling.exports.subject_helpers import manifest, subjects
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")  # 18 real galaxies, ids like g10_class_5_3: the class in the name


def test_the_manifest_names_each_image_first_and_hides_every_other_column(dataset, tmp_path):
    out = tmp_path / "subject set"

    said = subjects(dataset, out)

    header, rows = manifest(out)
    assert header == ["image", "#external_id", "#dataset", "#galaxy_pk", "#reason"]  # no coordinates to give
    assert len(rows) == 18 and f"18 subjects of '{dataset.name}' written to {out}" in said
    galaxies = {galaxy.pk: galaxy for galaxy in dataset.galaxies.all()}
    for row in rows:
        galaxy = galaxies[int(row["#galaxy_pk"])]
        assert row["#external_id"] == galaxy.external_id and row["#dataset"] == dataset.name
        assert (out / row["image"]).read_bytes() == galaxy.image.read()


def test_coordinates_come_as_hidden_columns_with_no_cell_left_empty(dataset, tmp_path):
    first = dataset.galaxies.order_by("pk").first()
    Galaxy.objects.filter(pk=first.pk).update(ra=150.25, dec=2.5)

    subjects(dataset, tmp_path / "out")

    header, rows = manifest(tmp_path / "out")
    assert header == ["image", "#external_id", "#dataset", "#galaxy_pk", "#ra", "#dec", "#reason"]
    by_id = {int(row["#galaxy_pk"]): row for row in rows}
    assert (by_id[first.pk]["#ra"], by_id[first.pk]["#dec"]) == ("150.25", "2.5")
    # panoptes-cli reads an empty cell as the manifest's own folder, and stops.
    assert all(value != "" for row in rows for value in row.values())


def test_image_files_are_named_neutrally_in_a_shuffled_order(dataset, tmp_path):
    out = tmp_path / "out"

    subjects(dataset, out)

    _, rows = manifest(out)
    names = [row["image"] for row in rows]
    assert all(re.fullmatch(r"subject_\d{4}\.jpg", name) for name in names)
    assert sorted(os.listdir(out)) == sorted([*names, "manifest.csv"])
    numbers_in_id_order = [int(name[8:12]) for _, name in sorted(zip(
        (int(row["#galaxy_pk"]) for row in rows), names, strict=True))]
    assert sorted(numbers_in_id_order) == list(range(1, 19)) and numbers_in_id_order != list(range(1, 19))


def test_panoptes_cli_finds_exactly_the_image_in_each_row_and_keeps_the_key_to_match_classifications(dataset,
                                                                                                   tmp_path):
    out = tmp_path / "out"
    subjects(dataset, out)
    header, rows = manifest(out)

    # As panoptes-cli's upload-subjects does: a cell naming an existing path beside the manifest is a file to upload;
    # every cell becomes the subject's metadata, which a classification export gives back as subject_data.
    for row in rows:
        files = [value for value in row.values() if os.path.exists(os.path.join(str(out), value))]
        assert files == [row["image"]]
        subject_data = dict(row)
        galaxy = Galaxy.objects.get(dataset__name=subject_data["#dataset"], external_id=subject_data["#external_id"])
        assert galaxy.pk == int(subject_data["#galaxy_pk"])
    assert [column for column in header if not column.startswith("#")] == ["image"]


def test_a_zip_holds_the_same_files_at_its_root(dataset, tmp_path):
    subjects(dataset, tmp_path / "folder", "--seed", "3")
    subjects(dataset, tmp_path / "set.zip", "--seed", "3")

    with zipfile.ZipFile(tmp_path / "set.zip") as archive:
        assert sorted(archive.namelist()) == sorted(os.listdir(tmp_path / "folder"))
        for name in archive.namelist():
            assert archive.read(name) == (tmp_path / "folder" / name).read_bytes()


def test_an_output_that_already_holds_files_is_refused_and_left_as_it_was(dataset, tmp_path):
    out = tmp_path / "used"
    out.mkdir()
    (out / "old.jpg").write_bytes(b"old")

    with pytest.raises(CommandError, match="already holds files; give a new or empty folder"):
        subjects(dataset, out)
    with pytest.raises(CommandError, match="needs --out"):
        call_command("export", "--dataset", dataset.name, "--what", "subjects", "--format", "zooniverse")

    assert os.listdir(out) == ["old.jpg"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    subjects(dataset, empty)
    assert len(os.listdir(empty)) == 19


def test_an_image_zooniverse_does_not_take_is_converted_to_png(dataset, tmp_path):
    galaxy = dataset.galaxies.order_by("pk").first()
    webp = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(webp, format="WEBP")
    galaxy.image.save("odd.webp", ContentFile(webp.getvalue()))

    said = subjects(dataset, tmp_path / "out")

    row = next(row for row in manifest(tmp_path / "out")[1] if int(row["#galaxy_pk"]) == galaxy.pk)
    assert row["image"].endswith(".png") and "1 converted to PNG" in said
    with Image.open(tmp_path / "out" / row["image"]) as converted:
        assert converted.format == "PNG" and converted.size == (8, 8)
