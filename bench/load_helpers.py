"""What the loopback load tests (classify_load.py, labelling_load.py) share: a throw-away PostgreSQL database with
Django set up on it, the application served in a subprocess on 127.0.0.1, HTTP clients with their own cookies that
time every request, and percentiles."""

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import HTTPCookieProcessor, Request, build_opener

from pgdb import postgres_database

REPO_ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# --- the database and the server -------------------------------------------------------------------------------


def server_environment(database_url: str, folder: Path, *, connection_per_request: bool = True) -> dict:
    """The production settings on plain HTTP, the database at ``database_url``, files under ``folder``."""
    if connection_per_request:
        # runserver starts a thread per request: a persistent connection would stay open behind each one.
        separator = "&" if "?" in database_url else "?"
        database_url = f"{database_url}{separator}conn_max_age=0"
    return {**os.environ, "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "labeling.settings",
            "DJANGO_SECRET_KEY": "benchmark-only", "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "GALAXY_SERVE_FILES": "1", "VAR_DIR": str(folder / "var"), "MEDIA_ROOT": str(folder / "media"),
            # Plain HTTP on loopback, no collectstatic: the production HTTPS and static defaults opted out.
            "DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_SECURE_COOKIES": "0", "DJANGO_STATIC_MANIFEST": "0",
            "GALAXY_FEATURES_ROOT": str(folder / "features"), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def django_on_throwaway_database(postgres: str, prefix: str, *, connection_per_request: bool = True):
    """Yield (folder, server environment) with Django set up in this process on a new database ``<prefix>_<pid>``
    of the server ``postgres``; the folder and the database are gone afterwards."""
    url, drop = postgres_database(postgres, prefix)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
            folder = Path(tmp)
            environment = server_environment(url, folder, connection_per_request=connection_per_request)
            os.environ.update(environment)
            sys.path[:0] = [str(REPO_ROOT)]
            import django

            django.setup()
            from django.db import connections

            try:
                yield folder, environment
            finally:
                connections.close_all()
    finally:
        drop()


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runserver_command(port: int) -> list[str]:
    return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


def gunicorn_command(port: int, *, workers: int, threads: int, access_log: Path) -> list[str]:
    """gunicorn as docker-compose.yml runs it; the access log holds each request's own time on the server (µs)."""
    return [sys.executable, "-m", "gunicorn", "labeling.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
            str(workers), "--threads", str(threads), "--timeout", "120", "--access-logfile", str(access_log),
            "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]


def server_times(access_log: Path, kind_of) -> dict[str, list[float]]:
    """Request times in ms from a gunicorn access log written with gunicorn_command, per kind: ``kind_of(method,
    path)`` names a request's kind, or None to leave it out."""
    times = defaultdict(list)
    for line in access_log.read_text().splitlines():
        method, path, _, micros = line.split()
        kind = kind_of(method, path)
        if kind:
            times[kind].append(int(micros) / 1e3)
    return times


def start_server(environment: dict, port: int, log: Path, probe: str, command: list[str] | None = None):
    """The application (``command``, by default `manage.py runserver --noreload`) on 127.0.0.1:port, once it
    answers ``probe`` with 200."""
    with log.open("wb") as out:
        server = subprocess.Popen(command or runserver_command(port), cwd=REPO_ROOT, env=environment, stdout=out,
                                  stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with build_opener().open(f"http://127.0.0.1:{port}{probe}", timeout=5) as response:
                if response.status == 200:
                    return server
        except (URLError, OSError):
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def tracebacks(log: Path) -> str:
    """The start of each traceback in the server's log, for the report."""
    text = log.read_text(errors="replace")
    return "\n".join(text[m.start():m.start() + 2000] for m in re.finditer("Traceback", text))[:6000]


# --- the clients ----------------------------------------------------------------------------------------------


@dataclass
class Timings:
    """Every client's request times and statuses, gathered under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    times: dict = field(default_factory=lambda: defaultdict(list))  # kind -> ms
    statuses: Counter = field(default_factory=Counter)  # (kind, status) -> n

    def errors(self) -> dict[str, int]:
        """'<kind> <status>' -> n for every answer outside 2xx (status 0: a timeout or a failed connection)."""
        return {f"{kind} {status}": n for (kind, status), n in self.statuses.items() if not 200 <= status < 300}


class HttpClient:
    """A visitor with its own cookies (a session and the CSRF token), timing each request under a kind."""

    def __init__(self, base: str, timings: Timings, timeout: float = 60):
        self.base, self.timings, self.timeout = base, timings, timeout
        self.cookies = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies))

    def call(self, kind: str, method: str, path: str, body: dict | None = None,
             form: bytes | None = None) -> tuple[int, object]:
        """(status, parsed JSON or page text), the time recorded under ``kind``; status 0 for a failed connection.
        ``body`` goes as JSON with the X-CSRFToken header, ``form`` as an urlencoded form."""
        headers = {"Accept": "application/json"}
        data = form
        if body is not None:
            data = json.dumps(body).encode()
            headers.update({"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")})
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                status, text = response.status, response.read().decode()
        except HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except (URLError, OSError) as error:
            status, text = 0, repr(error)
        elapsed = (time.perf_counter() - started) * 1e3
        with self.timings.lock:
            self.timings.times[kind].append(elapsed)
            self.timings.statuses[(kind, status)] += 1
        if text.lstrip().startswith(("{", "[")):
            return status, json.loads(text)
        return status, text

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.cookies if c.name == name), "")

    def twice_at_once(self, kind: str, path: str, body: dict) -> list[tuple[int, object]]:
        """The same JSON POST from two threads released together (a double click, two tabs): both replies."""
        replies: list = [None, None]
        gate = threading.Barrier(2)

        def send(slot: int) -> None:
            gate.wait()
            replies[slot] = self.call(kind, "POST", path, body)

        threads = [threading.Thread(target=send, args=(slot,)) for slot in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return replies
