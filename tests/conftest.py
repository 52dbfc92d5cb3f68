"""Shared fixtures: named users for every role, a private media folder per test, paths to the bundled data."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO_ROOT / "labeling" / "demo_data"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MLCORE_TESTS = REPO_ROOT / "tests" / "mlcore"


def pytest_collection_modifyitems(config, items):
    """In run_suite's PostgreSQL pass, after the SQLite pass ran them, leave out the mlcore tests: mlcore never
    imports Django (tests/mlcore/test_no_django.py), so the database cannot change their outcome."""
    if os.environ.get("RUN_SUITE_DATABASE_FREE_DONE") != "1":
        return
    kept = [item for item in items if MLCORE_TESTS not in Path(item.path).parents]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny test models on 2 shared cores run up to 20 times slower with 2 threads than with 1 (thread hand-offs
    cost more than the work), so every test starts with one, as the worker does by default (TORCH_THREADS); a
    command run in-process may have set more."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes images under its own temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def import_root(settings, tmp_path):
    """The folder admins import from on the Jobs page, the test's own (the demo copies a sample there)."""
    settings.GALAXY_IMPORT_ROOT = tmp_path / "imports"
    return settings.GALAXY_IMPORT_ROOT


@pytest.fixture(autouse=True)
def features_root(settings, tmp_path):
    """Feature stores and neighbour indexes go under the test's own folder too."""
    settings.GALAXY_FEATURES_ROOT = tmp_path / "features"
    return settings.GALAXY_FEATURES_ROOT


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate-limit counters live in Django's cache (labeling/ratelimit.py): every test starts with none counted, as
    requests of earlier tests from the same 127.0.0.1 would otherwise add up."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


@pytest.fixture
def demo_data() -> Path:
    return DEMO_DATA


@pytest.fixture
def shared_data() -> Path:
    """The team's full copy of the real data, beside the checkout; tests that need more than the bundled
    subset skip when it is absent (a user's clone)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA


def _user(username: str, *, groups=(), **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def expert(db) -> User:
    return _user("edwin", groups=["experts"])


@pytest.fixture
def second_expert(db) -> User:
    return _user("vera", groups=["experts"])


@pytest.fixture
def volunteer(db) -> User:
    return _user("valentina", groups=["volunteers"])


@pytest.fixture
def outsider(db) -> User:
    return _user("olga")


@pytest.fixture
def admin_user(db) -> User:
    return _user("ada", is_staff=True, is_superuser=True)
