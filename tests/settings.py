"""Test settings: the real settings with a fixed key, fast password hashing and tasks run inline."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")

from labeling.settings import *  # noqa: E402,F403
from labeling.settings import Q_CLUSTER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
ALLOWED_HOSTS = ["*"]

# The suite runs with DEBUG off, as production does, but over plain HTTP (the test client, the live server) and
# without collectstatic: no HTTPS redirect or secure-only cookies, plain static storage, and whitenoise looks files
# up per request instead of scanning STATIC_ROOT (absent here) for every test's client. The production values are
# tested in tests/labeling/test_deploy_settings.py, with labeling.settings loaded in a subprocess.
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_AUTOREFRESH = True

# A test database per process, so that two runs against the same PostgreSQL server (two developers' runs, or the
# suite and a benchmark) never drop each other's database.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405

# Rate-limit counters in this process's memory, never in a developer's Redis (REDIS_URL), where the tests' cache.clear()
# would flush the task broker's keys too; tests/conftest.py empties the cache before every test.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
