"""Benchmark: database import cost per row through the product's importers, on PostgreSQL and SQLite side by side.

Two generated inputs, made once in a temporary folder and imported in ``--chunks`` files each (the later chunks
go into a dataset that already holds the earlier ones, so the table shows whether the cost per row grows):

- a galaxy catalogue in the ``folder`` layout of ``manage.py import_galaxies`` (``galaxies_import``): ``--galaxies``
  distinct JPEG files with a labels.csv of file, id, ra, dec and a redshift column. The files are the 193 bundled
  real galaxy JPEGs (labeling/demo_data, 256 x 256) cycled, each made distinct (the importer refuses the same bytes
  twice) by a JPEG comment segment carrying its number, which leaves the pixels alone. Each row costs what a real
  one does: the file is decoded and hashed while checking, then copied into MEDIA_ROOT, thumbnailed and inserted.
- a GZ2 vote table in the published layout (``manage.py import_votes --format gz2-table``, ``votes_import``):
  ``--votes`` rows drawn at random from the real GZ2 Stripe 82 table (labeling/demo_data/gz2_stripe82, 228 columns),
  each given a new unique objid. Every row creates a galaxy (no image) and its 11 vote summaries.

Each backend runs in its own child process on a fresh, migrated database (PostgreSQL: a throw-away
``bench_scale_<pid>`` on the server, dropped afterwards). Per chunk: wall seconds, rows/s, the split between the
checking pass and the writing pass, and the process's peak resident memory during that import; after each input,
how much the database grew (pg_database_size; the SQLite file) and the bytes written under MEDIA_ROOT, per row.
Writes ``bench/results/import_cost.json``.

    .venv/bin/python bench/import_cost.py [--galaxies 20000] [--votes 100000] [--chunks 2]
                                          [--postgres postgres://USER@HOST:PORT/DB] [--sqlite-only]

Defaults take about 5 minutes on 2 cores. The galaxy catalogue is smaller than the vote table because every row is
an image to decode twice, hash, copy and thumbnail (about 2.5 ms at 256 px), and its cost per row is flat (the two
chunks agree within 5%), so more rows measure the same rate for longer; pass --galaxies 100000 to see it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402

DEMO = REPO_ROOT / "labeling" / "demo_data"
JPEG_FOLDERS = ("galaxy10/images", "gz_examples_sloan/images")
GZ2_TABLE = DEMO / "gz2_stripe82" / "gz2_table5_stripe82_votes.csv.gz"
RESULTS = REPO_ROOT / "bench" / "results"
CATALOGUE, VOTES = "Bench catalogue", "Bench votes"


# Inputs (parent process) -------------------------------------------------------------------------------------------

def distinct_jpeg(data: bytes, number: int) -> bytes:
    """The same JPEG with a comment segment (FF FE) after the start-of-image marker: other bytes, same pixels."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no start-of-image marker)")
    payload = f"bench copy {number}".encode()
    return data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def make_catalogue(folder: Path, count: int, chunks: int, seed: int = 0) -> list[Path]:
    """``chunks`` folders of distinct JPEGs with a labels.csv each, ``count`` galaxies in all."""
    sources = sorted(p for name in JPEG_FOLDERS for p in (DEMO / name).iterdir() if p.suffix.lower() == ".jpg")
    if not sources:
        raise SystemExit(f"no bundled JPEGs under {DEMO}")
    blobs = [p.read_bytes() for p in sources]
    rng = np.random.default_rng(seed)
    bounds = np.linspace(0, count, chunks + 1).astype(int)
    folders = []
    for chunk, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        target = folder / f"chunk{chunk}"
        (target / "images").mkdir(parents=True)
        with open(target / "labels.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "id", "ra", "dec", "redshift"])
            for i in range(start, stop):
                name = f"images/BG{i:08d}.jpg"
                (target / name).write_bytes(distinct_jpeg(blobs[i % len(blobs)], i))
                writer.writerow([name, f"BG{i:08d}", f"{rng.uniform(0, 360):.6f}", f"{rng.uniform(-90, 90):.6f}",
                                 f"{rng.uniform(0.01, 0.3):.5f}"])
        folders.append(target)
    return folders


def make_vote_tables(folder: Path, count: int, chunks: int, seed: int = 0) -> list[Path]:
    """``chunks`` GZ2-table CSV files, ``count`` rows in all, each a random real Stripe 82 row with a new objid."""
    with gzip.open(GZ2_TABLE, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    id_column = header.index("objid")
    picks = np.random.default_rng(seed).integers(0, len(rows), size=count)
    bounds = np.linspace(0, count, chunks + 1).astype(int)
    paths = []
    for chunk, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        path = folder / f"gz2_votes_chunk{chunk}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i in range(start, stop):
                row = list(rows[picks[i]])
                row[id_column] = str(9_000_000_000_000_000_000 + i)
                writer.writerow(row)
        paths.append(path)
    return paths


# Measuring (child process, one per backend) ------------------------------------------------------------------------

def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current RSS


class PhaseClock:
    """A progress callback noting when each phase ("checking ...", "writing") was last reported."""

    def __init__(self):
        self.started = time.perf_counter()
        self.last: dict[str, float] = {}

    def __call__(self, done: int, total: int, phase: str = "") -> None:
        self.last[phase] = time.perf_counter() - self.started

    def check_seconds(self) -> float | None:
        """Seconds until the checking pass last reported: within one row of its end (the folder reader reports
        before each image, the vote reader every 500 rows and once more at the end)."""
        checking = [t for phase, t in self.last.items() if phase.startswith("checking")]
        return max(checking) if checking else None


def database_bytes() -> int:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])
    name = Path(connection.settings_dict["NAME"])
    return sum(p.stat().st_size for p in (name, Path(f"{name}-wal")) if p.exists())


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def measure(inputs: dict) -> dict:
    """Migrate, import every chunk of both inputs, and return the timings, memory and sizes."""
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from labeling.models import Galaxy, VoteSummary
    from labeling.services.imports.galaxies import galaxies_import
    from labeling.services.imports.votes import votes_import

    call_command("migrate", verbosity=0)
    result = {"baseline_rss_mb": peak_rss_mb(), "catalogue": [], "votes": []}
    size_before = database_bytes()
    for kind, paths in (("catalogue", inputs["catalogue"]), ("votes", inputs["votes"])):
        for path in map(Path, paths):
            clock = PhaseClock()
            reset_peak()
            started = time.perf_counter()
            if kind == "catalogue":
                report = galaxies_import(dataset_name=CATALOGUE, fmt="folder", path=path, progress=clock)
            else:
                report = votes_import(dataset_name=VOTES, fmt="gz2-table", path=path, progress=clock)
            seconds = time.perf_counter() - started
            if report.skipped or report.created == 0:
                raise RuntimeError(f"{path}: {report.summary()}")
            result[kind].append({"rows": report.created, "seconds": seconds, "check_seconds": clock.check_seconds(),
                                 "peak_rss_mb": peak_rss_mb()})
            print(f"  {kind} {path.name}: {report.created:,} rows in {seconds:.1f} s", file=sys.stderr, flush=True)
        size_after = database_bytes()
        result[f"{kind}_db_bytes"] = size_after - size_before
        size_before = size_after
    media = Path(settings.MEDIA_ROOT)
    result["image_files"], result["image_bytes"] = folder_bytes(media / "galaxies")
    result["thumbnail_files"], result["thumbnail_bytes"] = folder_bytes(media / "thumbnails")
    result["galaxies"] = Galaxy.objects.count()
    result["vote_summaries"] = VoteSummary.objects.count()
    result["thumbnail_size_px"] = settings.GALAXY_THUMBNAIL_SIZE
    return result


def run_child(backend: str, database_url: str, inputs: dict, folder: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SECRET_KEY": "benchmark-only",
           "DJANGO_SETTINGS_MODULE": "labeling.settings", "VAR_DIR": str(folder / f"var-{backend}"),
           "MEDIA_ROOT": str(folder / f"media-{backend}"), "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(inputs)], env=env, cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"import_cost on {backend} failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu})"


# Summary ------------------------------------------------------------------------------------------------------------

def summarise(backend: str, raw: dict) -> dict:
    """Rates and per-row sizes of one backend's run. The rate quoted is the last chunk's (it went into the fullest
    dataset, so it is the one to extrapolate from); every chunk stays listed."""
    def block(chunks: list[dict], db_bytes: int) -> dict:
        rows = sum(c["rows"] for c in chunks)
        last = chunks[-1]
        return {"rows": rows, "seconds": sum(c["seconds"] for c in chunks),
                "rows_per_s": last["rows"] / last["seconds"],
                "rows_per_s_first_chunk": chunks[0]["rows"] / chunks[0]["seconds"],
                "check_share": (last["check_seconds"] / last["seconds"]) if last["check_seconds"] else None,
                "peak_rss_mb": max(c["peak_rss_mb"] for c in chunks), "chunk_rows": last["rows"],
                "db_bytes_per_row": db_bytes / rows, "chunks": chunks}

    catalogue = block(raw["catalogue"], raw["catalogue_db_bytes"])
    catalogue["image_bytes_per_row"] = raw["image_bytes"] / max(1, raw["image_files"])
    catalogue["thumbnail_bytes_per_row"] = raw["thumbnail_bytes"] / max(1, raw["thumbnail_files"])
    catalogue["thumbnail_size_px"] = raw["thumbnail_size_px"]
    votes = block(raw["votes"], raw["votes_db_bytes"])
    votes["summaries_per_row"] = (raw["vote_summaries"]) / votes["rows"]
    return {"backend": backend, "baseline_rss_mb": raw["baseline_rss_mb"], "catalogue": catalogue, "votes": votes}


def print_table(results: list[dict], server: str | None) -> None:
    header = (f"{'backend':<11} {'input':<22} {'rows':>8} {'rows/s':>8} {'1st chunk':>9} {'checking':>8} "
              f"{'peak RSS':>9} {'DB bytes/row':>12} {'files/row':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        for kind, label in (("catalogue", "galaxies + images"), ("votes", "GZ2 vote table rows")):
            b = r[kind]
            files = (f"{(b['image_bytes_per_row'] + b['thumbnail_bytes_per_row']) / 1e3:>7.1f} kB"
                     if kind == "catalogue" else f"{'-':>10}")
            share = f"{b['check_share']:>7.0%}" if b["check_share"] is not None else f"{'-':>8}"
            print(f"{r['backend']:<11} {label:<22} {b['rows']:>8,} {b['rows_per_s']:>8,.0f} "
                  f"{b['rows_per_s_first_chunk']:>9,.0f} {share:>8} {b['peak_rss_mb']:>6.0f} MB "
                  f"{b['db_bytes_per_row']:>12,.0f} {files}")
    print(f"\nrows/s: the last chunk (into a dataset already holding the earlier ones); 1st chunk: into an empty one. "
          f"checking: share of the import spent in the\nchecking pass (decode + hash; the rest writes). peak RSS: "
          f"the child process during one import (Django and the app alone: "
          f"{results[0]['baseline_rss_mb']:.0f} MB). DB bytes/row: growth of the\ndatabase (tables and indexes) per "
          f"row; a vote row is 1 galaxy + {results[0]['votes']['summaries_per_row']:.0f} vote summaries. "
          f"files/row: image copy + {results[0]['catalogue']['thumbnail_size_px']} px thumbnail under MEDIA_ROOT."
          + (f"\nPostgreSQL {server}." if server else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=20_000, help="catalogue rows (images) in all")
    parser.add_argument("--votes", type=int, default=100_000, help="GZ2 vote table rows in all")
    parser.add_argument("--chunks", type=int, default=2, help="files each input is split into")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server for the throw-away database")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "import_cost.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    if args.galaxies < args.chunks or args.votes < args.chunks:
        parser.error("--galaxies and --votes need at least one row per chunk")

    results, server = [], None
    with tempfile.TemporaryDirectory(prefix="bench-import-cost-") as name:
        folder = Path(name)
        started = time.perf_counter()
        inputs = {"catalogue": [str(p) for p in make_catalogue(folder / "catalogue", args.galaxies, args.chunks)],
                  "votes": [str(p) for p in make_vote_tables(folder, args.votes, args.chunks)]}
        print(f"  inputs generated in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        backends = [("SQLite", f"sqlite:///{folder}/bench.sqlite3", None)]
        if not args.sqlite_only:
            url, drop = postgres_database(args.postgres, "bench_scale")
            backends.append(("PostgreSQL", url, drop))
        try:
            for backend, url, _ in backends:
                print(f"  {backend}", file=sys.stderr, flush=True)
                results.append(summarise(backend, run_child(backend, url, inputs, folder)))
            if not args.sqlite_only:
                import psycopg

                with psycopg.connect(backends[1][1]) as connection:
                    server = connection.execute("SHOW server_version").fetchone()[0]
        finally:
            for _, _, drop in backends:
                if drop is not None:
                    drop()

    print(f"import through the product's importers: {args.galaxies:,} catalogue galaxies and {args.votes:,} GZ2 "
          f"vote rows, each in {args.chunks} chunk(s)\n")
    print_table(results, server)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "bench/import_cost.py",
        "machine": machine(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "postgres_version": server, "galaxies": args.galaxies, "votes": args.votes, "chunks": args.chunks,
        "backends": results,
    }, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
