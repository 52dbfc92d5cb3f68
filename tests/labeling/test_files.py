"""Images served by Django itself when GALAXY_SERVE_FILES is on, and only then; collected static files always,
by whitenoise."""

import pytest


@pytest.fixture
def a_thumbnail(media_root):
    path = media_root / "thumbnails" / "set" / "g1.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    return path


def test_media_files_are_served_when_the_setting_is_on(client, settings, a_thumbnail):
    settings.GALAXY_SERVE_FILES = True
    response = client.get("/media/thumbnails/set/g1.jpg")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == a_thumbnail.read_bytes()
    assert response["Content-Type"] == "image/jpeg"


def test_media_files_are_not_served_when_the_setting_is_off(client, settings, a_thumbnail):
    settings.GALAXY_SERVE_FILES = False
    assert client.get("/media/thumbnails/set/g1.jpg").status_code == 404


@pytest.mark.parametrize("path", ["/media/../secret.txt", "/media/%2e%2e/secret.txt",
                                  "/media/thumbnails/../../secret.txt"])
def test_a_path_that_leaves_the_media_folder_is_refused(client, settings, a_thumbnail, media_root, path):
    settings.GALAXY_SERVE_FILES = True
    (media_root.parent / "secret.txt").write_text("not for the web")
    response = client.get(path)
    assert response.status_code == 400
    assert b"not for the web" not in response.content


def test_collected_static_files_are_served_by_whitenoise_whatever_the_media_setting_says(client, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "collected"
    (settings.STATIC_ROOT / "css").mkdir(parents=True)
    (settings.STATIC_ROOT / "css" / "site.css").write_text("body { margin: 0 }")
    settings.GALAXY_SERVE_FILES = False

    response = client.get("/static/css/site.css")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"body { margin: 0 }"
    assert response["Content-Type"].startswith("text/css")
    assert client.get("/static/css/missing.css").status_code == 404
