"""Load test: experts labelling at once over real HTTP on PostgreSQL, as the labelling page does; checks that every
label is stored exactly once.

A throw-away database, `bench_labelling_load_<pid>`, is created on the server (by default postgres@127.0.0.1:5432),
migrated and filled by bench/labelling_fill.py with --galaxies galaxies (image paths only: the endpoints build URLs
and read no file), a gz_decals vote summary and a prediction for each, the shipped galaxy10 schema and a dataset
QueuePolicy whose refit_every no label reaches (so no POST starts a refit, and no worker is needed; the report
counts any that started). Then --experts users of the group "experts" each get a pending queue of --queue galaxies
drawn from the galaxies nobody labelled yet, ranked by a score shared by all plus each expert's own noise, as queues
built from one model would be: every galaxy is in several queues, and experts meet on the same galaxies at about
the same time. The application runs as docker-compose.yml runs it, gunicorn with --workers and --threads (2 x 4), a
persistent PostgreSQL connection per thread, on 127.0.0.1 and a free port.

--experts threads, each an expert with its own cookie jar, sign in through /login/ (the session and the csrftoken
cookie; the page's JSON config gives the dataset, schema and classes), wait for each other, then do what
static/js/label.js does for --seconds (60) or --max-requests requests each: GET /api/queue/next/ for the entries it
wants (2 at first, 1 after each label, excluding the entries held and the one just sent), POST /api/labels/
{galaxy, schema, label_class, note, queue_entry} with the X-CSRFToken header, and now and then: POST
/api/queue/<entry>/skip/ (2%); send the same label again, as the outbox does after an answer that never arrived (3%);
send the same label from two tabs at the same moment (2%); change its mind, the same galaxy with another class (4%);
press u after the next galaxy is shown, POST /api/labels/undo/, and label the galaxy given back with another class
(4%). Every request has a timeout (--timeout).

Checked afterwards: no answer outside 2xx, no timeout, no failed connection; the ExpertLabel rows of the experts
against a replay of what they were answered (bench/labelling_load_checks.py): none lost, none twice, the label in
force the last class sent, the superseded ones the changes; queue entries closed as labelled or skipped; the
policy's label counter grew by one per label POST; no entry offered twice; every expert labelled. Exit status 1
when a check fails. Writes bench/results/labelling_load.json (--out).

Times are the clients' (urllib, from sending the request to the end of the answer) beside gunicorn's own time per
request, read from its access log. The clients are threads of one process: their CPU time during the run is
reported, and at 20 experts it was about 4% of one core, so the GIL does not stretch the times; what does is the
wait for one of the server's worker x thread slots, and the 2 cores that server, PostgreSQL and clients share.

    .venv/bin/python bench/labelling_load.py [--seconds 60] [--experts 20] [--max-requests 2000] [--galaxies 4000]
                                             [--queue 600] [--workers 2] [--threads 4] [--postgres URL] [--out F]
"""

import argparse
import datetime
import json
import math
import os
import random
import re
import threading
import time
from pathlib import Path

# bench/ is on sys.path when run as a script.
from import_cost import machine
from labelling_load_checks import database_checks
from labelling_load_experts import PASSWORD, SCHEMA, Expert, Run
from load_helpers import (
    django_on_throwaway_database,
    free_port,
    gunicorn_command,
    percentile,
    say,
    server_times,
    server_version,
    start_server,
    stop_server,
    tracebacks,
)
from pgdb import DEFAULT_POSTGRES

RESULTS = Path(__file__).resolve().parent / "results" / "labelling_load.json"
ENDPOINTS = {"next": "GET /api/queue/next/", "label": "POST /api/labels/", "undo": "POST /api/labels/undo/",
             "skip": "POST /api/queue/<id>/skip/"}


def add_experts(filled, *, experts: int, queue: int, seed: int) -> list[str]:
    """``experts`` users of the experts group, each with ``queue`` pending entries among the unlabelled galaxies."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from labeling.models import Classifier, ExpertLabel, Galaxy, QueueEntry

    rng = random.Random(seed)
    names = [f"expert-{n:02d}" for n in range(1, experts + 1)]
    password = make_password(PASSWORD)  # hashed once: the production hasher takes a good part of a second
    users = User.objects.bulk_create([User(username=name, password=password) for name in names])
    Group.objects.get(name="experts").user_set.add(*users)
    labelled = ExpertLabel.objects.filter(galaxy__dataset=filled.dataset).values("galaxy_id")
    pool = list(Galaxy.objects.filter(dataset=filled.dataset).exclude(pk__in=labelled).values_list("pk", flat=True))
    if queue > len(pool):
        raise SystemExit(f"--queue {queue} is more than the {len(pool)} unlabelled galaxies; give more --galaxies")
    shared = {galaxy: rng.random() for galaxy in pool}
    classifier = Classifier.objects.get(feature_set=filled.feature_set, schema=filled.schema)
    entries = []
    for user in users:
        scored = sorted(((shared[g] + 0.5 * rng.random(), g) for g in rng.sample(pool, queue)), reverse=True)
        entries += [QueueEntry(expert=user, dataset=filled.dataset, schema=filled.schema, galaxy_id=g, rank=rank,
                               strategy="combined", requested_strategy="combined", score=round(score, 4),
                               model_version=filled.feature_set.model_version, classifier=classifier)
                    for rank, (score, g) in enumerate(scored, start=1)]
    QueueEntry.objects.bulk_create(entries, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"{experts} experts with {queue} queued galaxies each, among {len(pool):,} unlabelled galaxies")
    return names


def endpoint_of(method: str, path: str) -> str | None:
    """The kind a request of gunicorn's access log is timed under by the clients."""
    if path.startswith(("/login/", "/label/")):
        return "sign in"
    if re.fullmatch(r"/api/queue/\d+/skip/", path):
        return "skip"
    return {("GET", "/api/queue/next/"): "next", ("POST", "/api/labels/"): "label",
            ("POST", "/api/labels/undo/"): "undo"}.get((method, path))


def run_load(base: str, names: list[str], page: str, args) -> tuple[Run, float]:
    """Every expert signs in, then all label together; returns the run and its timed seconds."""
    run = Run(len(names), args.seconds)
    experts = [Expert(base, name, page, run, rng=random.Random(args.seed * 1000 + n), max_requests=args.max_requests,
                      timeout=args.timeout) for n, name in enumerate(names)]
    threads = [threading.Thread(target=expert.main, daemon=True) for expert in experts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300 + args.seconds + 2 * args.timeout)
    if any(thread.is_alive() for thread in threads):
        raise SystemExit("an expert's thread did not end: a request hung past its timeout")
    if not run.started:
        raise SystemExit("the experts never started together (see the tracebacks above)")
    run.cpu_s = time.process_time() - run.cpu_started
    return run, time.perf_counter() - run.started


def ms(value: float) -> float | None:
    """Rounded for the JSON file; None where there was no request (JSON has no NaN)."""
    return None if math.isnan(value) else round(value, 1)


def summary(args, run: Run, elapsed: float, numbers: dict, checks: list, server: dict, context: dict) -> dict:
    """What the table shows and bench/results/labelling_load.json keeps."""
    endpoints = {}
    for kind in [*ENDPOINTS, "sign in"]:
        times = run.timings.times.get(kind, [])
        errors = sum(n for (k, status), n in run.timings.statuses.items() if k == kind and not 200 <= status < 300)
        endpoints[kind] = {"requests": len(times), "errors": errors,
                           **{f"p{q}_ms": ms(percentile(times, q)) for q in (50, 95, 99)},
                           "max_ms": ms(max(times, default=math.nan)),
                           "server_p50_ms": ms(percentile(server.get(kind, []), 50)),
                           "server_p95_ms": ms(percentile(server.get(kind, []), 95))}
    return {
        "bench": "bench/labelling_load.py", "machine": machine(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **context,
        "experts": args.experts, "seconds": args.seconds, "max_requests_per_expert": args.max_requests,
        "galaxies": args.galaxies, "queue_per_expert": args.queue,
        "server": f"gunicorn --workers {args.workers} --threads {args.threads}",
        "server_threads": args.workers * args.threads, "elapsed_s": round(elapsed, 2), "requests": run.requests,
        "throughput_rps": round(run.requests / elapsed, 1), "clients_cpu_s": round(run.cpu_s, 1),
        "ran_out": run.ran_out, "endpoints": endpoints, "labels": numbers,
        "checks": [{"check": name, "passed": passed, "detail": detail} for name, passed, detail in checks],
        "passed": all(passed for _, passed, _ in checks),
    }


def print_report(result: dict, log_tail: str) -> None:
    print(f"Labelling load on PostgreSQL {result['postgres_version']}: {result['experts']} experts for "
          f"{result['elapsed_s']:.1f} s, {result['server']} on loopback, urllib clients in threads; times in ms, "
          f"measured by the clients (server: gunicorn's own time per request)")
    header = (f"{'endpoint':<28} | {'requests':>8} | {'errors':>6} | {'p50':>6} | {'p95':>6} | {'p99':>6} | "
              f"{'max':>6} | {'server p50':>10} | {'server p95':>10}")
    print(header)
    print("-" * len(header))
    for kind, e in result["endpoints"].items():
        title = ENDPOINTS.get(kind, "sign in (before the clock)")
        p50, p95, p99, top, s50, s95 = (f"{'-' if e[k] is None else round(e[k], 1)}" for k in (
            "p50_ms", "p95_ms", "p99_ms", "max_ms", "server_p50_ms", "server_p95_ms"))
        print(f"{title:<28} | {e['requests']:>8,} | {e['errors']:>6} | {p50:>6} | {p95:>6} | {p99:>6} | {top:>6} | "
              f"{s50:>10} | {s95:>10}")
    n = result["labels"]
    print(f"throughput: {result['requests']:,} requests in {result['elapsed_s']:.1f} s = "
          f"{result['throughput_rps']:.1f} req/s; labels sent (2xx) {n['sent']:,}, stored {n['stored']:,} in force "
          f"+ {n['history']:,} history rows, duplicates {n['duplicates']}, lost {n['lost']}")
    print(f"requests by kind: {n['kinds']}; {n['shared_galaxies']:,} galaxies labelled by several experts (at most "
          f"{n['most_experts_per_galaxy']}); experts who ran out of queue: {len(result['ran_out'])}; load average "
          f"before {result['load_before']:.2f}, after {result['load_after']:.2f} (2 shared cores: server, "
          f"PostgreSQL and clients on one machine)")
    print(f"the clients' own CPU: {result['clients_cpu_s']:.1f} s in {result['elapsed_s']:.1f} s "
          f"({result['clients_cpu_s'] / result['elapsed_s']:.0%} of one core, the most their GIL allows is 100%); "
          f"a client's time less the server's is the wait for one of the server's {result['server_threads']} "
          f"request threads, the loopback and the clients themselves")
    for check in result["checks"]:
        print(f"  [{'ok' if check['passed'] else 'FAIL'}] {check['check']}: {check['detail']}")
    if log_tail:
        print(f"server log, tracebacks:\n{log_tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL (default: %(default)s)")
    parser.add_argument("--experts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=2000, help="cap on each expert's requests")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take")
    parser.add_argument("--galaxies", type=int, default=4000)
    parser.add_argument("--queue", type=int, default=600, help="pending entries per expert")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with django_on_throwaway_database(args.postgres, "bench_labelling_load",
                                      connection_per_request=False) as (folder, environment):
        from django.core.management import call_command
        from django.db import connections
        from labelling_fill import fill

        from labeling.models import QueuePolicy

        call_command("migrate", verbosity=0)
        filled = fill(args.galaxies, seed=args.seed)
        names = add_experts(filled, experts=args.experts, queue=args.queue, seed=args.seed)
        counter_before = QueuePolicy.objects.get(dataset=filled.dataset).labels_since_refit
        context = {"postgres_version": server_version(), "load_before": load_before}
        connections.close_all()
        port, log, access = free_port(), folder / "server.log", folder / "access.log"
        page = f"/label/{filled.dataset.slug}/{SCHEMA}/"
        process = start_server(environment, port, log, probe="/login/", command=gunicorn_command(
            port, workers=args.workers, threads=args.threads, access_log=access))
        try:
            say(f"gunicorn up on port {port}; {args.experts} experts sign in, then label for {args.seconds:.0f} s")
            run, elapsed = run_load(f"http://127.0.0.1:{port}", names, page, args)
        finally:
            stop_server(process)
        context["load_after"] = os.getloadavg()[0]
        errors = run.timings.errors()
        if run.not_signed_in:
            errors["sign in: no labelling page after it"] = len(run.not_signed_in)
        numbers, checks = database_checks(sent=run.sent, offered=run.offered, errors=errors,
                                          experts=names, dataset=filled.dataset, schema=filled.schema,
                                          counter_before=counter_before)
        result = summary(args, run, elapsed, numbers, checks, server_times(access, endpoint_of), context)
        tail = tracebacks(log)
    print_report(result, tail)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    if not result["passed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
