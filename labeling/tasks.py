"""Background tasks run by the django-q2 cluster (`manage.py qcluster`).

Each task takes plain ids (a task's arguments are pickled into the broker, and a row may change before a worker gets
to it), loads the rows, calls one service and returns a small JSON-friendly summary that django-q2 stores as the
task's result. The logic lives in the services, so a task is only an interface.

The machine-learning tasks take the id of a Job (labeling/services/jobs/lifecycle.py, started through
labeling/services/learning/jobs.py) whose arguments say what to do; job_run records progress and how it ended on the
Job. Commands call the same functions in their own process, with ``echo`` drawing a progress bar.

Enqueue through the ``enqueue_*`` helpers: they wait for the current transaction to commit, so a worker never looks
for rows that are not visible yet, and a rolled-back request enqueues nothing. Tasks are grouped by name (not given
a fixed task name: django-q2 looks results up by name, which must then be unique).
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_q.tasks import async_task

from labeling.models import ConsensusRule, Dataset, DecisionTree, FeatureSet, LabelSchema, ModelVersion
from labeling.services.imports.jobs import import_job_run
from labeling.services.imports.outside_jobs import outside_job_run
from labeling.services.jobs.chunks import chunk_run, chunks_fan_out
from labeling.services.jobs.lifecycle import JobConflict, job_run
from labeling.services.labelling.queue import queue_build, queue_build_start
from labeling.services.learning.activation import chain_continue
from labeling.services.learning.classifier import classifier_fit
from labeling.services.learning.clustering import clustering_run, embedding_run
from labeling.services.learning.features import (
    extraction_todo,
    feature_set_get_or_create,
    features_count_refresh,
    features_extract,
)
from labeling.services.learning.neighbours import index_build
from labeling.services.learning.pretrain import pretrain_run
from labeling.services.learning.retrain import retrain_run
from labeling.services.votes.aggregation import votes_aggregate
from labeling.services.votes.classify import subjects_usefulness_refresh
from labeling.services.votes.consensus import consensus_compute


def aggregate_votes(tree_id: int, galaxy_ids: list[int] | None = None) -> dict:
    """Recount the volunteer classifications of one decision tree into vote summaries.

    Args:
        tree_id: the DecisionTree whose classifications are counted.
        galaxy_ids: only these galaxies; every galaxy with classifications of the tree when None.

    Returns:
        ``{"tree": name, "galaxies": number of galaxies whose summaries were written}``.

    Raises:
        DecisionTree.DoesNotExist: when the tree was deleted after the task was enqueued.
    """
    tree = DecisionTree.objects.get(id=tree_id)
    galaxies = votes_aggregate(tree=tree, galaxy_ids=galaxy_ids)
    return {"tree": tree.name, "galaxies": galaxies}


def compute_consensus(rule_id: int, dataset_id: int | None = None) -> dict:
    """Recompute the consensus labels of one consensus rule.

    Args:
        rule_id: the ConsensusRule to apply.
        dataset_id: only galaxies of this dataset; every galaxy with votes on the rule's tree when None.

    Returns:
        ``{"schema": name, "rule": name, "counts": {class key or "too_few_votes": galaxies}}``.

    Raises:
        ConsensusRule.DoesNotExist, Dataset.DoesNotExist: when a row was deleted after the task was enqueued.
    """
    rule = ConsensusRule.objects.select_related("schema", "tree").get(id=rule_id)
    dataset = Dataset.objects.get(id=dataset_id) if dataset_id is not None else None
    counts = consensus_compute(rule=rule, dataset=dataset)
    return {"schema": rule.schema.name, "rule": rule.name, "counts": counts}


def enqueue_aggregate_votes(*, tree_id: int, galaxy_ids: list[int] | None = None) -> None:
    """Queue :func:`aggregate_votes` once the current transaction commits (at once outside a transaction)."""
    ids = list(galaxy_ids) if galaxy_ids is not None else None
    transaction.on_commit(
        lambda: async_task("labeling.tasks.aggregate_votes", tree_id, ids, group="aggregate-votes")
    )


def enqueue_compute_consensus(*, rule_id: int, dataset_id: int | None = None) -> None:
    """Queue :func:`compute_consensus` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(
        lambda: async_task("labeling.tasks.compute_consensus", rule_id, dataset_id, group="compute-consensus")
    )


def extract_features(job_id: int, echo=None, split: bool = True) -> dict:
    """Extract features for an extract_features Job: {"feature_set", "added", "count", "failed"}.

    With ``split`` (as the workers run it), more galaxies to do than the job's ``chunk_size`` (GALAXY_EXTRACT_CHUNK
    by default) are handed to chunks that every worker of the cluster takes in parallel; the last chunk to finish
    completes the job. A command passes split=False and extracts everything in its own process.
    """
    def work(job, reporter):
        arguments = job.arguments
        if split:
            feature_set = feature_set_get_or_create(
                dataset=job.dataset, model_version=ModelVersion.objects.get(pk=arguments["model_version"]),
                rotation_invariant=arguments.get("rotation_invariant", False))
            keys = [pk for pk, _ in extraction_todo(feature_set=feature_set)]
            chunk_size = arguments.get("chunk_size") or settings.GALAXY_EXTRACT_CHUNK
            if len(keys) > chunk_size:
                chunks_fan_out(job=job, keys=keys, chunk_size=chunk_size)
        feature_set, added = features_extract(
            dataset=job.dataset, model_version=ModelVersion.objects.get(pk=arguments["model_version"]),
            rotation_invariant=arguments.get("rotation_invariant", False), reporter=reporter,
            batch_size=arguments.get("batch_size", 64), num_workers=arguments.get("num_workers"),
            threads=arguments.get("threads") or settings.TORCH_THREADS)
        chain_continue(job=job, feature_set=feature_set)
        return {"feature_set": feature_set.pk, "added": added, "count": feature_set.count,
                "failed": len(feature_set.failed)}

    return job_run(job_id, work, echo=echo)


def extract_features_chunk(chunk_id: int) -> dict:
    """Extract one chunk of a split extract_features Job (the galaxy ids it covers): {"feature_set", "added"}."""
    def work(chunk, reporter):
        job, arguments = chunk.job, chunk.job.arguments
        feature_set, added = features_extract(
            dataset=job.dataset, model_version=ModelVersion.objects.get(pk=arguments["model_version"]),
            rotation_invariant=arguments.get("rotation_invariant", False), reporter=reporter,
            batch_size=arguments.get("batch_size", 64), num_workers=arguments.get("num_workers"),
            threads=arguments.get("threads") or settings.TORCH_THREADS, key_range=(chunk.first_key, chunk.last_key))
        return {"feature_set": feature_set.pk, "added": added}

    def finish(job, chunks):
        feature_set = features_count_refresh(feature_set=FeatureSet.objects.get(pk=chunks[0].result["feature_set"]))
        chain_continue(job=job, feature_set=feature_set)
        return {"feature_set": feature_set.pk, "added": sum(chunk.result["added"] for chunk in chunks),
                "count": feature_set.count, "failed": len(feature_set.failed), "chunks": len(chunks),
                "workers": sorted({f"{chunk.worker_host}:{chunk.worker_pid}" for chunk in chunks})}

    return chunk_run(chunk_id, work, finish)


def build_index(job_id: int, echo=None) -> dict:
    """Build the neighbour index of a build_index Job's feature set: {"feature_set", "kind", "count", "recall"}."""
    def work(job, reporter):
        feature_set = index_build(feature_set=FeatureSet.objects.get(pk=job.arguments["feature_set"]),
                                  kind=job.arguments.get("kind", "auto"), reporter=reporter)
        chain_continue(job=job, feature_set=feature_set)
        return {"feature_set": feature_set.pk, "kind": feature_set.index_kind, "count": feature_set.index_count,
                "recall": feature_set.index_recall}

    return job_run(job_id, work, echo=echo)


def cluster(job_id: int, echo=None) -> dict:
    """Cluster a cluster Job's feature set: {"clustering", "sizes", "metrics"} (ARI per label set)."""
    def work(job, reporter):
        arguments = job.arguments
        clustering = clustering_run(
            feature_set=FeatureSet.objects.get(pk=arguments["feature_set"]), method=arguments["method"],
            k=arguments["k"], pca_components=arguments.get("pca_components", 50), seed=arguments.get("seed", 0),
            reporter=reporter, user=job.created_by)
        chain_continue(job=job, feature_set=clustering.feature_set)
        return {"clustering": clustering.pk, "sizes": clustering.sizes,
                "ari": {key: round(m["ari"], 4) for key, m in clustering.metrics.items()}}

    return job_run(job_id, work, echo=echo)


def embed_2d(job_id: int, echo=None) -> dict:
    """Make the 2-D map of an embed_2d Job's feature set: {"embedding", "points"}."""
    def work(job, reporter):
        arguments = job.arguments
        schema = LabelSchema.objects.get(pk=arguments["schema"]) if arguments.get("schema") else None
        embedding = embedding_run(
            feature_set=FeatureSet.objects.get(pk=arguments["feature_set"]), method=arguments["method"],
            schema=schema, seed=arguments.get("seed", 0), reporter=reporter, user=job.created_by)
        return {"embedding": embedding.pk, "points": embedding.points.count()}

    return job_run(job_id, work, echo=echo)


def fit_classifier(job_id: int, echo=None) -> dict:
    """Fit the probability model of a fit_classifier Job, update which galaxies volunteers are offered first, then
    queue a rebuild of every expert's queue with its probabilities: {"classifier", "labels", "calibrated",
    "queue_job", "subjects"}."""
    def work(job, reporter):
        arguments = job.arguments
        schema = LabelSchema.objects.get(pk=arguments["schema"])
        classifier = classifier_fit(feature_set=FeatureSet.objects.get(pk=arguments["feature_set"]), schema=schema,
                                    reporter=reporter)
        subjects = subjects_usefulness_refresh(dataset=job.dataset)
        queue_job = None
        if arguments.get("rebuild_queues", True):
            try:
                queue_job = queue_build_start(dataset=job.dataset, schema=schema, user=job.created_by).pk
            except JobConflict:
                pass
        return {"classifier": classifier.pk, "labels": classifier.n_labels, "calibrated": classifier.calibrated,
                "queue_job": queue_job, "subjects": subjects}

    return job_run(job_id, work, echo=echo)


def build_queue(job_id: int, echo=None) -> dict:
    """Refill the experts' queues of a build_queue Job: {"experts", "entries", "double_labelled", "strategy"}."""
    def work(job, reporter):
        arguments = job.arguments
        experts = None
        if arguments.get("experts") is not None:
            experts = list(get_user_model().objects.filter(pk__in=arguments["experts"]).order_by("pk"))
        return queue_build(dataset=job.dataset, schema=LabelSchema.objects.get(pk=arguments["schema"]),
                           experts=experts, strategy=arguments.get("strategy"), reporter=reporter)

    return job_run(job_id, work, echo=echo)


def retrain(job_id: int, echo=None) -> dict:
    """One retrain cycle of a retrain Job (labeling/services/learning/retrain.py):
    {"model_version", "accuracy", ...}."""
    return job_run(job_id, lambda job, reporter: retrain_run(job=job, reporter=reporter), echo=echo)


def pretrain(job_id: int, echo=None) -> dict:
    """Self-supervised pretraining of a pretrain Job (labeling/services/learning/pretrain.py):
    {"model_version", "loss"}."""
    return job_run(job_id, lambda job, reporter: pretrain_run(job=job, reporter=reporter), echo=echo)


def import_galaxies(job_id: int, echo=None) -> dict:
    """An import_galaxies Job started on the Jobs page (labeling/services/imports/jobs.py): the import's counts."""
    return job_run(job_id, import_job_run, echo=echo)


def import_votes(job_id: int, echo=None) -> dict:
    """An import_votes Job started on the Jobs page (labeling/services/imports/jobs.py): the import's counts."""
    return job_run(job_id, import_job_run, echo=echo)


def import_features(job_id: int, echo=None) -> dict:
    """An import_features Job started over the API (labeling/services/imports/outside_jobs.py): the import's report."""
    return job_run(job_id, outside_job_run, echo=echo)


def import_predictions(job_id: int, echo=None) -> dict:
    """An import_predictions Job started over the API (labeling/services/imports/outside_jobs.py): the import's
    report."""
    return job_run(job_id, outside_job_run, echo=echo)
