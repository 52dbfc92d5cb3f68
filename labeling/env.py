"""Typed readers for settings taken from environment variables.

Each helper raises ImproperlyConfigured naming the variable when its value cannot be used, so a typo in a
deployment fails at start-up instead of surfacing later as odd behaviour.
"""

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
               "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def env_rates(name: str, default: str) -> tuple[tuple[int, int], ...]:
    """Request rates such as ``10/minute,600/hour`` as ((10, 60), (600, 3600)); an empty value means no limit.

    Raises:
        ImproperlyConfigured: naming the variable, for a part that is not ``<count>/<second|minute|hour|day>``.
    """
    raw = os.environ.get(name, default)
    rates = []
    for part in (item.strip() for item in raw.split(",")):
        if not part:
            continue
        count, _, unit = part.partition("/")
        seconds = _RATE_UNITS.get(unit.strip().lower())
        if not count.strip().isdigit() or int(count) < 1 or seconds is None:
            raise ImproperlyConfigured(f"{name}={raw!r}: {part!r} is not a rate such as 10/minute (a count of 1 "
                                       "or more per second, minute, hour or day)")
        rates.append((int(count), seconds))
    return tuple(rates)


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def parse_database_url(url: str, *, variable: str = "DATABASE_URL") -> dict:
    """Turn ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into a Django DATABASES entry.

    Raises:
        ImproperlyConfigured: for an unknown scheme or a URL without a database name.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as dj-database-url reads them.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured(f"{variable}={url!r} names no SQLite file")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"{variable}={url!r} names no database (postgres://user@host:port/NAME)")
        options = dict(parse_qsl(parts.query))
        # ?conn_max_age=0 closes the connection after each request: needed under runserver, whose thread per request
        # would otherwise leave one open connection behind per request until the server runs out.
        max_age = options.pop("conn_max_age", "60")
        if not max_age.isdigit():
            raise ImproperlyConfigured(f"{variable}={url!r}: conn_max_age must be a whole number of seconds")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": int(max_age),
        }
    raise ImproperlyConfigured(f"{variable}={url!r}: scheme {scheme!r} is not supported (use postgres:// or sqlite://)")
