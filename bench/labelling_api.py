"""Benchmark: the labelling page's two hot endpoints on PostgreSQL with 300,000 galaxies; target p95 < 50 ms.

- GET /api/queue/next/?dataset=&schema=&count=1&exclude=<the 2 entries the page holds>: after each label the page
  asks for one more entry; count=2 is the page's first load.
- POST /api/labels/ {"galaxy", "schema", "label_class", "queue_entry"} as JSON: each labels the head of the queue.

Requests go through django.test.Client in-process: the real URL conf, middleware (sessions, CSRF, auth) and DRF
views, signed in with force_login; Client(enforce_csrf_checks=False) skips only the CSRF token check. No network
server, so the times leave out HTTP parsing and the WSGI server, and include everything from the middleware down
to PostgreSQL over TCP.

The database is a fresh throw-away one, `bench_labelling_<pid>`, created on the server (by default the local one,
postgres@127.0.0.1:5432) and dropped afterwards; the measurement runs in a child process on it, migrated. It holds
(bench/labelling_fill.py) one dataset of N galaxies (image paths only: the endpoints build URLs, they read no file),
the shipped galaxy10 schema, one gz_decals vote summary per galaxy, 100,000 imported expert labels, 3,000 labels
the bench expert gave today, a probability model with a prediction for every galaxy, and a queue of 5,000 pending
entries for the expert, and the succeeded fit job that made the model. The dataset's QueuePolicy has refit_every =
1,000,000,000, so no POST starts a refit (the output says how many did); each POST still counts itself towards it.
The tables are ANALYZEd after the fill, as autovacuum would soon do.

Each endpoint is measured twice: without neighbours (the feature set has no index), then with them: a real
feature store of N x 512 float16 clustered vectors and its index built by
labeling.services.learning.neighbours.index_build (HNSW above 10,000 vectors), so each entry shows its 8 nearest
galaxies. 10 warm-up rounds (label, next, first load) come first; queries per request are counted on one round before
the timed ones and one after. The index build is the slow part of a 300k run (HNSW, about 2 minutes on a quiet machine,
6 with the 2 cores shared); it is the one the application builds: mlcore.neighbours.index offers no IVF, and its other
kind, exact, would time a brute-force scan of every vector per neighbour query, which the application never makes at
this size.

    .venv/bin/python bench/labelling_api.py [--galaxies 300000] [--requests 300] [--postgres URL]
                                            [--explain] [--profile]

--explain prints every query of one request of each endpoint, and EXPLAIN ANALYZE of its three slowest SELECTs
(to stderr).
"""

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402  (bench/ is on sys.path when run as a script)

WARM_UP = 10
TARGET_MS = 50.0
ENDPOINTS = {"label": "POST /api/labels/", "next": "GET next count=1 exclude=2", "first": "GET next count=2"}


def peak_rss_mb() -> float:
    """This process's peak resident memory since start or the last reset_peak()."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start the peak over (Linux >= 4.0), so each phase reports its own; ignored where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Round:
    """One round of the labelling page: label the entry in front, ask for one more, and a first load."""

    def __init__(self, client, filled, *, neighbours: bool):
        from django.urls import reverse

        self.client, self.filled, self.neighbours = client, filled, neighbours
        self.next_url, self.labels_url = reverse("api-queue-next"), reverse("api-labels")
        self.query = {"dataset": filled.dataset.pk, "schema": filled.schema.name}
        self.held = []
        self.number = 0

    def _timed(self, method: str, url: str, data, expected: int, **extra):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = getattr(self.client, method)(url, data, **extra)
        wall, cpu = (time.perf_counter() - started) * 1e3, (time.process_time() - started_cpu) * 1e3
        if response.status_code != expected:
            raise SystemExit(f"{method.upper()} {url} {data}: {response.status_code} {response.content[:2000]!r}")
        return response.json(), wall, cpu

    def _entries(self, body: dict, count: int) -> list[dict]:
        entries = body["entries"]
        assert len(entries) == count, body
        for entry in entries:
            assert entry["prediction"] is not None and entry["votes"], entry
            assert len(entry["neighbours"]) == (8 if self.neighbours else 0), entry["neighbours"]
        return entries

    def first_load(self) -> tuple[float, float]:
        body, wall, cpu = self._timed("get", self.next_url, {**self.query, "count": 2}, 200)
        self.held = self._entries(body, 2)
        return wall, cpu

    def play(self) -> dict[str, tuple[float, float]]:
        """(wall ms, CPU ms) of each endpoint in this round."""
        if not self.held:
            self.first_load()
        head, other = self.held
        times = {}
        body, *times["label"] = self._timed(
            "post", self.labels_url, {"galaxy": head["galaxy"]["id"], "schema": self.filled.schema.name,
                                      "label_class": str(self.number % 10), "queue_entry": head["id"]},
            201, content_type="application/json")
        assert body["galaxy"] == head["galaxy"]["id"], body
        body, *times["next"] = self._timed("get", self.next_url, {**self.query, "count": 1,
                                                                  "exclude": f"{head['id']},{other['id']}"}, 200)
        (new,) = self._entries(body, 1)
        assert new["id"] not in (head["id"], other["id"]), new
        times["first"] = self.first_load()  # what a reload of the page would get now: the same two
        assert [entry["id"] for entry in self.held] == [other["id"], new["id"]], (self.held, other, new)
        self.number += 1
        return times

    def counted(self, explain: bool) -> dict[str, int]:
        """Queries each endpoint makes in one (untimed) round; with ``explain``, its slowest ones explained."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        counts = {}
        original = self._timed

        def timed(method, url, data, expected, **extra):
            with CaptureQueriesContext(connection) as captured:
                result = original(method, url, data, expected, **extra)
            name = "label" if method == "post" else ("next" if data.get("count") == 1 else "first")
            counts[name] = len(captured.captured_queries)
            if explain:
                _explain(ENDPOINTS[name], captured.captured_queries)
            return result

        self._timed = timed
        try:
            self.play()
        finally:
            self._timed = original
        return counts


def _explain(title: str, queries: list[dict]) -> None:
    from django.db import connection

    print(f"\n== {title}: {len(queries)} queries", file=sys.stderr)
    for query in queries:
        print(f"{float(query['time']) * 1e3:6.1f} ms  {query['sql'][:160]}", file=sys.stderr)
    selects = [query for query in queries if query["sql"].lstrip().upper().startswith("SELECT")]
    for query in sorted(selects, key=lambda q: -float(q["time"]))[:3]:
        print(f"-- {float(query['time']) * 1e3:.1f} ms: {query['sql']}", file=sys.stderr)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            print("\n".join(f"   {row[0]}" for row in cursor.fetchall()), file=sys.stderr)


def run_variant(client, filled, *, requests: int, neighbours: bool, explain: bool, profile: bool = False) -> dict:
    play = Round(client, filled, neighbours=neighbours)
    started = time.perf_counter()
    play.first_load()  # with neighbours: the request that loads the index file
    first_request_s = time.perf_counter() - started
    for _ in range(WARM_UP - 1):
        play.play()
    queries_before = play.counted(explain=False)
    times = {name: [] for name in ENDPOINTS}
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    for _ in range(requests):
        for name, pair in play.play().items():
            times[name].append(pair)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    queries_after = play.counted(explain=explain)
    result = {"first_request_s": first_request_s, "peak_rss_mb": peak_rss_mb()}
    for name, pairs in times.items():
        wall, cpu = np.array(pairs).T
        result[name] = {"n": len(wall), "p50": float(np.percentile(wall, 50)), "p95": float(np.percentile(wall, 95)),
                        "max": float(wall.max()), "cpu_p95": float(np.percentile(cpu, 95)),
                        "queries": (queries_before[name], queries_after[name])}
    return result


def measure(config: dict) -> dict:
    """Runs in the child process: migrate, fill, measure both variants; returns what the table shows."""
    folder = Path(config["folder"])
    os.environ.update(DATABASE_URL=config["database_url"], DJANGO_SECRET_KEY="benchmark-only",
                      DJANGO_SETTINGS_MODULE="labeling.settings", DJANGO_ALLOWED_HOSTS="testserver",
                      VAR_DIR=str(folder / "var"), MEDIA_ROOT=str(folder / "media"),
                      GALAXY_FEATURES_ROOT=str(folder / "features"), LOG_LEVEL="WARNING",
                      # django.test.Client speaks plain HTTP: the production HTTPS redirect would answer 301.
                      DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0", DJANGO_STATIC_MANIFEST="0")
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from labelling_fill import REFIT_EVERY, fill, write_store_and_index

    from labeling.models import Job

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    reset_peak()
    filled = fill(config["galaxies"])
    fill_peak = peak_rss_mb()
    client = Client(enforce_csrf_checks=False)
    client.force_login(filled.expert)

    print("  measuring without neighbours", file=sys.stderr, flush=True)
    reset_peak()
    without = run_variant(client, filled, requests=config["requests"], neighbours=False, explain=config["explain"],
                          profile=config.get("profile", False))
    reset_peak()
    index = write_store_and_index(filled.feature_set)
    index["peak_rss_mb"] = peak_rss_mb()
    print("  measuring with neighbours", file=sys.stderr, flush=True)
    reset_peak()
    with_neighbours = run_variant(client, filled, requests=config["requests"], neighbours=True,
                                  explain=config["explain"], profile=config.get("profile", False))
    refits = Job.objects.filter(kind=Job.Kind.FIT_CLASSIFIER).count() - 1  # less the fill's own
    return {"server": server, "counts": filled.counts, "fill_s": filled.seconds, "fill_peak_rss_mb": fill_peak,
            "index": index, "variants": {"none": without, "8 per entry": with_neighbours}, "refits": refits,
            "refit_every": REFIT_EVERY}


def run_child(config: dict) -> dict:
    # stderr is left to the terminal: the child's progress shows while it runs.
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], stdout=subprocess.PIPE,
                          text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(r: dict, load_before: float) -> None:
    c, s, index = r["counts"], r["fill_s"], r["index"]
    print(f"Labelling API on PostgreSQL {r['server']}, in-process django.test.Client (real URL conf, middleware, "
          f"session auth)")
    print(f"fill: {c['galaxies']:,} galaxies, {c['vote summaries']:,} vote summaries, {c['imported labels']:,} "
          f"imported + {c['labels today']:,} of today's expert labels, {c['predictions']:,} predictions, "
          f"{c['queued']:,} queued entries: {s['total']:.1f} s, peak RSS {r['fill_peak_rss_mb']:.0f} MB")
    print("      " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in s.items() if name != "total"))
    print(f"neighbours: feature store {index['store_s']:.1f} s, {index['index_kind']} index of "
          f"{index['index_count']:,} vectors built in {index['index_s']:.1f} s, recall@20 {index['index_recall']:.3f}, "
          f"peak RSS {index['peak_rss_mb']:.0f} MB")
    header = (f"{'endpoint':<27} | {'neighbours':<11} | {'requests':>8} | {'p50 ms':>6} | {'p95 ms':>6} | "
              f"{'max ms':>6} | {'CPU p95':>7} | {'queries':>7} | {'p95 < 50':>8} | {'peak RSS':>8}")
    print(header)
    print("-" * len(header))
    for variant, v in r["variants"].items():
        for name, title in ENDPOINTS.items():
            e = v[name]
            queries = f"{e['queries'][0]}/{e['queries'][1]}"
            print(f"{title:<27} | {variant:<11} | {e['n']:>8} | {e['p50']:>6.1f} | {e['p95']:>6.1f} | "
                  f"{e['max']:>6.1f} | {e['cpu_p95']:>7.1f} | {queries:>7} | "
                  f"{'yes' if e['p95'] < TARGET_MS else 'NO':>8} | {v['peak_rss_mb']:>5.0f} MB")
    print("queries: per request, in a round before the timed ones / after them. CPU p95: this process's CPU time "
          "per request (PostgreSQL's is not in it).")
    with_index = r["variants"]["8 per entry"]
    print(f"first request with neighbours (loads the index file): {with_index['first_request_s'] * 1e3:.0f} ms, "
          f"not in the table")
    print(f"refits started by the POSTs: {r['refits']} (QueuePolicy.refit_every = {r['refit_every']:,}; each POST "
          f"still counts itself towards the next refit)")
    print(f"load average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} (2 shared cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL (default: %(default)s)")
    parser.add_argument("--galaxies", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint and variant")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest queries (stderr)")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed requests (stderr; slows them)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return

    load_before = os.getloadavg()[0]
    url, drop = postgres_database(args.postgres, "bench_labelling")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-labelling-") as folder:
            result = run_child({"database_url": url, "folder": folder, "galaxies": args.galaxies,
                                "requests": args.requests, "explain": args.explain,
                                "profile": args.profile})
    finally:
        drop()
    print_table(result, load_before)


if __name__ == "__main__":
    main()
