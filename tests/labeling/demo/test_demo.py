"""`make demo`: the demo data load twice without duplicating anything, and the server stops its worker with it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User

from labeling.models import (
    Clustering,
    ConsensusLabel,
    Dataset,
    DecisionTree,
    Embedding,
    ExpertLabel,
    FeatureSet,
    Galaxy,
    Job,
    QueueEntry,
    Simulation,
    VolunteerClassification,
    VoteSummary,
)
from labeling.services.demo.load import demo_load
from labeling.services.imports.jobs import import_sources

REPO_ROOT = Path(__file__).resolve().parents[3]
COUNTED = (Dataset, Galaxy, ExpertLabel, VolunteerClassification, VoteSummary, ConsensusLabel, DecisionTree, User,
           FeatureSet, Clustering, Embedding, Job, QueueEntry, Simulation)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.mark.django_db(transaction=True)
def test_loading_the_demo_twice_duplicates_nothing_and_keeps_the_logins(settings, tmp_path, rf):
    settings.VAR_DIR = tmp_path / "var"
    first = demo_load(include_stripe82=False)
    counts = _counts()
    second = demo_load(include_stripe82=False)
    jobs = list(Job.objects.values_list("kind", "status"))
    assert sorted(jobs) == sorted([("extract_features", "succeeded"), ("build_index", "succeeded"),
                                   ("cluster", "succeeded"), ("embed_2d", "succeeded")] * 2)

    assert _counts() == counts
    assert counts["Galaxy"] == 110 + 83 + 12
    assert counts["VolunteerClassification"] > 20 * counts["Galaxy"]
    assert second.credentials == first.credentials
    saved = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())
    assert saved == first.credentials
    assert (tmp_path / "var" / "demo-credentials.json").stat().st_mode & 0o077 == 0
    # As the login page signs in, with its request (django-axes refuses to authenticate without one).
    admin = authenticate(rf.post("/login/"), username="admin", password=saved["admin"])
    expert = authenticate(rf.post("/login/"), username="expert", password=saved["expert"])
    assert admin.is_superuser and not expert.is_staff
    assert expert.groups.filter(name="experts").exists()
    assert any("simulated volunteers for 0 new galaxies" in line for line in second.lines)
    galaxy10 = FeatureSet.objects.get(dataset__name="Galaxy10 DECaLS samples")
    assert galaxy10.count == 110 and galaxy10.has_index and galaxy10.clusterings.get().k == 10
    # Most Galaxy10 labels are held back as an oracle: the expert has work, the simulation page a finished run.
    labelled = ExpertLabel.objects.filter(galaxy__dataset__name="Galaxy10 DECaLS samples", schema__name="galaxy10")
    assert labelled.count() == 30
    assert sorted(labelled.values_list("label_class__key", flat=True)) == sorted([str(k) for k in range(10)] * 3)
    oracle = tmp_path / "var" / "demo" / "galaxy10-oracle.csv"
    assert len(oracle.read_text().splitlines()) == 1 + 110
    waiting = QueueEntry.objects.filter(expert__username="expert", schema__name="galaxy10", status="pending")
    assert waiting.count() >= 40
    assert not waiting.filter(galaxy__in=labelled.values("galaxy")).exists()
    simulation = Simulation.objects.get(dataset__name="Galaxy10 DECaLS samples")
    assert set(simulation.curves) >= {"random", "cluster_margin", "margin"}
    assert simulation.parameters["n_pool"] + simulation.parameters["n_test"] == 110
    # A catalogue waits in the import folder for the Jobs page, copied once.
    assert {"galaxy10-sample", "galaxy10-sample/labels.csv"} <= set(import_sources())
    assert any("galaxy10-sample, to import on /jobs/" in line for line in second.lines)


def _qcluster_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "manage.py qcluster"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


@pytest.mark.skipif(not Path("/usr/bin/pgrep").exists(), reason="needs pgrep to find the worker")
def test_stopping_the_demo_server_stops_its_worker_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_DEBUG="1", VAR_DIR=str(tmp_path / "var"), Q_CLUSTER_NAME=f"demo-serve-test-{os.getpid()}")
    manage = [sys.executable, str(REPO_ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], env=env, check=True, cwd=REPO_ROOT)
    before = _qcluster_pids()
    server = subprocess.Popen([*manage, "demo_serve", "--port", "0"], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (_qcluster_pids() - before) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = _qcluster_pids() - before
        assert started, "demo_serve started no qcluster worker"
        time.sleep(2)  # let the cluster finish starting, as a person's Ctrl-C would
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)
        deadline = time.monotonic() + 30
        while _qcluster_pids() & started and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not (_qcluster_pids() & started), "the worker outlived the demo server"
    finally:
        if server.poll() is None:
            server.kill()
        for pid in _qcluster_pids() - before:
            os.kill(pid, signal.SIGKILL)
