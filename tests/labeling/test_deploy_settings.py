"""Production settings as a deployment gets them: `manage.py check --deploy` and whitenoise's collected static files,
with labeling.settings loaded from a production environment in a subprocess (the suite's own settings run on plain
HTTP, see tests/settings.py)."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_HOST = "galaxies.example.org"
# Variables of this deployment's configuration that a developer's shell or the suite may have set.
SCRUBBED = {"DATABASE_URL", "REDIS_URL", "VAR_DIR", "MEDIA_ROOT", "STATIC_ROOT"}


def production_env(tmp_path: Path, **overrides: str) -> dict:
    """What an operator sets: a long random key, DEBUG off, a database, the public host. Nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GALAXY_", "Q_")) and k not in SCRUBBED}
    env.update(DJANGO_SETTINGS_MODULE="labeling.settings", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_ALLOWED_HOSTS=PUBLIC_HOST,
               VAR_DIR=str(tmp_path / "var"), STATIC_ROOT=str(tmp_path / "static"))
    env.update(overrides)
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return manage(env, "check", "--deploy", "--fail-level", "WARNING")


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    checked = check_deploy(production_env(tmp_path))

    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout
    assert "WARNING" not in checked.stdout + checked.stderr


def test_check_deploy_fails_for_a_plain_http_server_that_opted_out_of_https(tmp_path):
    checked = check_deploy(production_env(tmp_path, DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0"))

    assert checked.returncode != 0
    for warning in ("security.W008", "security.W012", "security.W016"):
        assert warning in checked.stderr


def test_check_deploy_fails_without_hsts(tmp_path):
    checked = check_deploy(production_env(tmp_path, DJANGO_SECURE_HSTS_SECONDS="0"))

    assert checked.returncode != 0
    assert "security.W004" in checked.stderr


@pytest.mark.parametrize("key", ["too-short-to-be-a-key", "django-insecure-" + "x1y2z3" * 10, "ab" * 40])
def test_check_deploy_catches_a_short_or_weak_secret_key(tmp_path, key):
    checked = check_deploy(production_env(tmp_path, DJANGO_SECRET_KEY=key))

    assert checked.returncode != 0
    assert "security.W009" in checked.stderr


_FETCH_STATIC = f"""
import json
HOST = {PUBLIC_HOST!r}
import django
django.setup()
from django.templatetags.static import static
from django.test import Client
url = static("css/site.css")
client = Client(HTTP_HOST=HOST)
secure = client.get(url, secure=True, HTTP_ACCEPT_ENCODING="gzip")
plain = client.get(url)
print(json.dumps({{"url": url, "status": secure.status_code, "cache": secure.get("Cache-Control"),
                  "encoding": secure.get("Content-Encoding"), "plain": plain.status_code,
                  "location": plain.get("Location")}}))
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """collectstatic run once, as the Docker image's build runs it; yields the production environment."""
    folder = tmp_path_factory.mktemp("collected")
    env = production_env(folder)
    done = manage(env, "collectstatic", "--no-input", "-v0")
    assert done.returncode == 0, done.stderr
    return env


def test_collected_static_files_get_hashed_names_compression_and_a_year_of_caching(collected):
    fetched = subprocess.run([sys.executable, "-c", _FETCH_STATIC], cwd=REPO_ROOT, env=collected,
                             capture_output=True, text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    result = json.loads(fetched.stdout)

    assert re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", result["url"])
    assert result["status"] == 200
    assert result["encoding"] == "gzip"
    assert "immutable" in result["cache"] and "max-age=315360000" in result["cache"]
    assert result["plain"] == 301
    assert result["location"] == f"https://{PUBLIC_HOST}{result['url']}"


def test_every_static_file_a_template_names_is_in_the_manifest(collected):
    manifest = json.loads((Path(collected["STATIC_ROOT"]) / "staticfiles.json").read_text())["paths"]
    named = {match for template in (REPO_ROOT / "templates").rglob("*.html")
             for match in re.findall(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""", template.read_text())}

    assert named, "found no {% static %} in the templates: the pattern is wrong"
    assert sorted(named - manifest.keys()) == []
