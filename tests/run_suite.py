"""Run the whole pytest suite twice: on SQLite, then on a real PostgreSQL server. Standard library only.

Usage: python tests/run_suite.py [--require-postgres] [--sqlite-only | --postgres-only] [--private-postgres]
                                 [pytest arguments, e.g. -k votes -x] [-- arguments passed to pytest verbatim]

The PostgreSQL server is, in this order: TEST_DATABASE_URL when set; the local server on 127.0.0.1:5432 when it
answers (user postgres, database `postgres` or `test`, trust auth); a private throw-away cluster started here with
initdb + pg_ctl when the binaries exist (as user postgres when run as root, since initdb refuses root), always
stopped and deleted afterwards; otherwise only SQLite runs and a banner says so. `--private-postgres` skips the
first two, to exercise the private cluster on a machine that has a server. pytest-django creates the test database
`test_<DBNAME>` on that server and drops it afterwards.

Exit status: 0 when every run passed; 1 when a run failed (pytest's "no tests collected" counts as a failure);
2 for bad arguments or an unusable TEST_DATABASE_URL; 3 when --require-postgres (or --postgres-only) was given and
no PostgreSQL server could be found.
"""

import contextlib
import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
OUR_FLAGS = {"--require-postgres", "--sqlite-only", "--postgres-only", "--private-postgres"}
LOCAL_HOST, LOCAL_PORT, LOCAL_DATABASES = "127.0.0.1", 5432, ("postgres", "test")


@dataclass
class Outcome:
    backend: str
    returncode: int
    seconds: float
    counts: dict | None  # passed/failed/errors/skipped, None when pytest wrote no report


def split_args(argv: list[str]) -> tuple[set[str], list[str]]:
    """Our own flags, and everything else for pytest (all of it after a bare `--`)."""
    ours, pytest_args = set(), []
    for index, arg in enumerate(argv):
        if arg == "--":
            pytest_args.extend(argv[index + 1:])
            break
        (ours.add if arg in OUR_FLAGS else pytest_args.append)(arg)
    return ours, pytest_args


def junit_counts(path: Path) -> dict | None:
    """Test counts from a pytest JUnit XML report, or None when there is none."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    return {
        "passed": totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"],
        "failed": totals["failures"],
        "errors": totals["errors"],
        "skipped": totals["skipped"],
    }


# Set for the PostgreSQL pass when the SQLite pass ran: tests/conftest.py then leaves out tests/mlcore, which never
# touches a database (mlcore cannot import Django), so running it twice would only cost time.
DATABASE_FREE_DONE = "RUN_SUITE_DATABASE_FREE_DONE"


def run_pytest(backend: str, database_url: str | None, pytest_args: list[str], report_dir: Path, *,
               database_free_done: bool = False) -> Outcome:
    print(f"\n{'=' * 30} run_suite: pytest on {backend} {'=' * 30}", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", DATABASE_FREE_DONE)}
    if database_url:
        env["DATABASE_URL"] = database_url
    if database_free_done:
        env[DATABASE_FREE_DONE] = "1"
    report = report_dir / f"junit-{len(list(report_dir.iterdir()))}.xml"
    command = [sys.executable, "-m", "pytest", f"--junitxml={report}", *pytest_args]
    started = time.monotonic()
    returncode = subprocess.run(command, cwd=REPO_ROOT, env=env).returncode
    return Outcome(backend, returncode, time.monotonic() - started, junit_counts(report))


# --- Finding a PostgreSQL server ----------------------------------------------------------------------------------


def port_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_server_url() -> str | None:
    """postgres://postgres@127.0.0.1:5432/<db> for the first database that accepts us, None when none does."""
    if not port_answers(LOCAL_HOST, LOCAL_PORT):
        return None
    try:
        import psycopg  # the venv's driver; without it, trust the open port and the usual database
    except ImportError:
        return f"postgres://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{LOCAL_DATABASES[0]}"
    for dbname in LOCAL_DATABASES:
        try:
            psycopg.connect(host=LOCAL_HOST, port=LOCAL_PORT, user="postgres", dbname=dbname, connect_timeout=3).close()
        except psycopg.Error:
            continue
        return f"postgres://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{dbname}"
    return None


def postgres_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        return Path(on_path[0]).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                      if Path(p).parent.name.isdigit() else 0)
    for candidate in reversed(versions):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def private_cluster(bin_dir: Path):
    """A throw-away PostgreSQL cluster on a free loopback port; yields its URL, always stops and deletes it."""
    as_root = os.geteuid() == 0
    if as_root:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no user 'postgres' to run initdb as") from None
    # /tmp rather than $TMPDIR: as root, TMPDIR may sit under /root where the postgres user cannot reach.
    workdir = Path(tempfile.mkdtemp(prefix="run-suite-pg-", dir="/tmp" if as_root else None))
    data, log, port = workdir / "data", workdir / "server.log", free_port()

    def run_as_owner(*command: str, **kwargs) -> subprocess.CompletedProcess:
        if as_root:
            runuser = shutil.which("runuser")
            command = ((runuser, "-u", "postgres", "--", *command) if runuser
                       else ("su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)))
        return subprocess.run(command, capture_output=True, text=True, **kwargs)

    try:
        if as_root:
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
        made = run_as_owner(*initdb, "--locale=C.UTF-8")
        if made.returncode != 0:  # a system without the C.UTF-8 locale
            shutil.rmtree(data, ignore_errors=True)
            made = run_as_owner(*initdb, "--locale=C")
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{made.stdout}{made.stderr}")
        options = (f"-c listen_addresses={LOCAL_HOST} -p {port} -k {workdir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        # A session of its own: Ctrl-C reaches pytest and this script, and the finally below stops the server.
        started = run_as_owner(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                               "-t", "30", "start", start_new_session=True)
        if started.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{started.stdout}{started.stderr}{server_log}")
        yield f"postgres://postgres@{LOCAL_HOST}:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            stopped = run_as_owner(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
            if stopped.returncode != 0:
                run_as_owner(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"run_suite: stopped and removed the private PostgreSQL cluster in {workdir}", flush=True)


@contextlib.contextmanager
def postgres_server(force_private: bool):
    """Yields (label, url) of the server to test on, or (None, None) when there is none."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given and not force_private:
        parts = urlsplit(given)
        if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
            raise SystemExit(f"run_suite: TEST_DATABASE_URL={given!r} is not postgres://USER@HOST:PORT/DBNAME")
        yield f"PostgreSQL at {parts.hostname}:{parts.port or 5432} (TEST_DATABASE_URL)", given
        return
    local = None if force_private else local_server_url()
    if local:
        yield f"PostgreSQL at {LOCAL_HOST}:{LOCAL_PORT} (local server)", local
        return
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        yield None, None
        return
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(private_cluster(bin_dir))
        except RuntimeError as exc:  # the cluster cleaned up after itself; go on as if there were no binaries
            print(f"run_suite: could not start a private PostgreSQL cluster: {exc}", flush=True)
            yield None, None
            return
        port = urlsplit(url).port
        print(f"run_suite: started a private PostgreSQL cluster from {bin_dir} on port {port} "
              f"in {time.monotonic() - started:.1f} s", flush=True)
        yield f"PostgreSQL at {LOCAL_HOST}:{port} (private cluster, {bin_dir.parent.name})", url


# --- Reporting ----------------------------------------------------------------------------------------------------


def print_table(outcomes: list[Outcome]) -> None:
    width = max([len("backend")] + [len(o.backend) for o in outcomes])
    print(f"\n{'=' * 30} run_suite summary {'=' * 30}")
    print(f"{'backend':<{width}}  {'passed':>6}  {'failed':>6}  {'errors':>6}  {'skipped':>7}  {'time':>8}  result")
    for o in outcomes:
        c = o.counts or {}
        cells = [str(c.get(key, "-")) for key in ("passed", "failed", "errors", "skipped")]
        verdict = "ok" if o.returncode == 0 else ("NO TESTS COLLECTED" if o.returncode == 5 else
                                                  f"FAILED (pytest exit {o.returncode})")
        print(f"{o.backend:<{width}}  {cells[0]:>6}  {cells[1]:>6}  {cells[2]:>6}  {cells[3]:>7}  "
              f"{o.seconds:>6.1f} s  {verdict}")


def print_sqlite_only_banner() -> None:
    bar = "!" * 100
    print(f"\n{bar}\n!! ONLY SQLITE RAN: no PostgreSQL server (no TEST_DATABASE_URL, nothing answering on "
          f"{LOCAL_HOST}:{LOCAL_PORT},\n!! and no private cluster could be started with initdb/pg_ctl).\n!! Install "
          f"PostgreSQL, or set TEST_DATABASE_URL=postgres://USER@HOST:PORT/DBNAME, to test on the production "
          f"database.\n{bar}", flush=True)


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    flags, pytest_args = split_args(argv)
    if {"--sqlite-only", "--postgres-only"} <= flags or {"--sqlite-only", "--require-postgres"} <= flags:
        print("run_suite: --sqlite-only cannot be combined with --postgres-only or --require-postgres")
        return 2
    outcomes: list[Outcome] = []
    ran_postgres = False
    with tempfile.TemporaryDirectory(prefix="run-suite-reports-") as reports:
        if "--postgres-only" not in flags:
            outcomes.append(run_pytest("SQLite", None, pytest_args, Path(reports)))
        if "--sqlite-only" not in flags:
            with postgres_server("--private-postgres" in flags) as (label, url):
                if url:
                    outcomes.append(run_pytest(label, url, pytest_args, Path(reports),
                                               database_free_done="--postgres-only" not in flags))
                    ran_postgres = True
    if outcomes:
        print_table(outcomes)
        if len(outcomes) == 2:
            print("(tests/mlcore touches no database: it ran in the SQLite pass only)")
    if not ran_postgres and "--sqlite-only" not in flags:
        print_sqlite_only_banner()
        if flags & {"--require-postgres", "--postgres-only"}:
            print("run_suite: PostgreSQL was required and did not run.")
            return 3
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


def _interrupt(signum, _frame):
    # SIGTERM/SIGHUP (a CI cancel, a closed terminal) unwind like Ctrl-C, so a private cluster is always stopped.
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\nrun_suite: interrupted", file=sys.stderr)
        sys.exit(130)
