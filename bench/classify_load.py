"""Load test: anonymous volunteers classifying at once over real HTTP, on PostgreSQL; checks that nothing is lost,
doubled or miscounted.

A throw-away database, `bench_classify_<pid>`, is created on the server (by default postgres@127.0.0.1:5432),
migrated and filled with one dataset of --galaxies galaxies, each with a small generated PNG, and a ClassifyPolicy
under the shipped GZ DECaLS tree (retire after --retire-after classifications, no early retirement,
useful_share 0.5); labeling.services.votes.classify.subjects_ensure makes the subjects. 5% of the subjects get a
usefulness (as a refit of the probability model would give them), so half the offers go to a few "useful"
galaxies: volunteers crowd on them, which is where locking and retirement are tested; the rest cover the
least-classified galaxies. The application runs in a subprocess on 127.0.0.1 and a free port, as
docker-compose.yml runs it: gunicorn with --workers and --threads (2 x 4), whose access log gives each request's
own time on the server beside the clients' time; --server runserver runs `manage.py runserver --noreload`
instead (threaded, a new PostgreSQL connection per request), for comparison.

--volunteers threads (default 20), each an anonymous visitor with its own urllib cookie jar, do what the classify
page does for --seconds (default 60; --quick: 10) or until --max-requests requests in all: GET the page (a session
and the csrftoken cookie; the tree comes from the page's JSON config), then loop: GET next/?exclude=<the galaxy
just sent>, POST submit/ a random valid walk of the tree with the X-CSRFToken header. 5% of the submissions are
doubled: half sent again once the first has been answered (a retry), half sent twice at the same moment from two
threads (a double click).

Checked afterwards in the database: no HTTP error; one VolunteerClassification per 201 (same id, volunteer and
answers; none lost, none extra) and none per (galaxy, tree, volunteer) twice; a retry is a 200 that stores nothing
and a double click one 201 and one 200; every aggregated VoteSummary equals a recount of the galaxy's stored walks
(mlcore.votes.tree.count_votes), so its root-question total equals its number of classifications; every
Subject.n_classifications equals its classification count and is retired exactly when it reaches retire_after; no
galaxy has more than retire_after + volunteers - 1 classifications (each other volunteer may hold the galaxy,
offered before it retired, and send it after: the submit stores a classification of a retired galaxy rather than
throw a volunteer's work away); no volunteer was offered a galaxy twice. Exit status 1 when a check fails.

    .venv/bin/python bench/classify_load.py [--seconds 60 | --quick] [--volunteers 20] [--galaxies 2000]
                                            [--retire-after 5] [--max-requests 200000] [--postgres URL]
                                            [--server gunicorn | runserver] [--workers 2] [--threads 4]
"""

import argparse
import html
import json
import os
import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import build_opener

# bench/ is on sys.path when run as a script.
from load_helpers import (
    HttpClient,
    Timings,
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

DATASET = "Classify load"
USEFUL_SUBJECTS = 0.05
USEFUL_SHARE = 0.5
DOUBLE_SUBMITS = 0.05
CONFIG_SCRIPT = re.compile(r'<script id="classify-config" type="application/json">(.*?)</script>', re.S)


def small_png(rng: random.Random) -> bytes:
    """A 32 x 32 grey PNG of a blurred blob somewhere near the centre: a stand-in galaxy, distinct per call."""
    import io

    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("L", (32, 32), rng.randrange(0, 20))
    x, y, r = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(3, 9)
    ImageDraw.Draw(image).ellipse((x - r, y - r * rng.uniform(0.4, 1), x + r, y + r), fill=rng.randrange(120, 255))
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(2)).save(buffer, format="PNG")
    return buffer.getvalue()


def fill(*, galaxies: int, retire_after: int, media: Path, seed: int, useful: float = USEFUL_SUBJECTS):
    """Migrate and fill the (configured, empty) database; returns the ClassifyPolicy."""
    from django.core.management import call_command

    from labeling.models import ClassifyPolicy, Galaxy, Subject
    from labeling.services.imports.datasets import dataset_get_or_create
    from labeling.services.votes.classify import subjects_ensure
    from labeling.services.votes.trees import tree_get_or_load_shipped

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    dataset = dataset_get_or_create(name=DATASET)
    folder = media / "galaxies" / dataset.slug
    folder.mkdir(parents=True)
    rows = []
    for number in range(galaxies):
        name = f"g{number:05d}.png"
        (folder / name).write_bytes(small_png(rng))
        rows.append(Galaxy(dataset=dataset, external_id=f"g{number:05d}", image=f"galaxies/{dataset.slug}/{name}",
                           width=32, height=32))
    Galaxy.objects.bulk_create(rows, batch_size=1000)
    policy = ClassifyPolicy.objects.create(dataset=dataset, tree=tree_get_or_load_shipped(name="gz_decals"),
                                           retire_after=retire_after, useful_share=USEFUL_SHARE)
    subjects_ensure(policy=policy)
    subjects = list(Subject.objects.filter(dataset=dataset).values_list("pk", flat=True))
    for pk in rng.sample(subjects, round(len(subjects) * useful)):
        Subject.objects.filter(pk=pk).update(usefulness=round(rng.uniform(0.2, 1.0), 3))
    say(f"{galaxies:,} galaxies with images, subjects and a policy in {time.perf_counter() - started:.1f} s")
    return policy


# --- the volunteers -------------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One submission as a volunteer sent it, and what the server answered."""

    volunteer: str
    galaxy: int
    answers: dict
    statuses: list[int]
    ids: list[int | None]
    stored: list[bool | None]
    kind: str  # "single", "retry" (sent again after the answer) or "double" (twice at once)


@dataclass
class Load(Timings):
    """What all the volunteers did, gathered under a lock."""

    max_requests: int = 200_000
    requests: int = 0
    sent: list[Sent] = field(default_factory=list)
    offers: dict = field(default_factory=lambda: defaultdict(list))  # volunteer -> galaxies offered
    ran_out: int = 0

    def take(self, n: int = 1) -> bool:
        """Count ``n`` more requests; False (counting none) when they would pass the cap."""
        with self.lock:
            if self.requests + n > self.max_requests:
                return False
            self.requests += n
            return True


def random_walk(tree: dict, rng: random.Random) -> dict:
    """A valid walk of the page's tree: an answer per question reached, ticked boxes for a multiple choice."""
    questions = {q["key"]: q for q in tree["questions"]}
    answers, key = {}, tree["questions"][0]["key"]
    while key is not None:
        question = questions[key]
        if question["kind"] == "multiple":
            answers[key] = [a["key"] for a in question["answers"] if rng.random() < 0.3]
            key = question.get("next")
        else:
            answer = rng.choice(question["answers"])
            answers[key] = answer["key"]
            key = answer.get("next")
    return answers


class Volunteer(HttpClient):
    """An anonymous visitor of /classify/<slug>/ with its own cookies (a session and the CSRF token)."""

    def __init__(self, base: str, slug: str, load: Load, rng: random.Random):
        super().__init__(base, load)
        self.slug, self.load, self.rng = slug, load, rng
        self.id = ""

    def run(self, deadline: float) -> None:
        if not self.load.take():
            return
        status, page = self.call("page", "GET", f"/classify/{self.slug}/")
        if status != 200:
            return
        tree = json.loads(html.unescape(CONFIG_SCRIPT.search(page).group(1)))["tree"]
        self.id = f"session:{self.cookie('sessionid')}"
        last = None
        while time.monotonic() < deadline and self.load.take():
            status, body = self.call("next", "GET", f"/classify/{self.slug}/next/?exclude={last or ''}")
            if status != 200:
                continue
            if body["galaxy"] is None:
                with self.load.lock:
                    self.load.ran_out += 1
                return
            galaxy = body["galaxy"]["id"]
            with self.load.lock:
                self.load.offers[self.id].append(galaxy)
            answers = random_walk(tree, self.rng)
            doubled = self.rng.random() < DOUBLE_SUBMITS
            kind = self.rng.choice(["retry", "double"]) if doubled else "single"
            if not self.load.take(1 if kind == "single" else 2):
                return
            if kind == "double":
                replies = self.twice_at_once("double", f"/classify/{self.slug}/submit/",
                                             {"galaxy": galaxy, "answers": answers})
            else:
                replies = [self.call("submit", "POST", f"/classify/{self.slug}/submit/",
                                     {"galaxy": galaxy, "answers": answers})]
                if kind == "retry":
                    replies.append(self.call("retry", "POST", f"/classify/{self.slug}/submit/",
                                             {"galaxy": galaxy, "answers": answers}))
            with self.load.lock:
                self.load.sent.append(Sent(
                    self.id, galaxy, answers, [s for s, _ in replies],
                    [b.get("id") if isinstance(b, dict) else None for _, b in replies],
                    [b.get("stored") if isinstance(b, dict) else None for _, b in replies], kind))
            last = galaxy


def run_load(base: str, slug: str, *, volunteers: int, seconds: float, max_requests: int, seed: int) -> tuple:
    load = Load(max_requests=max_requests)
    deadline = time.monotonic() + seconds
    crowd = [Volunteer(base, slug, load, random.Random(seed * 1000 + n)) for n in range(volunteers)]
    threads = [threading.Thread(target=v.run, args=(deadline,), daemon=True) for v in crowd]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return load, time.perf_counter() - started, [v.id for v in crowd]


# --- the checks -----------------------------------------------------------------------------------------------


def verify(policy, load: Load, volunteers: int) -> tuple[dict, list[tuple[str, bool, str]]]:
    """(numbers for the table, [(check, passed, detail)]) from the database after the run."""
    from django.db.models import Count

    from labeling.models import Subject, VolunteerClassification, VoteSummary
    from mlcore.votes.tree import count_votes, parse_tree

    tree = policy.tree
    rows = {row.pk: row for row in VolunteerClassification.objects.filter(tree=tree, galaxy__dataset=policy.dataset)}
    checks = []

    def check(name: str, passed: bool, detail: str = "") -> None:
        checks.append((name, bool(passed), detail))

    errors = load.errors()
    check("no HTTP errors", not errors, ", ".join(f"{k}: {n}" for k, n in errors.items()) or "none")

    created = {}  # id -> Sent
    for sent in load.sent:
        for status, pk in zip(sent.statuses, sent.ids, strict=True):
            if status == 201:
                created[pk] = sent
    n201 = sum(s.statuses.count(201) for s in load.sent)
    lost = [pk for pk in created if pk not in rows]
    extra = [pk for pk in rows if pk not in created]
    check("one stored row per 201", len(rows) == n201 == len(created) and not lost and not extra,
          f"{n201} answered 201, {len(rows)} rows, {len(lost)} lost, {len(extra)} not answered 201")
    wrong = [pk for pk, sent in created.items() if pk in rows and (
        rows[pk].answers != sent.answers or rows[pk].volunteer_id != sent.volunteer or rows[pk].galaxy_id != sent.galaxy
        or rows[pk].user_id is not None)]
    check("each row holds the volunteer, galaxy and answers sent", not wrong, f"{len(wrong)} differ")
    duplicates = (VolunteerClassification.objects.filter(tree=tree, galaxy__dataset=policy.dataset)
                  .values("galaxy", "volunteer_id").annotate(n=Count("pk")).filter(n__gt=1).count())
    check("no (galaxy, tree, volunteer) stored twice", duplicates == 0, f"{duplicates} pairs")

    retries = [s for s in load.sent if s.kind == "retry" and len(s.statuses) == 2]
    bad_retries = [s for s in retries if s.statuses != [201, 200] or s.stored != [True, False] or s.ids[0] != s.ids[1]]
    check("a retry is a 200 storing nothing", not bad_retries, f"{len(retries)} retries, {len(bad_retries)} not")
    doubles = [s for s in load.sent if s.kind == "double"]
    bad_doubles = [s for s in doubles if sorted(s.statuses) != [200, 201] or s.ids[0] != s.ids[1]]
    check("a double click is one 201 and one 200, same row", not bad_doubles,
          f"{len(doubles)} double clicks, {len(bad_doubles)} not")

    walks = defaultdict(list)
    for row in rows.values():
        walks[row.galaxy_id].append(row.answers)
    spec = parse_tree(tree.as_definition())
    root = spec.root
    summaries = defaultdict(dict)
    for galaxy_id, key, counts, total in VoteSummary.objects.filter(
            galaxy__dataset=policy.dataset, question__tree=tree, source=VoteSummary.Source.AGGREGATED).values_list(
            "galaxy_id", "question__key", "counts", "total"):
        summaries[galaxy_id][key] = (counts, total)
    root_wrong = [g for g in set(walks) | set(summaries)
                  if summaries.get(g, {}).get(root, (None, 0))[1] != len(walks.get(g, []))]
    check("root-question total = classifications, per galaxy", not root_wrong, f"{len(root_wrong)} galaxies differ")
    recount_wrong = []
    for galaxy_id, galaxy_walks in walks.items():
        expected = {key: (votes.counts, votes.total) for key, votes in count_votes(spec, galaxy_walks).items()}
        if summaries.get(galaxy_id) != expected:
            recount_wrong.append(galaxy_id)
    check("every vote summary = a recount of the stored walks", not recount_wrong,
          f"{len(walks)} galaxies, {len(recount_wrong)} differ")

    subjects = list(Subject.objects.filter(dataset=policy.dataset, tree=tree).values_list(
        "galaxy_id", "n_classifications", "retired_at", "retired_reason"))
    count_wrong = [g for g, n, _, _ in subjects if n != len(walks.get(g, []))]
    check("Subject.n_classifications = classifications", not count_wrong, f"{len(count_wrong)} subjects differ")
    retire_wrong = [g for g, n, at, reason in subjects
                    if (at is not None) != (n >= policy.retire_after) or (at is not None and reason != "count")]
    retired = sum(at is not None for _, _, at, _ in subjects)
    check("retired exactly when classified retire_after times", not retire_wrong,
          f"{retired} retired, {len(retire_wrong)} wrong")
    most = max((len(w) for w in walks.values()), default=0)
    limit = policy.retire_after + volunteers - 1
    late = sum(max(0, len(w) - policy.retire_after) for w in walks.values())
    check(f"no galaxy beyond retire_after + volunteers - 1 = {limit}", most <= limit,
          f"most {most}; {late} classifications past retire_after, sent for galaxies offered before they retired")

    offered_twice = sum(len(galaxies) - len(set(galaxies)) for galaxies in load.offers.values())
    check("no volunteer offered a galaxy twice", offered_twice == 0, f"{offered_twice} repeat offers")

    numbers = {"stored": len(rows), "duplicates": duplicates, "lost": len(lost), "retired": retired,
               "errors": sum(errors.values()), "n201": n201, "classified_galaxies": len(walks), "most": most,
               "late": late, "retries": len(retries), "doubles": len(doubles)}
    return numbers, checks


def server_description(args) -> str:
    if args.server == "gunicorn":
        return f"gunicorn ({args.workers} workers x {args.threads} threads)"
    return "manage.py runserver (threaded)"


def request_kind(method: str, path: str) -> str | None:
    """A request's kind in the timings, from the method and path of a line of the server's access log."""
    if method == "GET" and path.endswith("/next/"):
        return "next"
    if method == "POST" and path.endswith("/submit/"):
        return "submit"  # first sends, retries and double clicks alike: the server cannot tell them apart
    return None


def print_report(args, load: Load, elapsed: float, numbers: dict, checks: list, server: str, log_tail: str,
                 on_server: dict[str, list[float]]) -> None:
    times = load.times
    header = (f"{'volunteers':>10} | {'seconds':>7} | {'requests':>8} | {'req/s':>6} | {'next p50':>8} | "
              f"{'next p95':>8} | {'submit p50':>10} | {'submit p95':>10} | {'errors':>6} | {'stored':>6} | "
              f"{'duplicates':>10} | {'lost':>4} | {'retired':>7}")
    print(f"Classify load on PostgreSQL {server}: {args.galaxies:,} galaxies, retire after {args.retire_after}, "
          f"{server_description(args)} on loopback, urllib clients; times in ms, measured by the clients")
    print(header)
    print("-" * len(header))
    print(f"{args.volunteers:>10} | {elapsed:>7.1f} | {load.requests:>8,} | {load.requests / elapsed:>6.1f} | "
          f"{percentile(times['next'], 50):>8.1f} | {percentile(times['next'], 95):>8.1f} | "
          f"{percentile(times['submit'], 50):>10.1f} | {percentile(times['submit'], 95):>10.1f} | "
          f"{numbers['errors']:>6} | {numbers['stored']:>6,} | {numbers['duplicates']:>10} | {numbers['lost']:>4} | "
          f"{numbers['retired']:>7,}")
    others = ", ".join(f"{kind} {len(v):,} (p50 {percentile(v, 50):.0f}, p95 {percentile(v, 95):.0f})"
                       for kind, v in sorted(times.items()) if kind not in ("next", "submit"))
    print(f"other requests: {others}")
    if on_server:
        print("the server's own time (access log): " + ", ".join(
            f"{kind} p50 {percentile(v, 50):.1f} / p95 {percentile(v, 95):.1f}"
            for kind, v in sorted(on_server.items())))
    print(f"{numbers['classified_galaxies']:,} galaxies classified, at most {numbers['most']} times each; "
          f"{numbers['retries']} retries and {numbers['doubles']} double clicks; volunteers who ran out of galaxies: "
          f"{load.ran_out}; load average after: {os.getloadavg()[0]:.2f} (2 shared cores: server, PostgreSQL and "
          f"clients on the same machine)")
    for name, passed, detail in checks:
        print(f"  [{'ok' if passed else 'FAIL'}] {name}: {detail}")
    if log_tail:
        print(f"server log, tracebacks:\n{log_tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL (default: %(default)s)")
    parser.add_argument("--galaxies", type=int, default=2000)
    parser.add_argument("--volunteers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="10 seconds")
    parser.add_argument("--retire-after", type=int, default=5)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on requests in all")
    parser.add_argument("--useful", type=float, default=USEFUL_SUBJECTS,
                        help="share of the subjects given a usefulness, where half the offers go (default: 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", choices=("gunicorn", "runserver"), default="gunicorn",
                        help="gunicorn as deployed (default) or Django's development server")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default: 4)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 10.0

    gunicorn = args.server == "gunicorn"
    with django_on_throwaway_database(args.postgres, "bench_classify",
                                      connection_per_request=not gunicorn) as (folder, environment):
        policy = fill(galaxies=args.galaxies, retire_after=args.retire_after, media=folder / "media", seed=args.seed,
                      useful=args.useful)
        server = server_version()
        from django.db import connections

        connections.close_all()
        port, log, access = free_port(), folder / "server.log", folder / "access.log"
        slug = policy.dataset.slug
        command = gunicorn_command(port, workers=args.workers, threads=args.threads,
                                   access_log=access) if gunicorn else None
        process = start_server(environment, port, log, probe="/classify/", command=command)
        try:
            base = f"http://127.0.0.1:{port}"
            image = policy.dataset.galaxies.order_by("pk").first().image
            with build_opener().open(f"{base}{image.url}", timeout=10) as response:
                assert response.read() == Path(image.path).read_bytes(), "an image is not served as stored"
            say(f"server up on port {port}; {args.volunteers} volunteers for {args.seconds:.0f} s")
            load, elapsed, _ = run_load(base, slug, volunteers=args.volunteers, seconds=args.seconds,
                                        max_requests=args.max_requests, seed=args.seed)
        finally:
            stop_server(process)
        tail = tracebacks(log)
        on_server = server_times(access, request_kind) if gunicorn else {}
        numbers, checks = verify(policy, load, args.volunteers)
    print_report(args, load, elapsed, numbers, checks, server, tail, on_server)
    if not all(passed for _, passed, _ in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
