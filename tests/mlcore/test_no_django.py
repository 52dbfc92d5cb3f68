"""mlcore is pure ML: every module imports with Django and labeling made unimportable (the dependency arrow points
from labeling to mlcore, never back)."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this test process has Django loaded already.
PROBE = r"""
import importlib, pkgutil, sys

class Forbidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "labeling", "rest_framework", "django_q"):
            raise ImportError(f"mlcore must not import {name}")
        return None

sys.meta_path.insert(0, Forbidden())
import mlcore

def unimportable(name):
    raise ImportError(f"cannot import package {name}")

# With the prefix, walk_packages descends into every stage's package; a package that fails to import is an error.
walked = pkgutil.walk_packages(mlcore.__path__, prefix="mlcore.", onerror=unimportable)
names = sorted(m.name for m in walked if not m.name.rsplit(".", 1)[-1].startswith("_"))
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "labeling"))
assert not leaked, leaked
print("\n".join(names))
"""


def test_every_mlcore_module_imports_without_django_or_labeling():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    imported = done.stdout.split()
    assert {"mlcore.features.backbone", "mlcore.neighbours.index", "mlcore.clusters.spectral", "mlcore.active.query",
            "mlcore.training.finetune", "mlcore.votes.simulated"} <= set(imported)


def test_the_probe_would_catch_a_module_that_imports_django(tmp_path):
    package = tmp_path / "mlcore"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "leaky.py").write_text("from django.conf import settings\n")

    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})

    assert done.returncode != 0
    assert "ImportError: mlcore must not import django" in done.stderr
