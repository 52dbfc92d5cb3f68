"""Benchmark: import the real GZ2 Stripe 82 vote table (19,761 galaxies, 228 columns) on SQLite and PostgreSQL.

Each backend runs in a fresh process on a fresh, migrated database: the first import (every galaxy and its 11
vote summaries created), then the same file again (compared row by row, nothing written). Prints a table.

    .venv/bin/python bench/import_gz2_table.py [--postgres postgres://USER@HOST:PORT/DB] [--sqlite-only]

The PostgreSQL server defaults to the local one (postgres@127.0.0.1:5432/postgres); a throw-away database
`bench_import_<pid>` is created on it and dropped afterwards.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE = REPO_ROOT / "labeling" / "demo_data" / "gz2_stripe82" / "gz2_table5_stripe82_votes.csv.gz"
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402  (bench/ is on sys.path when run as a script)


def peak_rss_mb() -> float:
    """This process's own peak resident memory. (ru_maxrss would do, but Linux carries it over from the parent
    through fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(database_url: str) -> dict:
    """Runs in the child process: migrate, import twice, return timings and peak memory."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labeling.settings")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from labeling.models import VoteSummary
    from labeling.services.imports.votes import votes_import

    call_command("migrate", verbosity=0)
    timings = {}
    for run in ("first", "again"):
        started = time.perf_counter()
        report = votes_import(dataset_name="GZ2 Stripe 82", fmt="gz2-table", path=TABLE)
        timings[run] = (time.perf_counter() - started, report)
    first, again = timings["first"], timings["again"]
    return {
        "rows": first[1].created,
        "summaries": VoteSummary.objects.count(),
        "first_s": first[0],
        "again_s": again[0],
        "again_unchanged": again[1].unchanged,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(database_url: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", database_url], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run on {database_url} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        results.append(("SQLite", run_child(f"sqlite:///{folder}/bench.sqlite3")))
    if not args.sqlite_only:
        url, drop = postgres_database(args.postgres, "bench_import")
        try:
            results.append(("PostgreSQL", run_child(url)))
        finally:
            drop()

    print(f"GZ2 Stripe 82 vote table: {TABLE.name} ({TABLE.stat().st_size / 1e6:.1f} MB gzipped)")
    print(f"{'backend':<11} {'galaxies':>8} {'summaries':>9} {'first import':>13} {'galaxies/s':>10} "
          f"{'again (no change)':>17} {'peak RSS':>9}")
    for backend, r in results:
        assert r["again_unchanged"] == r["rows"], r
        print(f"{backend:<11} {r['rows']:>8,} {r['summaries']:>9,} {r['first_s']:>11.1f} s "
              f"{r['rows'] / r['first_s']:>10,.0f} {r['again_s']:>15.1f} s {r['peak_rss_mb']:>6.0f} MB")


if __name__ == "__main__":
    main()
