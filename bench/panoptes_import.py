"""Benchmark: import a Panoptes classification export of a million classifications (import_votes --format panoptes).

For each size, a GZ DECaLS (GZD-5) export is generated and streamed to a temporary file: random walks through the
gz_decals tree written as the export writes them (answer labels with their icons, metadata with a session, subject
data with !iauname; a tenth of the volunteers not logged in; 1% of the rows from another workflow version, which
are counted and left out). A fresh process on a fresh, migrated database creates one galaxy per 40 classifications,
imports the file with the shipped gz_decals mapping and prints what it took: the reading and writing of the rows,
the recount of the galaxies' vote summaries, and the process's peak resident memory, which stays flat from one
size to the next because the import holds one batch of rows at a time.

    .venv/bin/python bench/panoptes_import.py [--sizes 100000,1000000] [--postgres URL | --sqlite] [--again]

The PostgreSQL server defaults to the local one; a throw-away database `bench_panoptes_<pid>` is created on it and
dropped afterwards.
"""

import argparse
import csv
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402

TREE = json.loads((REPO_ROOT / "labeling" / "trees" / "gz_decals.json").read_text())
MAPPING = json.loads((REPO_ROOT / "labeling" / "trees" / "panoptes" / "gz_decals.json").read_text())
HEADER = ["classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name", "workflow_version",
          "created_at", "gold_standard", "expert", "metadata", "annotations", "subject_data", "subject_ids"]
PER_GALAXY = 40
ICON = "![icon.png](https://panoptes-uploads.zooniverse.org/production/project_attached_image/{}.png =60x) "
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.86"


def galaxy_name(index: int) -> str:
    return f"J{index // 1000:06d}.{index % 100:02d}+{index % 997:06d}.{index % 10}"


def write_export(path: Path, n: int, seed: int = 0) -> int:
    """Write ``n`` export rows to ``path``, one at a time; returns the file's size in bytes."""
    rng = random.Random(seed)
    questions = {q["key"]: q for q in TREE["questions"]}
    task_of = {entry["question"]: (task, [a["answer"] for a in entry["answers"]],
                                   [a["label"] for a in entry["answers"]])
               for task, entry in MAPPING["tasks"].items() if "question" in entry}
    galaxies = max(1, n // PER_GALAXY)
    compact = {"separators": (",", ":")}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(n):
            annotations, key = [], TREE["questions"][0]["key"]
            while key:
                task, answers, labels = task_of[key]
                pick = rng.randrange(len(answers))
                # An export writes each answer's label as the workflow has it, icon and all: a few strings, repeated.
                annotations.append({"task": task, "task_label": questions[key].get("text", key),
                                    "value": ICON.format(f"{pick:08x}-0000-0000-0000-{task[1:]:0>12}") + labels[pick]})
                key = next(a.get("next") for a in questions[key]["answers"] if a["key"] == answers[pick])
            annotations.append({"task": "T10", "task_label": "Do you see any of these rare features?", "value": []})
            galaxy, user = rng.randrange(galaxies), rng.randrange(max(1, n // 20))
            session = f"{rng.getrandbits(256):064x}"
            metadata = {"source": "api", "session": session, "viewport": {"width": 1366, "height": 657},
                        "started_at": "2019-03-29T18:37:41.463Z", "user_agent": AGENT, "utc_offset": "0",
                        "finished_at": "2019-03-29T18:37:51.987Z", "live_project": True, "user_language": "en",
                        "user_group_ids": [], "subject_dimensions": [{"clientWidth": 424, "clientHeight": 424}],
                        "workflow_version": "66.425"}
            subject = str(30_000_000 + galaxy)
            subject_data = {subject: {"retired": None, "!ra": galaxy * 0.01 % 360, "!dec": galaxy * 0.001 % 60,
                                      "!iauname": galaxy_name(galaxy), "!nsa_id": galaxy, "#upload_date": "2018-12-07"}}
            anonymous = user % 10 == 0
            version = "55.121" if i % 100 == 99 else "66.425"
            writer.writerow([200_000_000 + i, f"not-logged-in-{user:020x}" if anonymous else f"volunteer{user}",
                             "" if anonymous else user, f"{user:020x}", 6122, "DECaLS DR5", version,
                             f"2019-03-29 18:{i // 60 % 60:02d}:{i % 60:02d} UTC", "", "",
                             json.dumps(metadata, **compact), json.dumps(annotations, **compact),
                             json.dumps(subject_data, **compact), subject])
    return path.stat().st_size


def memory_mb(what: str = "VmHWM") -> float:
    """This process's own peak (VmHWM) or current (VmRSS) resident memory. (ru_maxrss would carry the parent's peak
    over through fork and exec, and cannot be reset.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{what}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {what} in /proc/self/status")


def reset_peak() -> None:
    """Start the peak over from the memory held now (Linux 4.0+: writing 5 to clear_refs resets VmHWM), so that
    the peak measured is the import's, not the galaxies' creation before it."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")


def measure(database_url: str, path: str, n: int, again: bool) -> dict:
    """Runs in the child process: migrate, create the galaxies, import (twice with ``again``)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labeling.settings")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from labeling.models import Galaxy, VolunteerClassification, VoteSummary
    from labeling.services.imports.datasets import dataset_get_or_create
    from labeling.services.imports.panoptes import panoptes_import

    call_command("migrate", verbosity=0)
    dataset = dataset_get_or_create(name="bench")
    Galaxy.objects.bulk_create([Galaxy(dataset=dataset, external_id=galaxy_name(g))
                                for g in range(max(1, n // PER_GALAXY))], batch_size=5000)
    reset_peak()
    before_mb = memory_mb("VmRSS")
    phases: dict[str, float] = {}
    last = [0.0]

    def progress(done, total, phase):
        # The time since the last call is the phase's, so that a phase reported once still gets its time.
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - last[0]
        last[0] = now

    runs = {}
    for run in ("first", "again") if again else ("first",):
        phases.clear()
        started = last[0] = time.perf_counter()
        report = panoptes_import(dataset_name="bench", path=Path(path), mapping="gz_decals", progress=progress)
        runs[run] = {"seconds": time.perf_counter() - started, "imported": report.created,
                     "duplicates": report.unchanged, "other": sum(report.other_workflows.values()),
                     "phases": dict(phases)}
    return {"rows": n, "runs": runs, "classifications": VolunteerClassification.objects.count(),
            "summaries": VoteSummary.objects.count(), "before_mb": before_mb, "peak_mb": memory_mb()}


def run_child(database_url: str, path: Path, n: int, again: bool) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", database_url, str(path), str(n)]
                          + (["--again"] if again else []), capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run of {n} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="export rows per run, comma-separated")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--again", action="store_true", help="also import each export a second time")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, path, n = args.child
        print(json.dumps(measure(url, path, int(n), args.again)))
        return

    # "before": the process's memory once migrated and its galaxies created; "peak RSS": its peak during the
    # import(s), from there.
    print(f"{'rows':>9} {'file':>8} {'import':>9} {'rows/s':>7} {'read+write':>10} {'recount':>8} "
          f"{'again':>8} {'before':>7} {'peak RSS':>9}   ({'SQLite' if args.sqlite else 'PostgreSQL'})")
    for n in (int(size) for size in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-panoptes-") as folder:
            path = Path(folder) / "export.csv"
            size = write_export(path, n)
            if args.sqlite:
                result = run_child(f"sqlite:///{folder}/bench.sqlite3", path, n, args.again)
            else:
                url, drop = postgres_database(args.postgres, "bench_panoptes")
                try:
                    result = run_child(url, path, n, args.again)
                finally:
                    drop()
        first = result["runs"]["first"]
        assert first["imported"] + first["other"] == n == result["classifications"] + first["other"], result
        again = result["runs"].get("again")
        again_text = f"{again['seconds']:>6.0f} s" if again else f"{'-':>8}"
        print(f"{n:>9,} {size / 1e6:>5.0f} MB {first['seconds']:>7.0f} s {n / first['seconds']:>7,.0f} "
              f"{first['phases'].get('importing', 0):>8.0f} s {first['phases'].get('recounting votes', 0):>6.0f} s "
              f"{again_text} {result['before_mb']:>4.0f} MB {result['peak_mb']:>6.0f} MB")


if __name__ == "__main__":
    main()
