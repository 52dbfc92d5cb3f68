"""A throw-away PostgreSQL database for a benchmark run, on a server the benchmark is pointed at."""

import os
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_database(server_url: str, prefix: str):
    """(URL of a new database ``<prefix>_<pid>`` on the server, function that drops it)."""
    import psycopg

    parts = urlsplit(server_url)
    name = f"{prefix}_{os.getpid()}"
    admin = dict(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                 password=parts.password or None, dbname=parts.path.lstrip("/") or "postgres")
    with psycopg.connect(**admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(**admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop
