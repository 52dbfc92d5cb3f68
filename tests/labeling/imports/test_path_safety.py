"""Paths stay inside their folder: an import refuses an image path that leaves the import folder (by '..', as an
absolute or home path, through a symlink to a file or a folder outside), names with NUL bytes and encoded traversal,
naming the file, row and column and writing nothing; media serving and the thumbnail redirect refuse the same
tricks, symlinks out of MEDIA_ROOT included, and never hand out the file outside."""

import os
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from labeling.models import Galaxy
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.factories import make_galaxies
from tests.labeling.import_helpers import read_csv, small_galaxy10_folder, snapshot, write_csv

pytestmark = pytest.mark.django_db

# The file column's value -> what the problem line must say. Each points (or would, if decoded or expanded) at
# outside.jpg, a real image beside the import folder, so following it would import it rather than fail.
BAD_PATHS = {
    "dot_dot": ("../outside.jpg", "points outside the folder"),
    "dot_dot_after_a_folder": ("images/../../outside.jpg", "points outside the folder"),
    "absolute": ("{outside}", "is an absolute path"),
    "etc_passwd": ("/etc/passwd", "is an absolute path"),
    "home": ("~/outside.jpg", "a home folder"),
    "symlinked_file": ("images/link.jpg", "points outside the folder"),
    "symlinked_folder": ("linked/outside.jpg", "points outside the folder"),
    "nul_byte": ("images/outside\x00.jpg", "NUL"),
    "url_encoded_dots": ("%2e%2e/outside.jpg", "no such file"),
    "url_encoded_slash": ("..%2foutside.jpg", "no such file"),
    "backslashes": ("..\\outside.jpg", "no such file"),
    "too_long": ("images/" + "a" * 300 + ".jpg", "cannot be read: File name too long"),
    "symlink_loop": ("loop/outside.jpg", "cannot be read"),
}


def outside_world(folder: Path, image: Path, monkeypatch) -> Path:
    """outside.jpg beside ``folder`` (and in a HOME pointed there), a symlink to it and one to its folder inside,
    and a symlink to itself."""
    outside = folder.parent / "outside.jpg"
    shutil.copy(image, outside)
    os.symlink(outside, folder / "images" / "link.jpg")
    os.symlink(folder.parent, folder / "linked")
    os.symlink(folder / "loop", folder / "loop")  # a link to itself
    monkeypatch.setenv("HOME", str(folder.parent))
    return outside


@pytest.mark.parametrize("case", BAD_PATHS)
def test_a_folder_import_refuses_an_image_path_outside_the_folder(case, demo_data, tmp_path, media_root, monkeypatch):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    outside = outside_world(folder, demo_data / "gz2_examples" / "images" / "Sb.png", monkeypatch)
    value, why = BAD_PATHS[case]
    rows = read_csv(folder / "labels.csv")
    write_csv(folder / "labels.csv", [*rows, {**rows[0], "file": value.format(outside=outside), "id": "sneaky"}])
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="folder", path=folder)

    problems = failure.value.problems
    assert all(line.startswith("labels.csv, row 8, column 'file': ") for line in problems), problems  # only it
    assert any(why in line for line in problems), problems
    assert snapshot(media_root) == before


@pytest.mark.parametrize("case", BAD_PATHS)
def test_a_gz_examples_import_refuses_an_image_path_outside_the_folder(case, demo_data, tmp_path, media_root,
                                                                       monkeypatch):
    source = demo_data / "gz_examples_sloan"
    rows = read_csv(source / "labels.csv")[:3]
    folder = tmp_path / "ex"
    (folder / "images").mkdir(parents=True)
    for row in rows:
        shutil.copy(source / row["file"], folder / row["file"])
    outside = outside_world(folder, demo_data / "gz2_examples" / "images" / "Sb.png", monkeypatch)
    value, why = BAD_PATHS[case]
    rows[1]["file"] = value.format(outside=outside)
    write_csv(folder / "labels.csv", rows)
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="s", fmt="gz-examples", path=folder)

    problems = failure.value.problems
    assert all(line.startswith("labels.csv, row 3, column 'file': ") for line in problems), problems
    assert any(why in line for line in problems), problems
    assert snapshot(media_root) == before


@pytest.mark.parametrize("link, why", [("images/link.jpg", "'images/link.jpg' points outside the folder"),
                                       ("linked", "linked: a symlink to a folder outside")])
def test_a_folder_import_without_a_csv_refuses_symlinks_that_lead_out(link, why, demo_data, tmp_path, media_root,
                                                                      monkeypatch):
    folder = small_galaxy10_folder(demo_data, tmp_path / "in")
    outside_world(folder, demo_data / "gz2_examples" / "images" / "Sb.png", monkeypatch)
    (folder / "labels.csv").unlink()
    (folder / "images" / "link.jpg" if link == "linked" else folder / "linked").unlink()  # one trap at a time
    before = snapshot(media_root)

    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="folder", path=folder)

    assert [line for line in failure.value.problems if why in line and line.startswith(link)], failure.value.problems
    assert snapshot(media_root) == before


@pytest.mark.parametrize("name", ["g10\x00.h5", "."])
def test_a_galaxy10_import_refuses_a_file_name_with_a_nul_byte_or_a_folder(name, tmp_path, media_root):
    before = snapshot(media_root)
    with pytest.raises(ImportFailed) as failure:
        galaxies_import(dataset_name="g", fmt="galaxy10-h5", path=tmp_path / name)
    assert failure.value.problems == [f"{tmp_path / name}: no such file"]
    assert snapshot(media_root) == before


# --- Serving MEDIA_ROOT -------------------------------------------------------------------------------------------


@pytest.fixture
def served(settings, media_root, tmp_path):
    """Media serving on, a thumbnail inside MEDIA_ROOT, a secret beside it and symlinks inside leading to both."""
    settings.GALAXY_SERVE_FILES = True
    (media_root / "thumbnails").mkdir(parents=True)
    (media_root / "thumbnails" / "g1.jpg").write_bytes(b"\xff\xd8 a thumbnail")
    (tmp_path / "secret.txt").write_text("not for the web")
    os.symlink(tmp_path / "secret.txt", media_root / "thumbnails" / "secret.jpg")
    os.symlink(tmp_path, media_root / "thumbnails" / "outside")
    os.symlink(media_root / "thumbnails" / "g1.jpg", media_root / "thumbnails" / "alias.jpg")
    return media_root


@pytest.mark.parametrize("path, status", [
    ("/media/../secret.txt", 400),
    ("/media/%2e%2e/secret.txt", 400),
    ("/media/thumbnails/%2E%2E/%2E%2E/secret.txt", 400),
    ("/media//etc/passwd", 404),
    ("/media/%2Fetc%2Fpasswd", 404),
    ("/media/thumbnails\\..\\..\\secret.txt", 404),
    ("/media/thumbnails%5c..%5c..%5csecret.txt", 404),
    ("/media/thumbnails/secret.jpg", 404),
    ("/media/thumbnails/outside/secret.txt", 404),
    ("/media/thumbnails/g1.jpg%00.txt", 404),
])
def test_media_serving_refuses_whatever_leaves_the_media_folder(client, served, path, status):
    response = client.get(path)
    assert response.status_code == status
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"not for the web" not in body


def test_a_symlink_that_stays_inside_the_media_folder_is_served(client, served):
    response = client.get("/media/thumbnails/alias.jpg")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xff\xd8 a thumbnail"


@pytest.mark.parametrize("name", ["../../secret.txt", "thumbnails/secret.jpg", "thumbnails/outside/secret.txt",
                                  "thumbnails\\..\\..\\secret.txt"])
def test_a_thumbnail_name_tampered_to_leave_the_media_folder_is_not_redirected_to(client, expert, served, name):
    galaxy = make_galaxies(1)[0]
    Galaxy.objects.filter(pk=galaxy.pk).update(thumbnail=name)  # as a hand-edited row would be
    client.force_login(expert)
    assert client.get(reverse("galaxy-thumbnail", args=[galaxy.pk])).status_code == 404

    Galaxy.objects.filter(pk=galaxy.pk).update(thumbnail="thumbnails/g1.jpg")
    response = client.get(reverse("galaxy-thumbnail", args=[galaxy.pk]))
    assert response.status_code == 302 and response["Location"] == "/media/thumbnails/g1.jpg"
