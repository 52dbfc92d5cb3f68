import hashlib
import io
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from labeling.models import ExpertLabel, Galaxy, LabelSchema
from labeling.services.imports import galaxy10 as import_galaxy10
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.import_helpers import read_csv, snapshot

pytestmark = pytest.mark.django_db


def _real_pixels(demo_data: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real Galaxy10 images as an N x 256 x 256 x 3 array, with their classes."""
    rows = read_csv(demo_data / "galaxy10" / "labels.csv")[::5][:count]
    images = []
    for row in rows:
        with Image.open(demo_data / "galaxy10" / row["file"]) as image:
            images.append(np.asarray(image.convert("RGB")))
    return np.stack(images), np.array([int(row["label"]) for row in rows], dtype=np.uint8)


def write_h5(path: Path, images: np.ndarray, ans: np.ndarray, **arrays) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=images, chunks=(min(4, len(images)), *images.shape[1:]),
                              compression="gzip")
        handle.create_dataset("ans", data=ans)
        for key, values in arrays.items():
            handle.create_dataset(key, data=values)
    return path


@pytest.fixture
def galaxy10_h5(demo_data, tmp_path):
    images, ans = _real_pixels(demo_data, 12)
    n = len(images)
    path = write_h5(tmp_path / "Galaxy10_DECals.h5", images, ans, ra=np.linspace(10.0, 200.0, n),
                    dec=np.linspace(-20.0, 40.0, n), redshift=np.r_[np.full(n - 1, 0.05), np.nan])
    return path, images, ans


def test_it_imports_every_row_as_a_lossless_png_labelled_in_the_shipped_schema(galaxy10_h5, media_root):
    path, images, ans = galaxy10_h5
    report = galaxies_import(dataset_name="Galaxy10 DECaLS", fmt="galaxy10-h5", path=path)

    assert (report.created, report.labels_created) == (12, 12)
    for row in range(12):
        galaxy = Galaxy.objects.get(external_id=str(row))
        stored = (Path(media_root) / galaxy.image.name).read_bytes()
        with Image.open(io.BytesIO(stored)) as image:
            assert image.format == "PNG"
            assert np.array_equal(np.asarray(image), images[row])
        assert galaxy.content_hash == hashlib.sha256(stored).hexdigest()
        assert galaxy.ra == pytest.approx(np.linspace(10.0, 200.0, 12)[row])
        assert galaxy.expert_labels.get().label_class.key == str(ans[row])
        with Image.open(Path(media_root) / galaxy.thumbnail.name) as thumbnail:
            assert (thumbnail.format, thumbnail.size) == ("JPEG", (128, 128))
    assert Galaxy.objects.get(external_id="0").metadata == {"redshift": 0.05}
    assert Galaxy.objects.get(external_id="11").metadata == {"redshift": None}
    assert set(ExpertLabel.objects.values_list("schema__name", "provenance")) == {
        ("galaxy10", "imported from Galaxy10_DECals.h5")}
    assert LabelSchema.objects.get(name="galaxy10").classes.count() == 11


def test_importing_the_file_twice_changes_nothing(galaxy10_h5, media_root):
    path, _, _ = galaxy10_h5
    galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=path)
    before = snapshot(media_root)
    report = galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=path)
    assert (report.created, report.updated, report.unchanged, report.labels_created) == (0, 0, 12, 0)
    assert snapshot(media_root) == before


def test_the_images_array_is_read_a_block_at_a_time(demo_data, tmp_path, monkeypatch):
    images, ans = _real_pixels(demo_data, 10)
    images = np.concatenate([images, images[:, ::-1], images[:, :, ::-1], images[:, ::-1, ::-1]])  # 40 distinct
    path = write_h5(tmp_path / "g.h5", images, np.tile(ans, 4))
    monkeypatch.setattr(import_galaxy10, "READ_BYTES", 4 * images[0].nbytes)
    tracemalloc.start()
    try:
        report = galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.created == 40
    # The whole array is 7.9 MB; reading it at once (READ_BYTES left at 16 MB) peaks above it.
    assert peak < images.nbytes / 2, f"peak {peak / 1e6:.1f} MB"


def test_a_class_outside_the_schema_is_a_bad_row_and_skip_bad_leaves_it_out(demo_data, tmp_path):
    images, ans = _real_pixels(demo_data, 6)
    ans[[2, 4]] = 12
    path = write_h5(tmp_path / "g.h5", images, ans)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=path)
    assert failure.value.problems == ["g.h5, row 2, column 'ans': '12' is not a class of schema 'galaxy10'",
                                      "g.h5, row 4, column 'ans': '12' is not a class of schema 'galaxy10'"]
    assert not Galaxy.objects.exists()

    report = galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=path, skip_bad=True)
    assert (report.created, len(report.skipped)) == (4, 2)
    assert set(Galaxy.objects.values_list("external_id", flat=True)) == {"0", "1", "3", "5"}


def test_new_pixels_under_a_known_row_that_equal_another_galaxy_are_refused_and_cleaned_up(demo_data, tmp_path,
                                                                                            media_root):
    images, ans = _real_pixels(demo_data, 4)
    galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=write_h5(tmp_path / "a.h5", images, ans))
    before = snapshot(media_root)
    changed = images[:3].copy()
    changed[:2] = changed[:2, ::-1]  # rows 0-1 get new pixels: their new files are written first
    changed[2] = images[3]  # row 2 now shows what galaxy "3", absent from this file, holds

    with pytest.raises(ImportFailed, match=r"b.h5, row 2: the same image bytes as galaxy '3', already in"):
        galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=write_h5(tmp_path / "b.h5", changed, ans[:3]))
    assert snapshot(media_root) == before


def _not_hdf5(tmp_path, images, ans):
    (tmp_path / "g.h5").write_text("not hdf5")
    return ["g.h5: not an HDF5 file"]


def _missing_ans(tmp_path, images, ans):
    with h5py.File(tmp_path / "g.h5", "w") as handle:
        handle.create_dataset("images", data=images)
    return ["g.h5, column 'ans': missing"]


def _lengths_differ(tmp_path, images, ans):
    write_h5(tmp_path / "g.h5", images, ans[:-1])
    return ["g.h5, column 'ans': 5 values for 6 images"]


def _float_images(tmp_path, images, ans):
    write_h5(tmp_path / "g.h5", images.astype(np.float32), ans)
    return ["g.h5, column 'images': shape (6, 256, 256, 3) of float32; expected N x H x W x 3 uint8"]


def _grey_images(tmp_path, images, ans):
    write_h5(tmp_path / "g.h5", images[..., 0], ans)
    return ["g.h5, column 'images': shape (6, 256, 256) of uint8"]


def _ra_out_of_range(tmp_path, images, ans):
    write_h5(tmp_path / "g.h5", images, ans, ra=np.array([1.0, 2.0, 3.0, 400.0, 5.0, 6.0]))
    return ["g.h5, row 3, column 'ra': 400.0 is outside [0, 360) degrees"]


def _short_dec(tmp_path, images, ans):
    write_h5(tmp_path / "g.h5", images, ans, dec=np.zeros(3))
    return ["g.h5, column 'dec': shape (3,) of float64; expected 6 numbers"]


def _duplicate_pixels(tmp_path, images, ans):
    images[4] = images[1]
    write_h5(tmp_path / "g.h5", images, ans)
    return ["g.h5, row 4, column 'images': the same pixels as row 1"]


def _too_many_pixels(tmp_path, images, ans, settings=None):
    write_h5(tmp_path / "g.h5", images, ans)
    return ["g.h5, column 'images': 256x256 = 65,536 pixels per image is over the limit of 1,000"]


BAD = [_not_hdf5, _missing_ans, _lengths_differ, _float_images, _grey_images, _ra_out_of_range, _short_dec,
       _duplicate_pixels, _too_many_pixels]


@pytest.mark.parametrize("spoil", BAD, ids=[case.__name__.strip("_") for case in BAD])
def test_a_bad_file_is_refused_precisely_and_nothing_is_written(spoil, demo_data, tmp_path, media_root, settings):
    if spoil is _too_many_pixels:
        settings.GALAXY_MAX_IMAGE_PIXELS = 1000
    images, ans = _real_pixels(demo_data, 6)
    expected = spoil(tmp_path, images, ans)
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=tmp_path / "g.h5")

    assert any(all(part in line for part in expected) for line in failure.value.problems), failure.value.problems
    assert snapshot(media_root) == before


def test_a_schema_option_naming_a_new_schema_makes_it_from_the_ans_values(demo_data, tmp_path):
    images, ans = _real_pixels(demo_data, 6)
    report = galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=write_h5(tmp_path / "g.h5", images, ans),
                             schema_name="My Classes")
    assert report.labels_created == 6
    schema = LabelSchema.objects.get(name="my-classes")
    assert set(schema.classes.values_list("key", flat=True)) == {str(value) for value in ans}
    assert not LabelSchema.objects.filter(name="galaxy10").exists()


def test_a_labels_csv_is_refused_because_the_labels_are_in_the_file(galaxy10_h5, tmp_path):
    with pytest.raises(ImportFailed, match="--labels does not apply to galaxy10-h5"):
        galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=galaxy10_h5[0], labels_csv=tmp_path / "x.csv")
