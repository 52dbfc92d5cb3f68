"""Two people importing the same input at the same time, as real processes on a fresh PostgreSQL database: each
galaxy, vote summary and image file exists once, and both commands end cleanly, one creating the rows and the
other finding them unchanged; never a traceback from a unique constraint."""

import json
import subprocess
import sys
import threading

import pytest
from django.db import connection

from labeling.models import Galaxy
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.imports.reports import ImportFailed
from tests.labeling.import_helpers import media_files
from tests.labeling.ml_helpers import galaxy10_subset_folder
from tests.labeling.process_helpers import REPO_ROOT, fresh_database_url, manage, process_env
from tests.labeling.vote_import_helpers import read_table, stripe82, write_table

REPORT = """
import json
from django.db.models import Count
from labeling.models import Dataset, Galaxy, VoteSummary
print(json.dumps({"datasets": sorted(Dataset.objects.values_list("name", flat=True)),
                  "galaxies": dict(Galaxy.objects.values_list("dataset__name").annotate(n=Count("pk"))),
                  "summarised_galaxies": VoteSummary.objects.values("galaxy").distinct().count()}))
"""


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: two imports cannot interleave there")


def side_by_side(env, *args) -> list[subprocess.CompletedProcess]:
    """The same command twice, started together; both outcomes once both have ended."""
    command = [sys.executable, str(REPO_ROOT / "manage.py"), *args]
    running = [subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outcomes = []
    for process in running:
        stdout, stderr = process.communicate(timeout=240)
        outcomes.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return outcomes


def summaries(outcomes) -> list[str]:
    for outcome in outcomes:
        assert outcome.returncode == 0 and "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    return sorted(outcome.stdout.strip().splitlines()[-1] for outcome in outcomes)


def test_two_imports_of_the_same_images_and_votes_at_once_write_everything_once(demo_data, tmp_path):
    folder = galaxy10_subset_folder(tmp_path / "images", per_class=6)
    count = len(list((folder / "images").iterdir()))
    header, rows = read_table(stripe82(demo_data), limit=300)
    votes = write_table(tmp_path / "stripe82_300.csv", header, rows)
    with fresh_database_url("import_races") as database_url:
        env = process_env(tmp_path, database_url)
        assert manage(env, "migrate", "--no-input", "-v0").returncode == 0

        images = side_by_side(env, "import_galaxies", "--dataset", "G10", "--format", "folder", str(folder),
                              "--schema", "galaxy10")
        assert summaries(images) == [f"dataset 'G10': 0 created, 0 updated, {count} unchanged",
                                     f"dataset 'G10': {count} created, 0 updated, 0 unchanged, {count} expert labels"]
        tables = side_by_side(env, "import_votes", "--dataset", "Stripe 82", "--format", "gz2-table", str(votes))
        assert summaries(tables) == ["dataset 'Stripe 82': 0 created, 0 updated, 300 unchanged",
                                     "dataset 'Stripe 82': 300 created, 0 updated, 0 unchanged"]

        report = json.loads(manage(env, "shell", "-c", REPORT).stdout.strip().splitlines()[-1])
    # The second of each pair compared every row with what the first had committed and found nothing to add.
    assert report["datasets"] == ["G10", "Stripe 82"]
    assert report["galaxies"] == {"G10": count, "Stripe 82": 300} and report["summarised_galaxies"] == 300
    stored = media_files(tmp_path / "var" / "media")
    assert len([name for name in stored if name.startswith("galaxies/")]) == count
    assert len([name for name in stored if name.startswith("thumbnails/")]) == count


@pytest.mark.django_db(transaction=True)
def test_a_galaxy_stored_by_another_writer_during_an_import_is_a_clear_conflict_and_nothing_is_written(
        tmp_path, settings):
    """The plan is checked before the import's turn comes, and the admin site writes galaxies too: a row that
    appears meanwhile makes the import fail naming the row, with none of its own rows or files kept."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    folder = galaxy10_subset_folder(tmp_path / "images", per_class=2)
    dataset = dataset_get_or_create(name="G10")
    intruded: list[str] = []

    def another_writer(done, total, message):
        if message == "writing" and not intruded:
            first = sorted(path.stem for path in (folder / "images").iterdir())[0]

            def store():  # its own connection, committed before the import writes that row
                Galaxy.objects.create(dataset=dataset, external_id=first)
                connection.close()

            thread = threading.Thread(target=store)
            thread.start()
            thread.join()
            intruded.append(first)

    with pytest.raises(ImportFailed) as failed:
        galaxies_import(dataset_name="G10", fmt="folder", path=folder, progress=another_writer)
    assert intruded and "labels.csv, row" in str(failed.value) and "run it again" in str(failed.value)
    assert list(Galaxy.objects.values_list("external_id", flat=True)) == intruded
    assert media_files(tmp_path / "media") == []
