"""Benchmark: `manage.py export --what labels` of a dataset with 300,000 current expert labels on PostgreSQL, as CSV
and as JSON Lines; target under 15 s and under 200 MB peak RSS each.

The database is a throw-away one, `bench_export_<pid>`, created on the server (by default the local one,
postgres@127.0.0.1:5432), migrated, filled and dropped afterwards; --keep leaves it (and prints its URL) and
--database URL reuses one kept before, filling it only when it lacks the bench dataset. The fill (big tables with
COPY, as bench/labelling_fill.py does) holds 250,000 galaxies of the shipped galaxy10 schema:

- 200,000 imported labels (galaxies 0-199,999) and 100,000 labels of two experts (galaxies 150,000-199,999, both),
  so 300,000 current labels, a third of the galaxies with three labels that may disagree;
- 30,000 superseded labels (history the export leaves out), 1,000 admin resolutions;
- 70,000 consensus labels (galaxies 180,000-249,999), a fifth of them the uncertain class.

Each export runs `manage.py export` in a child process, as an admin would, writing to a file; its wall time and
peak resident memory (ru_maxrss of that child alone, from os.wait4) are what the table shows. The row count is
checked against what the fill implies.

    .venv/bin/python bench/export.py [--postgres URL | --database URL] [--keep] [--profile]

--profile runs each export under cProfile and prints its 25 most expensive functions (stderr); the times then
include the profiler's overhead.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402  (bench/ is on sys.path when run as a script)

DATASET = "Bench export"
GALAXIES = 250_000
IMPORTED = range(0, 200_000)
TWO_EXPERTS = range(150_000, 200_000)
SUPERSEDED = range(150_000, 180_000)
CONSENSUS = range(180_000, 250_000)
RESOLUTIONS = 1_000
TARGET_S, TARGET_MB = 15.0, 200.0


def django_env(database_url: str, folder: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "DJANGO_SECRET_KEY": "benchmark-only",
            "DJANGO_SETTINGS_MODULE": "labeling.settings", "VAR_DIR": str(Path(folder) / "var"),
            "MEDIA_ROOT": str(Path(folder) / "media"), "LOG_LEVEL": "WARNING"}


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def fill() -> dict:
    """Runs in a child process on the bench database: migrate and fill it, unless it holds the dataset already.
    Returns the expected row count and the fill's times."""
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]
    import django

    django.setup()
    from datetime import timedelta

    import numpy as np
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from labelling_fill import copy_rows

    from labeling.models import ConsensusLabel, Dataset, ExpertLabel, Galaxy, LabelResolution
    from labeling.services.imports.datasets import dataset_get_or_create
    from labeling.services.labelling.labels import EXPERTS_GROUP
    from labeling.services.votes.schemas import schema_get_or_load_shipped

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(0)
    ten = 10
    uncertain_share = 0.2
    # Final rows: every galaxy with an expert label, and the consensus-only galaxies whose class is not uncertain.
    uncertain = rng.random(len(CONSENSUS)) < uncertain_share
    consensus_only = sum(1 for i, galaxy in enumerate(CONSENSUS) if galaxy >= IMPORTED.stop and not uncertain[i])
    expected = (len(IMPORTED) + 2 * len(TWO_EXPERTS) + len(CONSENSUS) + RESOLUTIONS + len(IMPORTED) + consensus_only)
    if Dataset.objects.filter(name=DATASET).exists():
        say(f"reusing the filled database ({DATASET!r} exists)")
        return {"expected_rows": expected, "seconds": {}}

    seconds = {}
    started = time.perf_counter()
    now = timezone.now()
    schema = schema_get_or_load_shipped(name="galaxy10")
    classes = dict(schema.classes.values_list("key", "id"))
    keys = [str(k) for k in range(ten)]
    rule = schema.rules.get(name="gz-decals-thresholds")
    dataset = dataset_get_or_create(name=DATASET)
    copy_rows(Galaxy, ["dataset", "external_id", "image", "thumbnail", "ra", "dec", "content_hash", "metadata",
                       "created_at"],
              ((dataset.pk, f"J{i:06d}", "", "", float(i % 36000) / 100, float(i % 18000) / 100 - 90, "", "{}", now)
               for i in range(GALAXIES)))
    ids = Galaxy.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)
    ids = np.fromiter(ids, np.int64, count=GALAXIES).tolist()
    seconds["galaxies"] = time.perf_counter() - started
    say(f"{GALAXIES:,} galaxies in {seconds['galaxies']:.1f} s")

    mark = time.perf_counter()
    experts_group = Group.objects.get_or_create(name=EXPERTS_GROUP)[0]
    experts = []
    for name in ("bench-edwin", "bench-vera"):
        experts.append(User.objects.create_user(name, password=None))
        experts[-1].groups.add(experts_group)
    admin = User.objects.create_user("bench-admin", password=None, is_staff=True, is_superuser=True)
    labels = rng.integers(0, ten, size=GALAXIES).tolist()
    fields = ["galaxy", "schema", "label_class", "expert", "note", "provenance", "created_at", "superseded_at"]

    def label_rows():
        for i in IMPORTED:
            yield (ids[i], schema.pk, classes[keys[labels[i]]], None, "", "imported from bench_labels.csv",
                   now - timedelta(days=30), None)
        for i in SUPERSEDED:
            yield (ids[i], schema.pk, classes[keys[(labels[i] + 1) % ten]], experts[0].pk, "", "web",
                   now - timedelta(days=20), now - timedelta(days=10, seconds=-i))
        for n, expert in enumerate(experts):
            for i in TWO_EXPERTS:
                # Most agree with the import; a third of the second expert's differ.
                key = labels[i] if n == 0 or i % 3 else (labels[i] + 2) % ten
                yield (ids[i], schema.pk, classes[keys[key]], expert.pk, "looked twice" if i % 50 == 0 else "",
                       "web", now - timedelta(days=10, seconds=-i - n), None)

    copy_rows(ExpertLabel, fields, label_rows())
    seconds["expert labels"] = time.perf_counter() - mark
    say(f"{len(IMPORTED) + 2 * len(TWO_EXPERTS) + len(SUPERSEDED):,} expert labels in {seconds['expert labels']:.1f} s")

    mark = time.perf_counter()
    copy_rows(ConsensusLabel, ["galaxy", "schema", "rule", "label_class", "agreement", "n_votes", "computed_at"],
              ((ids[galaxy], schema.pk, rule.pk, classes["uncertain" if uncertain[n] else keys[labels[galaxy]]],
                round(float(rng.random()), 4), int(rng.integers(5, 60)), now)
               for n, galaxy in enumerate(CONSENSUS)))
    resolved = rng.choice(np.array(TWO_EXPERTS), size=RESOLUTIONS, replace=False).tolist()
    LabelResolution.objects.bulk_create(
        [LabelResolution(galaxy_id=ids[i], schema=schema, label_class_id=classes[keys[labels[i]]], resolved_by=admin,
                         resolved_at=now, note="") for i in resolved], batch_size=1000)
    seconds["consensus and resolutions"] = time.perf_counter() - mark
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would soon do after a bulk load
    seconds["total"] = time.perf_counter() - started
    say(f"filled in {seconds['total']:.1f} s")
    return {"expected_rows": expected, "seconds": seconds}


def run_fill(env: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--fill"], env=env, stdout=subprocess.PIPE, text=True,
                          cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"fill failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_export(env: dict, fmt: str, out: Path, *, profile: Path | None) -> dict:
    """Wall time and peak RSS of one `manage.py export` child process."""
    command = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), "manage.py", "export",
               "--dataset", DATASET, "--what", "labels", "--format", fmt, "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    # os.wait4 gives this child's own resource use; RUSAGE_CHILDREN would be the largest of every child so far.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    message = child.stderr.read()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"export --format {fmt} failed (exit {child.returncode}):\n{message[-3000:]}")
    with open(out, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    rows = lines - 1 if fmt == "csv" else lines
    return {"format": fmt, "rows": rows, "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "file_mb": out.stat().st_size / 1e6, "message": message.strip()}


def print_profile(path: Path) -> None:
    import pstats

    pstats.Stats(str(path), stream=sys.stderr).sort_stats("tottime").print_stats(25)


def print_table(server: str, filled: dict, results: list[dict], load_before: float) -> None:
    seconds = filled["seconds"]
    fill = (f"filled in {seconds['total']:.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()
                                                             if k != "total") + ")") if seconds else "reused"
    print(f"export --what labels on PostgreSQL {server}: {GALAXIES:,} galaxies, "
          f"{len(IMPORTED) + 2 * len(TWO_EXPERTS):,} current expert labels; {fill}")
    header = (f"{'format':<6} | {'rows':>9} | {'seconds':>7} | {'rows/s':>8} | {'CPU s':>6} | {'peak RSS MB':>11} | "
              f"{'file MB':>7} | {'< 15 s':>6} | {'< 200 MB':>8}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['format']:<6} | {r['rows']:>9,} | {r['seconds']:>7.2f} | {r['rows'] / r['seconds']:>8,.0f} | "
              f"{r['cpu_s']:>6.2f} | {r['peak_rss_mb']:>11.0f} | {r['file_mb']:>7.1f} | "
              f"{'pass' if r['seconds'] < TARGET_S else 'FAIL':>6} | "
              f"{'pass' if r['peak_rss_mb'] < TARGET_MB else 'FAIL':>8}")
    print(f"rows expected from the fill: {filled['expected_rows']:,}. seconds: wall time of the child process, "
          f"Python start and Django setup included; CPU s: its own CPU time (PostgreSQL's is not in it).")
    print(f"load average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} (2 shared cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server to create the database on "
                                                                    "(default: %(default)s)")
    where.add_argument("--database", help="reuse this database (kept by an earlier --keep run)")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument("--profile", action="store_true", help="cProfile each export (stderr)")
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        print(json.dumps(fill()))
        return

    load_before = os.getloadavg()[0]
    url, drop = (args.database, None) if args.database else postgres_database(args.postgres, "bench_export")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
            env = django_env(url, folder)
            filled = run_fill(env)
            for fmt in ("csv", "jsonl"):
                profile = Path(folder) / f"{fmt}.prof" if args.profile else None
                say(f"exporting as {fmt}")
                result = measure_export(env, fmt, Path(folder) / f"labels.{fmt}", profile=profile)
                if result["rows"] != filled["expected_rows"]:
                    raise SystemExit(f"{fmt}: {result['rows']:,} rows, expected {filled['expected_rows']:,}")
                results.append(result)
                if profile:
                    print_profile(profile)
            import psycopg

            with psycopg.connect(url) as connection:
                server = connection.execute("SHOW server_version").fetchone()[0]
    finally:
        if drop is not None and not args.keep:
            drop()
        elif drop is not None:
            print(f"kept the database: --database {url}", file=sys.stderr)
    print_table(server, filled, results, load_before)


if __name__ == "__main__":
    main()
