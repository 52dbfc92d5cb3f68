"""bench/labelling_load.py at a tiny scale against a real gunicorn on PostgreSQL, and its label checks on doctored
records: they pass on what was stored and fail on a lost label, a duplicate or a wrong history."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))

from labelling_load_checks import Row, Sent, compare, replay  # noqa: E402

EXPERTS, SECONDS, MAX_REQUESTS = 3, 5, 40


@pytest.fixture
def postgres_url():
    if connection.vendor != "postgresql":
        pytest.skip("the load test runs against PostgreSQL, as deployed: it runs in the suite's PostgreSQL pass")
    return os.environ["DATABASE_URL"]


def test_three_experts_label_for_five_seconds_and_every_label_is_stored_once(postgres_url, tmp_path):
    out = tmp_path / "labelling_load.json"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "GALAXY_", "Q_", "DATABASE_URL", "REDIS_URL"))}
    done = subprocess.run([sys.executable, "bench/labelling_load.py", "--experts", str(EXPERTS), "--seconds",
                           str(SECONDS), "--max-requests", str(MAX_REQUESTS), "--galaxies", "600", "--queue", "100",
                           "--timeout", "20", "--postgres", postgres_url, "--out", str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    result = json.loads(out.read_text())
    assert result["passed"] and all(check["passed"] for check in result["checks"]), result["checks"]
    assert len(result["checks"]) >= 8
    labels = result["labels"]
    assert labels["lost"] == labels["duplicates"] == labels["errors"] == 0
    assert labels["sent"] > 0 and labels["stored"] + labels["history"] > 0
    for kind in ("next", "label"):
        endpoint = result["endpoints"][kind]
        assert endpoint["requests"] > 0 and endpoint["errors"] == 0
        assert 0 < endpoint["p50_ms"] <= endpoint["p95_ms"] <= endpoint["p99_ms"] <= endpoint["max_ms"]
        assert endpoint["server_p50_ms"] > 0  # gunicorn's own times, read from its access log
    # Capped in count (each expert stops at MAX_REQUESTS) and in time (a request in flight may end after it).
    assert 0 < result["requests"] <= EXPERTS * MAX_REQUESTS
    assert result["elapsed_s"] <= SECONDS + 20
    assert result["throughput_rps"] == pytest.approx(result["requests"] / result["elapsed_s"], rel=0.01)
    assert "POST /api/labels/" in done.stdout and "p95" in done.stdout


# --- the checks on records written by hand ---------------------------------------------------------------------


def honest_run() -> tuple[list[Sent], list[Row]]:
    """Two experts on galaxy 7: the first labels it, changes its mind, sends the change again; the second labels
    it, undoes, labels it again. The first labels galaxy 8 too."""
    sent = [
        Sent("first", "label", "label", 7, "spiral", 201, 1),
        Sent("second", "label", "label", 7, "merger", 201, 2),
        Sent("first", "label", "change", 7, "round", 201, 3),
        Sent("second", "undo", "undo", 7, "", 200, 7),
        Sent("first", "label", "retry", 7, "round", 201, 3),
        Sent("second", "label", "relabel", 7, "edge-on", 201, 4),
        Sent("first", "label", "label", 8, "spiral", 201, 5),
    ]
    rows = [Row(1, "first", 7, "spiral", False), Row(3, "first", 7, "round", True),
            Row(4, "second", 7, "edge-on", True), Row(5, "first", 8, "spiral", True)]
    return sent, rows


def failed(checks) -> list[str]:
    return [name for name, passed, _ in checks if not passed]


def test_the_replay_keeps_the_changes_as_history_and_forgets_an_undone_label():
    expected, problems = replay(honest_run()[0])

    assert expected[("first", 7)] == [(1, "spiral"), (3, "round")]
    assert expected[("second", 7)] == [(4, "edge-on")]
    assert not problems


def test_the_checks_pass_on_what_was_answered_and_stored():
    numbers, checks = compare(*honest_run())

    assert not failed(checks)
    assert numbers == {"sent": 6, "stored": 3, "history": 1, "expected": 3, "duplicates": 0, "lost": 0}


def test_the_checks_report_a_label_answered_201_but_not_stored():
    sent, rows = honest_run()

    numbers, checks = compare(sent, [row for row in rows if row.id != 5])

    assert numbers["lost"] == 1
    assert failed(checks) == ["every label answered 2xx stored exactly once",
                              "each label in force is the last class sent, its history the changes"]


def test_the_checks_report_a_second_label_in_force_for_the_same_expert_and_galaxy():
    sent, rows = honest_run()

    numbers, checks = compare(sent, [*rows, Row(6, "first", 8, "spiral", True)])

    assert numbers["duplicates"] == 2  # a row no answer accounts for, and a second label in force
    assert "every label answered 2xx stored exactly once" in failed(checks)


def test_the_checks_report_an_undone_label_still_stored_and_a_lost_history_row():
    sent, rows = honest_run()
    rows = [row for row in rows if row.id != 1] + [Row(2, "second", 7, "merger", False)]

    numbers, checks = compare(sent, sorted(rows, key=lambda row: row.id))

    assert numbers["lost"] == 1 and numbers["duplicates"] == 1
    assert "each label in force is the last class sent, its history the changes" in failed(checks)


def test_the_checks_report_a_retry_that_was_stored_anew():
    sent, rows = honest_run()
    sent[4] = Sent("first", "label", "retry", 7, "round", 201, 9)

    _, checks = compare(sent, rows)

    assert failed(checks) == ["a label sent again stores nothing; an undo takes back the label just given"]


def test_the_checks_leave_out_requests_that_failed():
    sent, rows = honest_run()
    sent.append(Sent("second", "label", "label", 9, "spiral", 500, None))

    numbers, checks = compare(sent, rows)

    assert not failed(checks) and numbers["sent"] == 6  # the error itself is the errors check's to report
