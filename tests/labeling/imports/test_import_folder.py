import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from labeling.models import Dataset, ExpertLabel, Galaxy, LabelSchema
from labeling.services.imports.galaxies import galaxies_import
from tests.labeling.import_helpers import media_files, read_csv, small_galaxy10_folder, snapshot, write_csv

pytestmark = pytest.mark.django_db


def test_it_imports_the_bundled_galaxy10_folder_with_a_label_per_image(demo_data, media_root):
    rows = read_csv(demo_data / "galaxy10" / "labels.csv")
    report = galaxies_import(dataset_name="Galaxy10 sample", fmt="folder", path=demo_data / "galaxy10")

    assert (report.created, report.updated, report.unchanged, report.labels_created) == (110, 0, 0, 110)
    dataset = Dataset.objects.get(name="Galaxy10 sample")
    assert dataset.galaxies.count() == 110
    schema = LabelSchema.objects.get(name="galaxy10-sample")
    assert schema.classes.count() == 10
    assert schema.classes.get(key="5").name == "Barred Spiral Galaxies"
    labels = ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True)
    assert {(label.galaxy.external_id, label.label_class.key) for label in labels} == {
        (row["id"], row["label"]) for row in rows}
    assert {label.provenance for label in labels} == {"imported from labels.csv"}
    assert all(label.expert is None for label in labels)
    for row in rows[::10]:
        galaxy = dataset.galaxies.get(external_id=row["id"])
        source = (demo_data / "galaxy10" / row["file"]).read_bytes()
        stored = (Path(media_root) / galaxy.image.name).read_bytes()
        assert stored == source
        assert galaxy.content_hash == hashlib.sha256(stored).hexdigest()
        assert (galaxy.width, galaxy.height) == (256, 256)
        assert galaxy.image.name == f"galaxies/galaxy10-sample/{row['id']}.jpg"


def test_thumbnails_are_rgb_jpegs_with_the_configured_longest_side(demo_data, media_root, settings):
    settings.GALAXY_THUMBNAIL_SIZE = 48
    galaxies_import(dataset_name="g", fmt="folder", path=demo_data / "gz2_examples")
    for galaxy in Galaxy.objects.all():
        assert galaxy.thumbnail.name == f"thumbnails/g/{Path(galaxy.image.name).stem}.jpg"
        with Image.open(Path(media_root) / galaxy.thumbnail.name) as thumbnail:
            assert (thumbnail.format, thumbnail.mode, thumbnail.size) == ("JPEG", "RGB", (48, 48))


def test_a_named_shipped_schema_is_loaded_and_its_classes_are_used(demo_data):
    report = galaxies_import(dataset_name="g10", fmt="folder", path=demo_data / "galaxy10", schema_name="galaxy10")
    assert report.labels_created == 110
    schema = LabelSchema.objects.get(name="galaxy10")
    assert schema.classes.count() == 11  # the shipped ten plus "uncertain", unchanged by the import
    assert ExpertLabel.objects.filter(schema=schema, label_class__name="Barred Spiral").count() == 11


def test_the_gz2_examples_keep_their_coordinates_and_their_class_strings(demo_data):
    rows = read_csv(demo_data / "gz2_examples" / "labels.csv")
    galaxies_import(dataset_name="GZ2 examples", fmt="folder", path=demo_data / "gz2_examples",
                    schema_name="gz2-class")
    assert Galaxy.objects.count() == 12
    for row in rows:
        galaxy = Galaxy.objects.get(external_id=row["id"])
        assert (galaxy.ra, galaxy.dec) == (float(row["ra"]), float(row["dec"]))
        assert galaxy.image.name.endswith(".png")
        assert galaxy.expert_labels.get().label_class.key == row["label"]
    assert set(LabelSchema.objects.get(name="gz2-class").classes.values_list("key", flat=True)) == {
        row["label"] for row in rows}


def test_importing_the_same_folder_twice_changes_nothing(demo_data, media_root):
    galaxies_import(dataset_name="g", fmt="folder", path=demo_data / "galaxy10")
    before = snapshot(media_root)
    report = galaxies_import(dataset_name="g", fmt="folder", path=demo_data / "galaxy10")
    assert (report.created, report.updated, report.unchanged, report.labels_created) == (0, 0, 110, 0)
    assert snapshot(media_root) == before


def test_new_bytes_under_a_known_id_replace_the_image_and_the_old_files_go_after_commit(
        demo_data, tmp_path, media_root, django_capture_on_commit_callbacks):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    galaxies_import(dataset_name="g", fmt="folder", path=folder)
    first = read_csv(folder / "labels.csv")[0]
    galaxy = Galaxy.objects.get(external_id=first["id"])
    old_files = {galaxy.image.name, galaxy.thumbnail.name}
    with Image.open(folder / first["file"]) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / first["file"], quality=90)

    with django_capture_on_commit_callbacks(execute=True):
        report = galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 5)
    galaxy.refresh_from_db()
    assert galaxy.content_hash == hashlib.sha256((folder / first["file"]).read_bytes()).hexdigest()
    files = set(media_files(media_root))
    assert {galaxy.image.name, galaxy.thumbnail.name} <= files
    assert not old_files & files
    assert len(files) == 12


def test_new_coordinates_update_the_galaxy_without_writing_files(demo_data, tmp_path, media_root):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    galaxies_import(dataset_name="g", fmt="folder", path=folder)
    files = media_files(media_root)
    rows = read_csv(folder / "labels.csv")
    rows[2]["ra"], rows[2]["dec"] = "150.25", "-12.5"
    write_csv(folder / "labels.csv", rows)

    report = galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 5)
    galaxy = Galaxy.objects.get(external_id=rows[2]["id"])
    assert (galaxy.ra, galaxy.dec) == (150.25, -12.5)
    assert media_files(media_root) == files


def test_a_changed_label_supersedes_the_imported_one_and_keeps_it_as_history(demo_data, tmp_path):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    galaxies_import(dataset_name="g", fmt="folder", path=folder)
    rows = read_csv(folder / "labels.csv")
    rows[0]["label"] = rows[1]["label"]
    write_csv(folder / "labels.csv", rows)

    report = galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert (report.unchanged, report.labels_created) == (6, 1)
    history = ExpertLabel.objects.filter(galaxy__external_id=rows[0]["id"]).order_by("created_at")
    assert [(label.label_class.key, label.is_current) for label in history] == [
        (read_csv(demo_data / "galaxy10" / "labels.csv")[0]["label"], False), (rows[1]["label"], True)]


def test_without_a_csv_every_image_is_imported_except_hidden_files_and_sidecars(demo_data, tmp_path):
    folder = tmp_path / "in"
    (folder / "deeper" / "still").mkdir(parents=True)
    (folder / ".cache").mkdir()
    sources = sorted((demo_data / "galaxy10" / "images").glob("*.jpg"))
    shutil.copy(sources[0], folder / "a.jpg")
    shutil.copy(sources[1], folder / "deeper" / "b.jpg")
    shutil.copy(sources[2], folder / "deeper" / "still" / "c.jpg")
    shutil.copy(sources[3], folder / ".hidden.jpg")
    shutil.copy(sources[4], folder / ".cache" / "d.jpg")
    for sidecar in ("notes.txt", "README.md", "meta.json", "other.CSV"):
        (folder / sidecar).write_text("not an image")

    report = galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert report.created == 3
    assert set(Galaxy.objects.values_list("external_id", flat=True)) == {"a", "b", "c"}
    assert not ExpertLabel.objects.exists() and not LabelSchema.objects.exists()


def test_extra_csv_columns_go_to_metadata_and_the_id_defaults_to_the_file_stem(demo_data, tmp_path):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in", count=2)
    rows = [{"file": row["file"], "survey": "DECaLS", "note": f"n{i}"} for i, row in
            enumerate(read_csv(folder / "labels.csv"))]
    labels = write_csv(tmp_path / "elsewhere.csv", rows)

    galaxies_import(dataset_name="g", fmt="folder", path=folder, labels_csv=labels)

    galaxy = Galaxy.objects.get(external_id=Path(rows[1]["file"]).stem)
    assert galaxy.metadata == {"survey": "DECaLS", "note": "n1"}
    assert galaxy.ra is None


def test_a_galaxy_known_only_from_a_catalogue_gets_its_image(demo_data, tmp_path):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in", count=2)
    first = read_csv(folder / "labels.csv")[0]
    dataset = Dataset.objects.create(name="g", slug="g")
    Galaxy.objects.create(dataset=dataset, external_id=first["id"], ra=10.0, metadata={"from": "votes"})

    report = galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert (report.created, report.updated) == (1, 1)
    galaxy = Galaxy.objects.get(external_id=first["id"])
    assert galaxy.has_image and galaxy.ra == 10.0
    assert galaxy.metadata == {"from": "votes"}
