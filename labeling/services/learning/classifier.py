"""The probability model before any retraining: a calibrated, class-balanced logistic regression on the current
feature vectors (mlcore.active.head), trained on expert labels plus confident volunteer consensus, whose probabilities
feed the uncertainty strategies and are shown to experts. On the features of a retrain cycle trained for the same
schema, the cycle's own class head joins it (``cycle_class_head``, ``mlcore.training.class_head.blend``), and so
does the same regression on the features of the version the cycle started from (``parent_regression``): what the
Training page measured for the cycle."""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from labeling.models import (
    Classifier,
    ConsensusLabel,
    ConsensusRule,
    Dataset,
    ExpertLabel,
    FeatureSet,
    Job,
    LabelClass,
    LabelSchema,
    Prediction,
    QueuePolicy,
)
from labeling.selectors.labels import EXPERT, galaxy_labels
from labeling.selectors.similarity import served_feature_set
from labeling.services.jobs.lifecycle import JobConflict, JobReporter, job_create

PREDICT_BATCH = 50_000
KEEP_HEAD_FILES = 3


def current_feature_set(*, dataset: Dataset) -> FeatureSet | None:
    """The vectors the queue and the probability model use: the dataset's active model version's, else the most
    recently updated non-empty feature set of the dataset. Another dataset's active version never counts here."""
    sets = FeatureSet.objects.filter(dataset=dataset, count__gt=0).select_related("model_version", "dataset")
    return served_feature_set(sets) or sets.order_by("-updated_at", "-pk").first()


def queue_policy(*, dataset: Dataset) -> QueuePolicy:
    return QueuePolicy.objects.get_or_create(dataset=dataset)[0]


def training_labels(*, dataset: Dataset, schema: LabelSchema, min_agreement: float) -> tuple[dict[int, str], int]:
    """Class key per galaxy the model may learn from: expert labels (imported ones included, resolutions first),
    then volunteer consensus at least ``min_agreement`` strong where no expert spoke. Returns the labels and how
    many came from experts."""
    labels = galaxy_labels(dataset=dataset, schema=schema, source=EXPERT)
    n_expert = len(labels)
    uncertain = set(ConsensusRule.objects.filter(schema=schema).values_list("uncertain_class_key", flat=True))
    consensus = (ConsensusLabel.objects.filter(schema=schema, galaxy__dataset=dataset, agreement__gte=min_agreement)
                 .exclude(label_class__key__in=uncertain).values_list("galaxy_id", "label_class__key"))
    for galaxy_id, key in consensus:
        labels.setdefault(galaxy_id, key)
    return labels, n_expert


def _labelled_in(store, labels: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """(galaxy ids, class keys) of the labelled galaxies that have a vector in ``store``, by id."""
    keys = np.array(sorted(labels), dtype=np.int64)
    keys = keys[store.has(keys)] if len(keys) else keys
    return keys, np.array([labels[int(k)] for k in keys], dtype=object).astype(str)


def _cycle_for(feature_set: FeatureSet, schema: LabelSchema):
    """The feature set's model version when it is a retrain cycle trained for ``schema``, else None."""
    version = feature_set.model_version
    return version if version is not None and version.method == "finetune" and version.schema_id == schema.pk \
        else None


def _head_path(feature_set: FeatureSet, schema: LabelSchema) -> Path:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    return feature_set.store_dir.parent / f"{feature_set.store_path}.head-{schema.name}-{stamp}.pkl"


def classifier_fit(*, feature_set: FeatureSet, schema: LabelSchema, reporter: JobReporter | None = None,
                   seed: int = 0) -> Classifier:
    """Fit the probability model on the feature set's labelled galaxies and store a prediction for every galaxy
    with a vector. The older models' predictions of this feature set and schema are replaced in the same
    transaction, so readers see the old predictions or the new ones, never a mix.

    Raises:
        ValueError: when the labelled galaxies with vectors hold fewer than two classes.
    """
    from mlcore.active.head import ProbabilityHead
    from mlcore.features.store import FeatureStore
    from mlcore.training.class_head import blend

    policy = queue_policy(dataset=feature_set.dataset)
    labels, n_expert_all = training_labels(dataset=feature_set.dataset, schema=schema,
                                           min_agreement=policy.consensus_min_agreement)
    store = FeatureStore.open(feature_set.store_dir)
    keys, y = _labelled_in(store, labels)
    counts = Counter(y.tolist())
    if len(counts) < 2:
        raise ValueError(f"the probability model needs labelled galaxies of at least two classes of schema "
                         f"{schema.name!r} with feature vectors; found {dict(counts) or 'none'}")
    if reporter:
        reporter.progress(0, 3, f"fitting on {len(keys)} labelled galaxies")
    head = ProbabilityHead(seed=seed).fit(store.get(keys).astype(np.float32), y)
    classes = [str(c) for c in head.classes_]
    cycle_head, cycle_note = cycle_class_head(feature_set=feature_set, schema=schema)
    parent, parent_note = parent_regression(feature_set=feature_set, schema=schema, labels=labels, seed=seed)
    path = _head_path(feature_set, schema)
    head.save(path)
    expert_ids = set(ExpertLabel.objects.filter(schema=schema, galaxy__dataset=feature_set.dataset,
                                                superseded_at__isnull=True).values_list("galaxy_id", flat=True))
    n_expert = sum(1 for k in keys if int(k) in expert_ids)
    if reporter:
        reporter.progress(1, 3, f"predicting {len(store)} galaxies")
    class_ids = dict(LabelClass.objects.filter(schema=schema).values_list("key", "id"))
    rows = []
    for batch_keys, vectors in store.iter_batches(PREDICT_BATCH):
        probs = head.predict_proba(vectors.astype(np.float32))
        if cycle_head is not None:
            probs = blend(probs, classes, cycle_head.predict_proba(vectors), cycle_head.classes)
        if parent is not None:
            probs = parent.blend_into(probs, classes, batch_keys)
        best = probs.argmax(axis=1)
        for key, row, top in zip(batch_keys.tolist(), probs.tolist(), best.tolist(), strict=True):
            rows.append((key, classes[top], row[top], dict(zip(classes, (round(p, 5) for p in row), strict=True))))
        if reporter:
            reporter.check_cancelled()
    if reporter:
        reporter.progress(2, 3, "saving predictions")
    try:
        with transaction.atomic():
            classifier = Classifier.objects.create(
                feature_set=feature_set, schema=schema, path=str(path), classes=classes, n_labels=len(keys),
                n_expert=n_expert, n_consensus=len(keys) - n_expert, calibrated=bool(head.calibrated_),
                metrics={"class_counts": dict(sorted(counts.items())), "expert_labels_seen": n_expert_all,
                         **cycle_note, **parent_note},
            )
            Prediction.objects.filter(classifier__feature_set=feature_set, classifier__schema=schema).exclude(
                classifier=classifier).delete()
            existing = set(feature_set.dataset.galaxies.values_list("id", flat=True))
            Prediction.objects.bulk_create(
                [Prediction(classifier=classifier, galaxy_id=key, label_class_id=class_ids[top], probability=p,
                            probabilities=all_p) for key, top, p, all_p in rows if key in existing],
                batch_size=5000,
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _prune_head_files(feature_set, schema)
    return classifier


def cycle_class_head(*, feature_set: FeatureSet, schema: LabelSchema):
    """(class head, note for the classifier's metrics) of the feature set's model version when it is a retrain cycle
    trained for ``schema``; (None, {}) otherwise, and (None, {"cycle_head_error": why}) when its heads file cannot be
    read (the regression alone then serves)."""
    from mlcore.training.class_head import HEAD_WEIGHT, read_class_head

    version = _cycle_for(feature_set, schema)
    if version is None or not version.checkpoint:
        return None, {}
    try:
        head = read_class_head(version.checkpoint)
    except (ValueError, OSError) as exc:
        return None, {"cycle_head_error": str(exc)}
    if head is None:
        return None, {}
    return head, {"cycle_head": version.name, "cycle_head_weight": HEAD_WEIGHT}


@dataclass
class ParentRegression:
    """The probability head fitted on a cycle's parent's feature vectors, and the store it reads them from."""

    head: object  # mlcore.active.head.ProbabilityHead
    store: object  # mlcore.features.store.FeatureStore

    def blend_into(self, probs: np.ndarray, classes: list[str], keys: np.ndarray) -> np.ndarray:
        """``probs`` (rows ``keys``) averaged with this regression's answers where the parent has a vector; a galaxy
        added after the parent's extraction keeps the cycle's answer."""
        from mlcore.training.class_head import PARENT_ENSEMBLE_WEIGHT, blend

        present = self.store.has(keys)
        if not present.any():
            return probs
        probs = probs.copy()
        parent_probs = self.head.predict_proba(self.store.get(keys[present]))
        probs[present] = blend(probs[present], classes, parent_probs, [str(c) for c in self.head.classes_],
                               weight=PARENT_ENSEMBLE_WEIGHT)
        return probs


def parent_regression(*, feature_set: FeatureSet, schema: LabelSchema, labels: dict[int, str],
                      seed: int = 0) -> tuple[ParentRegression | None, dict]:
    """(the regression on the parent's features, note for the classifier's metrics) when the feature set's model
    version is a retrain cycle for ``schema`` whose parent has feature vectors of the same dataset; (None, {}) for
    any other version, and (None, {"parent_ensemble_error": why}) when the parent's vectors are missing or too few.
    The cycle's held-out figures were measured with this ensemble (labeling.services.learning.retrain_eval)."""
    from mlcore.active.head import ProbabilityHead
    from mlcore.features.store import FeatureStore
    from mlcore.training.class_head import PARENT_ENSEMBLE_WEIGHT

    version = _cycle_for(feature_set, schema)
    if version is None or version.parent is None:
        return None, {}
    parent = version.parent
    parent_set = (FeatureSet.objects.filter(model_version=parent, dataset=feature_set.dataset, count__gt=0)
                  .order_by("rotation_invariant").first())
    if parent_set is None:
        return None, {"parent_ensemble_error": f"{parent.name} has no feature vectors of {feature_set.dataset.name}: "
                                               "extract them for the cycle's measured ensemble"}
    store = FeatureStore.open(parent_set.store_dir)
    keys, y = _labelled_in(store, labels)
    if len(set(y.tolist())) < 2:
        return None, {"parent_ensemble_error": f"the labelled galaxies with vectors of {parent.name} hold fewer than "
                                               "two classes"}
    try:
        head = ProbabilityHead(seed=seed).fit(store.get(keys), y)
    except ValueError as exc:  # the cycle's own model still serves: the ensemble is a refinement
        return None, {"parent_ensemble_error": f"the regression on {parent.name}'s features could not be fitted: {exc}"}
    return ParentRegression(head=head, store=store), {"parent_ensemble": parent.name,
                                                      "parent_ensemble_weight": PARENT_ENSEMBLE_WEIGHT}


def _prune_head_files(feature_set: FeatureSet, schema: LabelSchema, keep: int = KEEP_HEAD_FILES) -> None:
    """Delete the files of all but the latest ``keep`` models of a feature set and schema: a refit every 20 labels
    would otherwise leave one file per refit. Their rows stay, with their counts and metrics."""
    older = Classifier.objects.filter(feature_set=feature_set, schema=schema).order_by("-created_at", "-pk")[keep:]
    for path in older.values_list("path", flat=True):
        Path(path).unlink(missing_ok=True)


def latest_classifier(*, feature_set: FeatureSet | None, schema: LabelSchema) -> Classifier | None:
    if feature_set is None:
        return None
    return Classifier.objects.filter(feature_set=feature_set, schema=schema).order_by("-created_at", "-id").first()


def classifier_fit_start(*, dataset: Dataset, schema: LabelSchema, user=None, enqueue: bool = True,
                         rebuild_queues: bool = True) -> Job:
    """Queue a refit of the probability model on the dataset's current features (then, by default, a rebuild of
    every expert's queue with the new probabilities).

    Raises:
        ValueError: when the dataset has no feature vectors yet.
        JobConflict: when the same refit is already queued or running.
    """
    feature_set = current_feature_set(dataset=dataset)
    if feature_set is None:
        raise ValueError(f"dataset {dataset.name!r} has no feature vectors yet: extract features first")
    return job_create(kind=Job.Kind.FIT_CLASSIFIER, dataset=dataset, user=user, enqueue=enqueue,
                      arguments={"feature_set": feature_set.pk, "schema": schema.pk,
                                 "rebuild_queues": rebuild_queues})


def labels_arrived(*, dataset: Dataset, schema: LabelSchema, count: int = 1) -> Job | None:
    """Count ``count`` new labels towards the dataset's next refit and start it when ``refit_every`` have arrived
    since the last one. Two queries per call, however many labels the dataset holds: a counter on the policy,
    reset by the one request that crosses the threshold (so two requests never both start it)."""
    policies = QueuePolicy.objects.filter(dataset=dataset)
    if not policies.update(labels_since_refit=F("labels_since_refit") + count):
        queue_policy(dataset=dataset)
        policies.update(labels_since_refit=F("labels_since_refit") + count)
    if not policies.filter(labels_since_refit__gte=F("refit_every")).update(labels_since_refit=0):
        return None
    try:
        return classifier_fit_start(dataset=dataset, schema=schema)
    except (JobConflict, ValueError):  # one already running, or no features yet
        return None
