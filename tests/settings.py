"""Test settings: the real settings with a fixed key, fast password hashing and tasks run inline."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")

from labeling.settings import *  # noqa: E402,F403
from labeling.settings import Q_CLUSTER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
ALLOWED_HOSTS = ["*"]

# A test database per process, so that two runs against the same PostgreSQL server (two developers' runs, or the
# suite and a benchmark) never drop each other's database.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405
