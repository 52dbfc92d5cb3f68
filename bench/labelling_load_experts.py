"""The experts of bench/labelling_load.py: HTTP clients that sign in and drive the labelling API as
static/js/label.js does (see that bench's docstring for what they do, and how often)."""

import html
import json
import re
import threading
import time
from urllib.parse import urlencode

from labelling_load_checks import Sent
from load_helpers import HttpClient, Timings

PASSWORD = "a long bench password 7"
SCHEMA = "galaxy10"
PREFETCH = 1  # entries label.js holds beyond the one shown
CHANCES = {"skip": 0.02, "retry": 0.03, "double": 0.02, "change": 0.04, "undo": 0.04}
CONFIG_SCRIPT = re.compile(r'<script id="label-config" type="application/json">(.*?)</script>', re.S)


class Run:
    """What every expert did: request times and statuses, the label requests, the entries offered."""

    def __init__(self, experts: int, seconds: float):
        self.timings, self.seconds = Timings(), seconds
        self.sent: list[Sent] = []
        self.offered: dict[str, list[int]] = {}
        self.ran_out: list[str] = []
        self.not_signed_in: list[str] = []
        self.requests = 0
        self.started = self.deadline = self.cpu_started = self.cpu_s = 0.0
        self.gate = threading.Barrier(experts, action=self.start)

    def start(self) -> None:
        self.started, self.deadline = time.perf_counter(), time.monotonic() + self.seconds
        self.cpu_started = time.process_time()  # the clients' CPU (all threads): what the GIL serialises


class Done(Exception):
    """The expert's time or request cap is reached."""


class Expert(HttpClient):
    """One expert at the labelling page, as static/js/label.js drives it."""

    def __init__(self, base: str, name: str, page: str, run: Run, *, rng, max_requests: int, timeout: float):
        super().__init__(base, run.timings, timeout)
        self.name, self.page, self.run, self.rng, self.max_requests = name, page, run, rng, max_requests
        self.requests, self.sent, self.offered = 0, [], []
        self.current, self.upcoming, self.done, self.undone = None, [], set(), {}
        self.ran_out = False

    def take(self, n: int) -> None:
        """Count ``n`` more requests; Done when time is up or they would pass the cap."""
        if time.monotonic() >= self.run.deadline or self.requests + n > self.max_requests:
            raise Done
        self.requests += n

    def request(self, kind: str, method: str, path: str, body: dict | None = None):
        self.take(1)
        return self.call(kind, method, path, body)

    def sign_in(self) -> bool:
        self.call("sign in", "GET", "/login/")
        form = urlencode({"username": self.name, "password": PASSWORD, "next": self.page,
                          "csrfmiddlewaretoken": self.cookie("csrftoken")}).encode()
        status, page = self.call("sign in", "POST", "/login/", form=form)
        found = CONFIG_SCRIPT.search(page) if status == 200 and isinstance(page, str) else None
        if found:
            self.config = json.loads(html.unescape(found.group(1)))
            self.classes = [c["key"] for c in self.config["schema"]["classes"]]
        return bool(found)

    def main(self) -> None:
        signed_in = self.sign_in()
        self.run.gate.wait(timeout=300)
        try:
            if signed_in:
                self.fetch_more()
                while self.current is not None:
                    self.act()
        except Done:
            pass
        with self.run.timings.lock:
            self.run.sent += self.sent
            self.run.offered[self.name] = self.offered
            self.run.requests += self.requests
            if self.ran_out:
                self.run.ran_out.append(self.name)
            if not signed_in:
                self.run.not_signed_in.append(self.name)

    def fetch_more(self, sending: int | None = None) -> None:
        """GET next for the entries wanted, excluding those held and the one whose label is on its way."""
        count = (0 if self.current else 1) + PREFETCH - len(self.upcoming)
        if count <= 0:
            return
        held = [e["id"] for e in self.upcoming + ([self.current] if self.current else [])]
        query = {"dataset": self.config["dataset"]["id"], "schema": SCHEMA, "count": count,
                 "exclude": ",".join(map(str, held + ([sending] if sending else [])))}
        status, body = self.request("next", "GET", f"{self.config['urls']['next']}?{urlencode(query)}")
        if status != 200:
            return
        fresh = [e for e in body["entries"] if e["id"] not in held and e["id"] not in self.done]
        self.offered += [e["id"] for e in body["entries"]]
        self.upcoming += fresh
        if self.current is None and self.upcoming:
            self.current = self.upcoming.pop(0)
        # An empty queue starts a build, which needs a worker: the expert stops there (the report says so).
        self.ran_out = not body["entries"] and self.current is None

    def label(self, entry: dict, key: str, kind: str) -> int:
        body = {"galaxy": entry["galaxy"]["id"], "schema": SCHEMA, "label_class": key, "note": "",
                "queue_entry": entry["id"]}
        if kind == "double":  # the same label from two tabs of the expert at the same moment
            self.take(2)
            replies = self.twice_at_once("label", self.config["urls"]["labels"], body)
        else:
            replies = [self.request("label", "POST", self.config["urls"]["labels"], body)]
        for status, answer in replies:
            self.sent.append(Sent(self.name, "label", kind, entry["galaxy"]["id"], key, status,
                                  answer.get("id") if isinstance(answer, dict) else None, entry["id"]))
        return replies[0][0]

    def act(self) -> None:
        """Label (or skip) the galaxy shown, show the next, and now and then change one's mind."""
        entry, what = self.current, self.pick()
        self.done.add(entry["id"])
        if what == "skip":
            status, _ = self.request("skip", "POST", self.config["urls"]["skip"].replace("ENTRY", str(entry["id"])), {})
            self.sent.append(Sent(self.name, "skip", "skip", entry["galaxy"]["id"], status=status, entry=entry["id"]))
            self.advance(entry)
            return
        undone = self.undone.pop(entry["id"], None)
        if undone is not None:
            what = "relabel"  # given back by an undo: labelled again, with another class
        key = self.rng.choice([k for k in self.classes if k != undone])
        status = self.label(entry, key, what if what in ("double", "relabel") else "label")
        answered = 200 <= status < 300
        if answered and what == "retry":
            self.label(entry, key, "retry")
        elif answered and what == "change":
            self.label(entry, self.rng.choice([k for k in self.classes if k != key]), "change")
        self.advance(entry)
        if answered and what == "undo":
            self.undo(entry)

    def pick(self) -> str:
        roll = self.rng.random()
        for what, chance in CHANCES.items():
            if roll < chance:
                return what
            roll -= chance
        return "label"

    def advance(self, sent: dict) -> None:
        self.current = self.upcoming.pop(0) if self.upcoming else None
        self.fetch_more(sending=sent["id"])

    def undo(self, entry: dict) -> None:
        """The u key: the server takes the label back and gives the entry back; it is shown again (putBack)."""
        body = {"dataset": self.config["dataset"]["id"], "schema": SCHEMA}
        status, answer = self.request("undo", "POST", self.config["urls"]["undo"], body)
        ok = status == 200 and isinstance(answer, dict)
        self.sent.append(Sent(self.name, "undo", "undo", entry["galaxy"]["id"], "", status,
                              answer["undone"]["galaxy"] if ok else None, entry["id"]))
        if ok:
            back = answer["entry"]
            if self.current:
                self.upcoming.insert(0, self.current)
            self.upcoming = [e for e in self.upcoming if e["id"] != back["id"] and
                             e["galaxy"]["id"] != back["galaxy"]["id"]]
            self.done.discard(back["id"])
            self.current, self.undone[back["id"]] = back, answer["undone"]["label_class"]
