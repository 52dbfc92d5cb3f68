"""GET /healthz/ (labeling/health.py): 200 while the database answers, 503 when it does not, and reachable the way
a container health check calls it: from inside, by IP, over plain HTTP, under production settings."""

import json

import pytest

from tests.labeling.process_helpers import manage, process_env

pytestmark = pytest.mark.django_db

# What a health check inside the container sends: its own loopback address as the host, over plain HTTP.
FROM_INSIDE = {"HTTP_HOST": "127.0.0.1:8000"}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["galaxies.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    return settings


def test_it_answers_ok_while_the_database_answers(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert client.head("/healthz/").status_code == 200


def test_a_check_from_inside_the_container_passes_where_every_other_page_is_refused(client, production):
    assert client.get("/healthz/", **FROM_INSIDE).status_code == 200
    # The host check and the HTTPS redirect still hold everywhere else, the login page and the API included.
    assert client.get("/login/", **FROM_INSIDE).status_code == 400
    assert client.get("/api/", **FROM_INSIDE).status_code == 400
    redirected = client.get("/healthz/x", HTTP_HOST="galaxies.example.org")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")


def test_it_only_reads(client):
    response = client.post("/healthz/")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_it_answers_503_without_saying_why_when_the_database_is_unreachable(tmp_path):
    # A real server address with nothing listening (port 9, discard), in a process of its own.
    env = process_env(tmp_path, "postgres://galaxies:secret@127.0.0.1:9/galaxies?connect_timeout=3")
    done = manage(env, "shell", "-c", "from django.test import Client; r = Client().get('/healthz/'); "
                                      "print(r.status_code, r.content.decode())")
    assert done.returncode == 0, done.stderr[-2000:]
    status, body = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert json.loads(body) == {"status": "unavailable", "database": "unreachable"}
    assert "127.0.0.1" not in body and "secret" not in body
    assert "the database does not answer" in done.stderr  # logged for whoever runs the server
