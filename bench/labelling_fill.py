"""The database bench/labelling_api.py measures: one dataset of N galaxies with everything the labelling page reads.

Runs inside a configured Django process on PostgreSQL. The big tables (galaxies, vote summaries, imported expert
labels, predictions) are written with COPY; the small ones through the ORM and the application's own services
(shipped galaxy10 schema and gz_decals tree, model version, feature set). Reproducible from a seed. Galaxies with
imported labels, with the expert's labels of today and in the expert's queue are disjoint; below 300k galaxies
their numbers shrink to a third, a twentieth and a quarter of the galaxies where that is smaller.
"""

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth.models import Group, User
from django.db import connection
from django.utils import timezone

from labeling.models import (
    Classifier,
    ExpertLabel,
    FeatureSet,
    Galaxy,
    Job,
    Prediction,
    QueueEntry,
    QueuePolicy,
    VoteSummary,
)
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.labelling.labels import EXPERTS_GROUP
from labeling.services.learning.features import feature_set_get_or_create
from labeling.services.learning.model_versions import model_version_get_or_create
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped

IMPORTED_LABELS = 100_000
TODAY_LABELS = 3_000
QUEUED = 5_000
# So large that no POST of the benchmark starts a refit of the probability model (and a queue rebuild after it).
REFIT_EVERY = 1_000_000_000
EXPERT = "bench-expert"


@dataclass
class Filled:
    dataset: object
    schema: object
    expert: object
    feature_set: object
    counts: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def copy_rows(model, fields: list[str], rows) -> None:
    """COPY ``rows`` (tuples in the order of ``fields``) into the model's table; JSON values as JSON text."""
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    with connection.cursor() as cursor, cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def fill(n: int, *, seed: int = 0) -> Filled:
    """Fill an empty, migrated database with ``n`` galaxies and what the labelling page shows of them."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    seconds = {}
    started = time.perf_counter()

    schema = schema_get_or_load_shipped(name="galaxy10")  # also loads its rule's tree, gz_decals
    classes = dict(schema.classes.values_list("key", "id"))
    keys = list(classes)
    tree = tree_get_or_load_shipped(name="gz_decals")
    question = tree.questions.order_by("order").first()
    answers = list(question.answers.order_by("order").values_list("key", flat=True))
    dataset = dataset_get_or_create(name=f"Bench {n}")
    seconds["schema and tree"] = time.perf_counter() - started

    mark = time.perf_counter()
    slug = dataset.slug
    copy_rows(Galaxy, ["dataset", "external_id", "image", "thumbnail", "width", "height", "ra", "dec",
                       "content_hash", "metadata", "created_at"],
              ((dataset.pk, f"g{i}", f"galaxies/{slug}/g{i}.jpg", f"thumbnails/{slug}/g{i}.jpg", 256, 256,
                float(i % 36000) / 100, float(i % 18000) / 100 - 90, "", "{}", now) for i in range(n)))
    ids = np.fromiter(Galaxy.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True),
                      np.int64, count=n)
    seconds["galaxies (COPY)"] = time.perf_counter() - mark
    say(f"{n:,} galaxies in {seconds['galaxies (COPY)']:.1f} s")

    mark = time.perf_counter()
    totals = rng.integers(20, 60, size=n)
    votes = rng.multinomial(totals, rng.dirichlet(np.ones(len(answers)), size=n))

    def summaries():
        for galaxy_id, total, counts in zip(ids.tolist(), totals.tolist(), votes.tolist(), strict=True):
            yield (galaxy_id, question.pk, VoteSummary.Source.CATALOGUE,
                   json.dumps(dict(zip(answers, counts, strict=True))), total,
                   json.dumps({a: round(c / total, 4) for a, c in zip(answers, counts, strict=True)}), 1.0, "{}",
                   "bench", now)

    copy_rows(VoteSummary, ["galaxy", "question", "source", "counts", "total", "fractions", "reach", "extra",
                            "imported_from", "updated_at"], summaries())
    seconds["vote summaries (COPY)"] = time.perf_counter() - mark
    say(f"{n:,} vote summaries in {seconds['vote summaries (COPY)']:.1f} s")

    # Disjoint galaxies for the imported labels, the expert's labels of today and the expert's queue.
    order = rng.permutation(n)
    n_imported, n_today, n_queued = min(IMPORTED_LABELS, n // 3), min(TODAY_LABELS, n // 20), min(QUEUED, n // 4)
    imported = ids[order[:n_imported]]
    today = ids[order[n_imported:n_imported + n_today]]
    queued = ids[order[n_imported + n_today:n_imported + n_today + n_queued]]

    mark = time.perf_counter()
    ten = [classes[k] for k in keys if k != "uncertain"]
    copy_rows(ExpertLabel, ["galaxy", "schema", "label_class", "expert", "note", "provenance", "created_at",
                            "superseded_at"],
              ((g, schema.pk, ten[g % 10], None, "", "bench", now - timedelta(days=30), None)
               for g in imported.tolist()))
    expert = User.objects.create_user(EXPERT, password=None)
    expert.groups.add(Group.objects.get_or_create(name=EXPERTS_GROUP)[0])
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ExpertLabel.objects.bulk_create(
        [ExpertLabel(galaxy_id=g, schema=schema, label_class_id=ten[g % 10], expert=expert, provenance="web",
                     created_at=midnight + (now - midnight) * (i + 1) / (n_today + 1))
         for i, g in enumerate(today.tolist())], batch_size=5000)
    seconds["expert labels"] = time.perf_counter() - mark
    say(f"{n_imported:,} imported + {n_today:,} of today's expert labels in {seconds['expert labels']:.1f} s")

    mark = time.perf_counter()
    model_version = model_version_get_or_create(backbone="resnet18", weights="random", image_size=64)
    feature_set = feature_set_get_or_create(dataset=dataset, model_version=model_version)
    FeatureSet.objects.filter(pk=feature_set.pk).update(count=n)  # the store is written later, for the 2nd variant
    feature_set.refresh_from_db()
    classifier = Classifier.objects.create(feature_set=feature_set, schema=schema, path="bench-no-head.pkl",
                                           classes=keys, n_labels=n_imported + n_today, n_expert=n_imported + n_today,
                                           calibrated=True)
    probabilities = rng.dirichlet(np.full(len(keys), 0.5), size=n)

    def predictions():
        for galaxy_id, row in zip(ids.tolist(), probabilities.round(5).tolist(), strict=True):
            top = max(range(len(keys)), key=row.__getitem__)
            yield classifier.pk, galaxy_id, classes[keys[top]], row[top], json.dumps(dict(zip(keys, row, strict=True)))

    copy_rows(Prediction, ["classifier", "galaxy", "label_class", "probability", "probabilities"], predictions())
    seconds["predictions (COPY)"] = time.perf_counter() - mark
    say(f"{n:,} predictions in {seconds['predictions (COPY)']:.1f} s")

    mark = time.perf_counter()
    # The refit that made the model, as classifier_fit_start records it: a POST counts the labels since this one.
    Job.objects.create(kind=Job.Kind.FIT_CLASSIFIER, dataset=dataset, status=Job.Status.SUCCEEDED, progress=100.0,
                       arguments={"feature_set": feature_set.pk, "schema": schema.pk, "rebuild_queues": True},
                       result={"classifier": classifier.pk}, created_at=now, started_at=now, finished_at=now)
    QueuePolicy.objects.update_or_create(dataset=dataset, defaults={"refit_every": REFIT_EVERY})
    QueueEntry.objects.bulk_create(
        [QueueEntry(expert=expert, dataset=dataset, schema=schema, galaxy_id=g, rank=rank, strategy="combined",
                    requested_strategy="combined", score=round(1 - rank / (n_queued + 1), 4),
                    components={"margin": 0.5}, model_version=model_version, classifier=classifier, created_at=now)
         for rank, g in enumerate(queued.tolist(), start=1)], batch_size=5000)
    seconds["queue and policy"] = time.perf_counter() - mark

    mark = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does soon after a bulk load; the planner needs the row counts
    seconds["ANALYZE"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    counts = {"galaxies": n, "vote summaries": n, "imported labels": n_imported, "labels today": n_today,
              "predictions": n, "queued": n_queued}
    return Filled(dataset=dataset, schema=schema, expert=expert, feature_set=feature_set, counts=counts,
                  seconds=seconds)


class _Progress:
    """What labeling.services.learning.neighbours.index_build reports to, without a Job row."""

    def progress(self, done: int, total: int, message: str = "") -> None:
        say(message)


def write_store_and_index(feature_set: FeatureSet) -> dict:
    """A real feature store of the dataset's galaxies (clustered synthetic 512-d vectors, as bench/neighbours.py
    uses) and its neighbour index, built by the application's own service. Returns timings and the index's kind."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synthetic import clustered_vectors

    from labeling.services.learning.neighbours import index_build
    from mlcore.features.store import FeatureStore

    mark = time.perf_counter()
    ids = np.fromiter(Galaxy.objects.filter(dataset=feature_set.dataset).order_by("pk").values_list("pk", flat=True),
                      np.int64)
    vectors, _ = clustered_vectors(len(ids), feature_set.dims, seed=0)
    store = FeatureStore.create(feature_set.store_dir, dim=feature_set.dims, dtype=feature_set.dtype)
    for start in range(0, len(ids), 50_000):
        store.append(ids[start:start + 50_000], vectors[start:start + 50_000])
    del vectors
    store_s = time.perf_counter() - mark
    say(f"feature store of {len(store):,} x {store.dim} {store.dtype} in {store_s:.1f} s")
    mark = time.perf_counter()
    feature_set = index_build(feature_set=feature_set, reporter=_Progress())
    return {"store_s": store_s, "index_s": time.perf_counter() - mark, "index_kind": feature_set.index_kind,
            "index_count": feature_set.index_count, "index_recall": feature_set.index_recall}
