"""An import killed (SIGKILL: no chance to clean up) while it writes a few hundred images: the database holds nothing
of it (one transaction), and the same import run again succeeds with the full counts and leaves exactly the files
its galaxies refer to, none of the killed run's. Real processes on a fresh database, as an admin would see it."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.labeling.import_helpers import media_files
from tests.labeling.process_helpers import REPO_ROOT, fresh_database_url, manage, process_env

IMAGES = 300
REPORT = """
import json
from labeling.models import Dataset, ExpertLabel, Galaxy
names = [name for pair in Galaxy.objects.values_list("image", "thumbnail") for name in pair if name]
print(json.dumps({"datasets": Dataset.objects.count(), "galaxies": Galaxy.objects.count(),
                  "labels": ExpertLabel.objects.count(), "files": sorted(names)}))
"""


def noise_images(folder, count: int):
    """``count`` small PNGs of random sky, each different (an import refuses the same bytes twice)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for number in range(count):
        pixels = rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"galaxy_{number:04d}.png")
    return folder


def report(env) -> dict:
    return json.loads(manage(env, "shell", "-c", REPORT).stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL semantics")
def test_an_import_killed_mid_way_leaves_nothing_and_running_it_again_imports_everything(tmp_path):
    folder = noise_images(tmp_path / "images", IMAGES)
    media = tmp_path / "var" / "media"
    with fresh_database_url("import_crash") as database_url:
        env = process_env(tmp_path, database_url)
        assert manage(env, "migrate", "--no-input", "-v0").returncode == 0
        command = [sys.executable, str(REPO_ROOT / "manage.py"), "import_galaxies", "--dataset", "Sky",
                   "--format", "folder", str(folder)]
        killed = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        # Kill once the writing is well under way: its image files appear one galaxy after another.
        while time.monotonic() < deadline and killed.poll() is None and len(media_files(media)) < 60:
            time.sleep(0.02)
        assert killed.poll() is None, "the import ended before it could be killed"
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        left_behind = media_files(media)
        after_kill = report(env)

        again = manage(env, "import_galaxies", "--dataset", "Sky", "--format", "folder", str(folder))
        assert again.returncode == 0, again.stderr[-3000:]
        after_rerun = report(env)
    assert len(left_behind) >= 60  # the kill came mid-way: files written, nothing committed
    assert after_kill == {"datasets": 0, "galaxies": 0, "labels": 0, "files": []}
    assert f"{IMAGES} created, 0 updated, 0 unchanged" in again.stdout
    assert after_rerun["datasets"] == 1 and after_rerun["galaxies"] == IMAGES
    # The files on disk are exactly those of the galaxies: an image and a thumbnail each, no orphan of the kill.
    assert media_files(media) == after_rerun["files"] and len(after_rerun["files"]) == 2 * IMAGES
