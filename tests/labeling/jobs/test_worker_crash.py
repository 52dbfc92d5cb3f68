"""A worker killed in the middle of feature extraction (SIGKILL: no chance to clean up): the job is marked failed
with the reason, and running it again resumes from the vectors already stored. Real processes on a real database
file, as a worker and a person's second command would be."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.labeling.ml_helpers import galaxy10_subset_folder
from tests.labeling.process_helpers import fresh_database_url, manage, process_env

REPO_ROOT = Path(__file__).resolve().parents[3]

REPORT = """
import json
from labeling.models import Dataset, FeatureSet, Job
print(json.dumps({"jobs": list(Job.objects.order_by("pk").values("pk", "status", "error", "result")),
                  "count": FeatureSet.objects.get().count,
                  "active": list(Dataset.objects.values_list("active_version__name", flat=True))},
                 default=str))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc semantics")
def test_a_killed_extraction_is_marked_failed_and_a_second_run_resumes_it(tmp_path):
    with fresh_database_url() as database_url:
        _kill_and_resume(tmp_path, database_url)


def _kill_and_resume(tmp_path, database_url):
    env = process_env(tmp_path, database_url)
    folder = galaxy10_subset_folder(tmp_path / "images", classes=("0", "2", "5", "8"), per_class=10)
    assert manage(env, "migrate", "--no-input", "-v0").returncode == 0
    imported = manage(env, "import_galaxies", "--dataset", "G10", "--format", "folder", str(folder),
                       "--schema", "galaxy10")
    assert imported.returncode == 0, imported.stderr
    assert manage(env, "shell", "-c", ACTIVATE_SERVING).returncode == 0
    command = [sys.executable, str(REPO_ROOT / "manage.py"), "extract_features", "--dataset", "G10",
               "--image-size", "64", "--batch-size", "4", "--threads", "1", "--workers", "0"]

    first = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store_keys = tmp_path / "features"
    deadline = time.monotonic() + 120
    # Kill once some vectors are stored: the store's key file grows with every committed batch.
    while time.monotonic() < deadline and first.poll() is None:
        keys = list(store_keys.rglob("*keys*"))
        if keys and keys[0].stat().st_size >= 8 * 12:
            break
        time.sleep(0.05)
    assert first.poll() is None, "the extraction ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)

    second = manage(env, "extract_features", "--dataset", "G10", "--image-size", "64", "--threads", "1")
    assert second.returncode == 0, second.stderr

    shell = manage(env, "shell", "-c", REPORT)
    report = json.loads(shell.stdout.strip().splitlines()[-1])
    killed, resumed = report["jobs"]
    assert killed["status"] == "failed" and "killed or restarted" in killed["error"]
    assert resumed["status"] == "succeeded"
    assert 0 < resumed["result"]["added"] < 40 and report["count"] == 40
    assert f"{resumed['result']['added']} new" in second.stdout
    assert report["active"] == ["serving"]  # the version serving before the crash still serves


TRAINING_REPORT = """
import json
from labeling.models import Dataset, Job, ModelVersion
print(json.dumps({"jobs": list(Job.objects.filter(kind="retrain").order_by("pk").values("pk", "status", "error")),
                  "versions": list(ModelVersion.objects.order_by("pk").values("name", "status", "error")),
                  "active": list(Dataset.objects.values_list("active_version__name", flat=True))},
                 default=str))
"""
ACTIVATE_SERVING = """
from labeling.models import Dataset, ModelVersion
from labeling.services.learning.model_versions import model_version_activate
model_version_activate(version=ModelVersion.objects.create(name="serving", image_size=32),
                       dataset=Dataset.objects.get(name="G10"))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc semantics")
def test_a_worker_killed_mid_training_leaves_the_version_failed_and_the_active_one_serving(tmp_path):
    with fresh_database_url() as database_url:
        env = process_env(tmp_path, database_url)
        folder = galaxy10_subset_folder(tmp_path / "images", classes=("2", "5", "8"), per_class=8)
        assert manage(env, "migrate", "--no-input", "-v0").returncode == 0
        assert manage(env, "import_galaxies", "--dataset", "G10", "--format", "folder", str(folder),
                       "--schema", "galaxy10").returncode == 0
        assert manage(env, "shell", "-c", ACTIVATE_SERVING).returncode == 0
        training = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "manage.py"), "retrain", "--dataset", "G10", "--image-size", "32",
             "--epochs", "200"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline, seen = time.monotonic() + 120, ""
        # Kill once training has started: the command's progress bar says "training".
        while time.monotonic() < deadline and training.poll() is None and "training" not in seen:
            seen += os.read(training.stderr.fileno(), 4096).decode(errors="replace")
        assert training.poll() is None, f"the retrain ended before it could be killed: {seen[-500:]}"
        training.send_signal(signal.SIGKILL)
        training.wait(timeout=30)
        at_kill = json.loads(manage(env, "shell", "-c", TRAINING_REPORT).stdout.strip().splitlines()[-1])
        assert at_kill["active"] == ["serving"]
        # The next command that looks at jobs (here: another retrain, refused or run) notices the dead worker.
        manage(env, "retrain", "--dataset", "G10", "--image-size", "32", "--epochs", "1")
        report = json.loads(manage(env, "shell", "-c", TRAINING_REPORT).stdout.strip().splitlines()[-1])
        killed = report["jobs"][0]
        assert killed["status"] == "failed" and "killed or restarted" in killed["error"]
        versions = {v["name"]: v for v in report["versions"]}
        # The killed cycle never activated; a second cycle that won would be the dataset's active version.
        assert report["active"] == ["serving"] or "cycle 2" in report["active"][0]
        cycle_one = next(v for name, v in versions.items() if "cycle 1" in name)
        assert cycle_one["status"] == "failed" and "killed or restarted" in cycle_one["error"]
        assert not list((tmp_path / "features").rglob("version-1*/backbone.pt"))
