"""Helpers for tests that run the product in real processes (commands, workers, servers) against the database
server the suite runs on."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]


def manage(env, *args, **kwargs):
    return subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def process_env(folder: Path, database_url: str | None) -> dict:
    """The environment of a command run as a person runs it: development settings, its own VAR_DIR under ``folder``
    (SQLite file, media) and feature root, and the fresh database when there is one (see fresh_database_url)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_DEBUG="1", VAR_DIR=str(folder / "var"), GALAXY_FEATURES_ROOT=str(folder / "features"))
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def fresh_database_url(prefix: str = "process_test"):
    """The DATABASE_URL of a fresh database on the server the suite runs on (None for SQLite: a file in VAR_DIR)."""
    url = os.environ.get("DATABASE_URL")
    if connection.vendor != "postgresql" or not url:
        yield None
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{prefix}_{os.getpid()}"
    admin = {"host": parts.hostname, "port": parts.port or 5432, "user": parts.username, "dbname": "postgres",
             "password": parts.password, "autocommit": True}
    with psycopg.connect(**admin) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(**admin) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
