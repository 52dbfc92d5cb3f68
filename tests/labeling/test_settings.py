"""Settings read from the environment: the typed helpers, and labeling.settings loaded afresh in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from labeling.env import env_bool, env_int, env_list, parse_database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
                      "DJANGO_ALLOWED_HOSTS", "Q_TIMEOUT", "Q_WORKERS", "Q_CLUSTER_NAME", "Q_SITE_NAME", "MEDIA_ROOT",
                      "STATIC_ROOT", "GALAXY_GPU_CLUSTER", "GALAXY_GPU_JOB_KINDS", "GALAXY_EXTRACT_CHUNK",
                      "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_HSTS_SECONDS", "DJANGO_SECURE_COOKIES",
                      "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_SECURE_HSTS_PRELOAD",
                      "DJANGO_SECURE_PROXY_SSL_HEADER", "DJANGO_STATIC_MANIFEST")


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False),
])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG") is expected


def test_env_bool_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_bool("SOME_FLAG", True) is True
    assert env_bool("SOME_FLAG") is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_env_bool_rejects_anything_else_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"SOME_FLAG='{raw}'"):
        env_bool("SOME_FLAG")


def test_env_int_reads_integers_and_defaults(monkeypatch):
    monkeypatch.setenv("SOME_COUNT", "42")
    assert env_int("SOME_COUNT", 1) == 42
    monkeypatch.delenv("SOME_COUNT")
    assert env_int("SOME_COUNT", 7) == 7


@pytest.mark.parametrize("raw", ["forty", "4.5", ""])
def test_env_int_rejects_a_non_integer_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("SOME_COUNT", raw)
    with pytest.raises(ImproperlyConfigured, match="SOME_COUNT=.* is not an integer"):
        env_int("SOME_COUNT", 1)


def test_env_int_rejects_a_value_below_the_minimum_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_COUNT", "0")
    assert env_int("SOME_COUNT", 1, minimum=0) == 0
    with pytest.raises(ImproperlyConfigured, match="SOME_COUNT=0 is below the minimum of 1"):
        env_int("SOME_COUNT", 5, minimum=1)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("SOME_HOSTS", " a.example , b.example,,")
    assert env_list("SOME_HOSTS", ["x"]) == ["a.example", "b.example"]
    monkeypatch.setenv("SOME_HOSTS", "")
    assert env_list("SOME_HOSTS", ["x"]) == []
    monkeypatch.delenv("SOME_HOSTS")
    assert env_list("SOME_HOSTS", ["x"]) == ["x"]


def test_parse_database_url_reads_a_full_postgres_url():
    entry = parse_database_url("postgres://gal%40xy:p%2Fss@db.example:5433/zoo?sslmode=require")
    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"]) == ("zoo", "gal@xy", "p/ss")
    assert (entry["HOST"], entry["PORT"]) == ("db.example", "5433")
    assert entry["OPTIONS"] == {"sslmode": "require"}


def test_parse_database_url_reads_a_postgres_url_without_password_or_port():
    entry = parse_database_url("postgresql://postgres@127.0.0.1/test")
    assert (entry["USER"], entry["PASSWORD"], entry["HOST"], entry["PORT"]) == ("postgres", "", "127.0.0.1", "")


def test_persistent_connections_last_a_minute_unless_the_url_says_otherwise():
    assert parse_database_url("postgres://u@h/db")["CONN_MAX_AGE"] == 60
    entry = parse_database_url("postgres://u@h/db?conn_max_age=0&sslmode=disable")
    assert entry["CONN_MAX_AGE"] == 0 and entry["OPTIONS"] == {"sslmode": "disable"}
    with pytest.raises(ImproperlyConfigured, match="conn_max_age"):
        parse_database_url("postgres://u@h/db?conn_max_age=forever")


@pytest.mark.parametrize(("url", "name"), [("sqlite:///var/db.sqlite3", "var/db.sqlite3"),
                                           ("sqlite:////srv/zoo/db.sqlite3", "/srv/zoo/db.sqlite3")])
def test_parse_database_url_reads_relative_and_absolute_sqlite_paths(url, name):
    assert parse_database_url(url) == {"ENGINE": "django.db.backends.sqlite3", "NAME": name}


@pytest.mark.parametrize(("url", "fault"), [
    ("mysql://root@db/zoo", "scheme 'mysql' is not supported"),
    ("postgres://postgres@127.0.0.1:5432/", "names no database"),
    ("sqlite://", "names no SQLite file"),
    ("127.0.0.1:5432/test", "is not supported"),
])
def test_parse_database_url_rejects_unusable_urls_naming_the_variable(url, fault):
    with pytest.raises(ImproperlyConfigured, match=fault) as raised:
        parse_database_url(url, variable="TEST_DATABASE_URL")
    assert str(raised.value).startswith("TEST_DATABASE_URL=")


# --- labeling.settings loaded in a fresh interpreter, as manage.py and gunicorn load it ----------------------------

_PRINT_SETTINGS = """
import json
from labeling import settings as s
db = s.DATABASES["default"]
print(json.dumps({"SECRET_KEY": s.SECRET_KEY, "DEBUG": s.DEBUG, "ENGINE": db["ENGINE"], "NAME": str(db["NAME"]),
                  "HOST": db.get("HOST"), "Q_CLUSTER": s.Q_CLUSTER, "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
                  "https": {name: getattr(s, name) for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
                            "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE",
                            "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER")},
                  "STATIC_STORAGE": s.STORAGES["staticfiles"]["BACKEND"]}))
"""


def _load_settings(var_dir: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    clean.update({"VAR_DIR": str(var_dir), **env})
    return subprocess.run([sys.executable, "-c", _PRINT_SETTINGS], cwd=REPO_ROOT, env=clean, capture_output=True,
                          text=True, timeout=60)


def _loaded(var_dir: Path, **env: str) -> dict:
    process = _load_settings(var_dir, **env)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_settings_refuse_to_load_without_a_secret_key_outside_debug(tmp_path):
    process = _load_settings(tmp_path / "var")

    assert process.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in process.stderr
    assert not (tmp_path / "var" / "dev-secret-key").exists()


def test_settings_in_debug_generate_a_development_key_under_var_dir_and_keep_it(tmp_path):
    first = _loaded(tmp_path / "var", DJANGO_DEBUG="1")
    second = _loaded(tmp_path / "var", DJANGO_DEBUG="1")

    key_file = tmp_path / "var" / "dev-secret-key"
    assert first["DEBUG"] is True
    assert len(first["SECRET_KEY"]) >= 50
    assert first["SECRET_KEY"] == key_file.read_text().strip() == second["SECRET_KEY"]
    assert first["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]


def test_settings_use_a_given_secret_key_and_sqlite_under_var_dir_by_default(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60)

    assert loaded["SECRET_KEY"] == "k" * 60
    assert loaded["DEBUG"] is False
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert loaded["Q_CLUSTER"]["orm"] == "default"
    assert "redis" not in loaded["Q_CLUSTER"]


def test_settings_use_postgresql_when_database_url_names_it(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60,
                     DATABASE_URL="postgres://zoo@db.example:5432/galaxies")

    assert loaded["ENGINE"] == "django.db.backends.postgresql"
    assert (loaded["NAME"], loaded["HOST"]) == ("galaxies", "db.example")


def test_settings_send_tasks_through_redis_when_redis_url_is_set(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, REDIS_URL="redis://cache.example:6379/2")

    assert loaded["Q_CLUSTER"]["redis"] == "redis://cache.example:6379/2"
    assert "orm" not in loaded["Q_CLUSTER"]


@pytest.mark.parametrize(("variable", "value"), [("DJANGO_DEBUG", "maybe"), ("Q_TIMEOUT", "0"),
                                                 ("DATABASE_URL", "mysql://root@db/zoo"),
                                                 ("DJANGO_SECURE_COOKIES", "maybe"),
                                                 ("DJANGO_SECURE_HSTS_SECONDS", "-1"),
                                                 ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")])
def test_settings_refuse_a_bad_value_naming_the_variable(tmp_path, variable, value):
    process = _load_settings(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, **{variable: value})

    assert process.returncode != 0
    assert f"ImproperlyConfigured: {variable}=" in process.stderr


# --- HTTPS and static files: production defaults outside DEBUG, explicit opt-outs --------------------------------

ONE_YEAR = 31_536_000


def test_settings_outside_debug_serve_https_only_and_static_files_from_the_manifest(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60)

    assert loaded["https"] == {"SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": ONE_YEAR,
                               "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
                               "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
                               "SECURE_PROXY_SSL_HEADER": None}
    assert loaded["STATIC_STORAGE"] == "labeling.storage.StaticStorage"


def test_settings_in_debug_stay_on_plain_http_with_plain_static_storage(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_DEBUG="1")

    assert loaded["https"]["SECURE_SSL_REDIRECT"] is False
    assert loaded["https"]["SECURE_HSTS_SECONDS"] == 0
    assert loaded["https"]["SESSION_COOKIE_SECURE"] is loaded["https"]["CSRF_COOKIE_SECURE"] is False
    assert loaded["STATIC_STORAGE"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_a_plain_http_loopback_server_opts_out_of_the_redirect_and_secure_cookies_explicitly(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, DJANGO_SECURE_SSL_REDIRECT="0",
                     DJANGO_SECURE_COOKIES="0", DJANGO_STATIC_MANIFEST="0")

    assert loaded["DEBUG"] is False
    assert loaded["https"]["SECURE_SSL_REDIRECT"] is False
    assert loaded["https"]["SESSION_COOKIE_SECURE"] is loaded["https"]["CSRF_COOKIE_SECURE"] is False
    assert loaded["STATIC_STORAGE"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_hsts_length_subdomains_and_preload_are_configurable(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, DJANGO_SECURE_HSTS_SECONDS="3600",
                     DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="0", DJANGO_SECURE_HSTS_PRELOAD="no")

    assert loaded["https"]["SECURE_HSTS_SECONDS"] == 3600
    assert loaded["https"]["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert loaded["https"]["SECURE_HSTS_PRELOAD"] is False


def test_the_tls_proxy_header_is_trusted_only_when_named(tmp_path):
    loaded = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert loaded["https"]["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]

    blank = _loaded(tmp_path / "var", DJANGO_SECRET_KEY="k" * 60, DJANGO_SECURE_PROXY_SSL_HEADER="")
    assert blank["https"]["SECURE_PROXY_SSL_HEADER"] is None
