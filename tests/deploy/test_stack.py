"""The deployment's processes without Docker, as docker-compose.yml runs them: PostgreSQL, Redis (Debian's
redis-server on a private port), gunicorn with the production settings serving the app and its static files, two
qcluster workers of the default queue and one of the GPU queue, all on loopback.

An admin imports galaxies, then activates a model version in the browser; the job chain runs through the workers:
feature extraction split into chunks that both default workers take in parallel, the neighbour index, activation,
and clustering, routed to the GPU queue's worker. A script then reads the clusters over the API with a token.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from tests.labeling.ml_helpers import galaxy10_subset_folder
from tests.labeling.process_helpers import REPO_ROOT, fresh_database_url, manage

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
GPU_QUEUE = "stack-gpu"
STARTUP_SECONDS = 90
CHAIN_SECONDS = 300

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="process ancestry is read from /proc"),
    pytest.mark.django_db,  # only to know which database server the suite runs on
]

JOBS_REPORT = """
import json
from labeling.models import Job, JobChunk
print(json.dumps({
    "jobs": list(Job.objects.order_by("pk").values("pk", "kind", "status", "error", "worker_pid", "result")),
    "chunks": list(JobChunk.objects.order_by("number").values("number", "status", "worker_pid", "size")),
}, default=str))
"""
CREATE_VERSION = """
from labeling.services.learning.model_versions import model_version_get_or_create
print(model_version_get_or_create(backbone="resnet18", weights="random", image_size=64, seed=0).pk)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ancestors(pid: int) -> list[int]:
    """``pid``'s parent, grandparent, ... read from /proc (a qcluster's workers are its grandchildren)."""
    chain = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


class Processes:
    """Long-running processes started for one test, each logging to its own file, all stopped at the end."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process, in stop_all
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.running[name] = process
        return process

    def tails(self) -> str:
        return "\n".join(f"--- {name}.log ---\n{(self.logs / f'{name}.log').read_text()[-1500:]}"
                         for name in self.running)

    def stop_all(self, grace: float = 20) -> list[str]:
        """Stop the processes in reverse order of starting, as Compose stops services (the workers before the
        Redis they depend on), each with SIGTERM to its leader only, as `docker stop` sends it to a container's
        PID 1: gunicorn and qcluster stop their own children in order. (Sent to a whole group, SIGTERM reaches
        qcluster's children too and the cluster never finishes stopping.) A process still running after ``grace``
        seconds is killed with its group; the names of those that had to be."""
        killed = []
        for name, process in reversed(self.running.items()):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                killed.append(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        return killed


def _wait_for(check, seconds: float, what: str, processes: Processes):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dead = [name for name, process in processes.running.items() if process.poll() is not None]
        assert not dead, f"{dead} exited while waiting for {what}\n{processes.tails()}"
        try:
            outcome = check()
        except (requests.ConnectionError, OSError):
            outcome = None
        if outcome:
            return outcome
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}\n{processes.tails()}")


@pytest.fixture
def stack_environment(tmp_path):
    """Production settings for every process: PostgreSQL, a private Redis, no debug, secrets from the environment."""
    if connection.vendor != "postgresql":
        pytest.skip("the deployment runs on PostgreSQL: this test runs in the suite's PostgreSQL pass")
    if not Path(REDIS_SERVER).exists():
        pytest.skip("no redis-server: install Debian's redis-server package (.ci/run does)")
    processes = Processes(tmp_path)
    redis_port = _free_port()
    processes.start("redis", [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], dict(os.environ))
    try:
        with fresh_database_url("stack_test") as database_url:
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith(("DJANGO_", "GALAXY_", "Q_", "DATABASE_URL", "REDIS_URL"))}
            env.update(
                DJANGO_SETTINGS_MODULE="labeling.settings", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="127.0.0.1", DATABASE_URL=database_url,
                REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", VAR_DIR=str(tmp_path / "var"),
                MEDIA_ROOT=str(tmp_path / "media"), STATIC_ROOT=str(tmp_path / "static"),
                GALAXY_FEATURES_ROOT=str(tmp_path / "features"), GALAXY_SERVE_FILES="1",
                # Plain HTTP on loopback: a real deployment keeps these on behind its TLS proxy.
                DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0",
                Q_SITE_NAME=f"stack-test-{os.getpid()}", Q_WORKERS="1", TORCH_THREADS="1",
                GALAXY_EXTRACT_CHUNK="5", GALAXY_GPU_CLUSTER=GPU_QUEUE, GALAXY_GPU_JOB_KINDS="cluster",
                DJANGO_SUPERUSER_USERNAME="admin", DJANGO_SUPERUSER_PASSWORD="a long admin password 7",
                DJANGO_SUPERUSER_EMAIL="admin@example.org")
            yield env, processes
    finally:
        processes.stop_all()


def test_an_import_extract_cluster_chain_runs_through_gunicorn_and_three_workers(stack_environment, tmp_path):
    env, processes = stack_environment
    for step in (["migrate", "--no-input", "-v0"], ["collectstatic", "--no-input", "-v0"],
                 ["createsuperuser", "--no-input"]):
        done = manage(env, *step)
        assert done.returncode == 0, f"{step}: {done.stderr[-2000:]}"
    folder = galaxy10_subset_folder(tmp_path / "images", classes=("0", "2", "5", "8"), per_class=8)  # 32 galaxies
    imported = manage(env, "import_galaxies", "--dataset", "Stack G10", "--format", "folder", str(folder),
                      "--schema", "galaxy10")
    assert imported.returncode == 0, imported.stderr
    version_id = int(manage(env, "shell", "-c", CREATE_VERSION).stdout.split()[-1])

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    processes.start("gunicorn", [sys.executable, "-m", "gunicorn", "labeling.wsgi", "--bind", f"127.0.0.1:{port}",
                                 "--workers", "2", "--timeout", "120"], env)
    workers = {name: processes.start(name, [sys.executable, str(REPO_ROOT / "manage.py"), "qcluster"], env)
               for name in ("worker-a", "worker-b")}
    gpu_worker = processes.start("gpu-worker", [sys.executable, str(REPO_ROOT / "manage.py"), "qcluster"],
                                 {**env, "Q_CLUSTER_NAME": GPU_QUEUE})
    browser = requests.Session()
    login_page = _wait_for(lambda: (r := browser.get(f"{base}/login/", timeout=10)).ok and r, STARTUP_SECONDS,
                           "gunicorn", processes)

    health = requests.get(f"{base}/healthz/", timeout=10)  # what the web container's health check calls
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}

    # Static files come from gunicorn itself (whitenoise), with their hashed names and a long cache lifetime.
    stylesheet = re.search(r'<link[^>]+href="(/static/[^"]+\.css)"', login_page.text).group(1)
    css = requests.get(base + stylesheet, timeout=10)
    assert css.ok and css.headers["Content-Type"].startswith("text/css")
    assert "max-age" in css.headers.get("Cache-Control", ""), css.headers

    # The admin signs in and activates the version for the dataset, as on the Training page.
    signed_in = browser.post(f"{base}/login/", data={"username": "admin", "password": "a long admin password 7",
                                                     "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                             headers={"Referer": f"{base}/login/"}, timeout=30)
    assert signed_in.ok and "sessionid" in browser.cookies
    activated = browser.post(f"{base}/training/versions/{version_id}/activate/",
                             data={"dataset": "stack-g10", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                             headers={"Referer": f"{base}/training/"}, timeout=30)
    assert activated.ok and "Activation started" in activated.text, activated.text[-2000:]

    def cluster_job_ended():
        jobs = browser.get(f"{base}/api/jobs/?kind=cluster", timeout=10).json()["results"]
        failed = browser.get(f"{base}/api/jobs/?status=failed", timeout=10).json()["results"]
        assert not failed, f"{failed}\n{processes.tails()}"
        return jobs and jobs[0]["status"] in ("succeeded", "failed", "cancelled") and jobs[0]

    cluster_job = _wait_for(cluster_job_ended, CHAIN_SECONDS, "the chain to reach clustering", processes)
    assert cluster_job["status"] == "succeeded", cluster_job

    report = json.loads(manage(env, "shell", "-c", JOBS_REPORT).stdout.strip().splitlines()[-1])
    by_kind = {job["kind"]: job for job in report["jobs"]}
    assert {"extract_features", "build_index", "cluster"} <= set(by_kind)
    assert all(job["status"] == "succeeded" for job in report["jobs"]), report["jobs"]
    extraction = by_kind["extract_features"]["result"]
    assert extraction["count"] == 32 and extraction["chunks"] == 7 and len(report["chunks"]) == 7

    # Both default workers took chunks; the GPU queue's worker took the clustering and no chunk.
    owner = {}
    for chunk in report["chunks"]:
        lineage = _ancestors(chunk["worker_pid"])
        owner[chunk["number"]] = next(name for name, process in workers.items() if process.pid in lineage)
    assert set(owner.values()) == {"worker-a", "worker-b"}, owner
    assert gpu_worker.pid in _ancestors(by_kind["cluster"]["worker_pid"])

    # A script reads the clusters with a token.
    token = requests.post(f"{base}/api/auth/token/", data={"username": "admin",
                                                           "password": "a long admin password 7"}, timeout=10)
    assert token.status_code in (200, 201), token.text
    clusterings = requests.get(f"{base}/api/clusterings/",
                               headers={"Authorization": f"Token {token.json()['token']}"}, timeout=10).json()
    assert clusterings["count"] == 1
    assert sum(clusterings["results"][0]["sizes"]) == 32

    # `docker stop` gives a container 10 s after SIGTERM before it kills it: the idle web server and workers stop
    # cleanly within that, rather than being killed.
    assert processes.stop_all(grace=10) == [], f"killed after 10 s\n{processes.tails()}"
