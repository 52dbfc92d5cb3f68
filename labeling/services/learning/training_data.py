"""What a retrain cycle learns from, read from the database as arrays: expert labels (imports and resolutions
included), volunteer vote counts of the dataset's decision tree, and pseudo-labels the current probability model
is confident about; split by a fixed held-out mask that training never sees."""

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Count

from labeling.models import (
    Answer,
    Classifier,
    Dataset,
    DecisionTree,
    Galaxy,
    LabelClass,
    LabelSchema,
    Prediction,
    Question,
    VoteSummary,
)
from labeling.selectors.labels import EXPERT, galaxy_labels

HELD_OUT_FRACTION = 0.2


class TrainingDataError(ValueError):
    """The dataset cannot train a model yet; the message says what is missing."""


@dataclass
class CycleData:
    classes: list[str]
    question_slices: list[tuple[int, int]]
    tree: str | None
    # The galaxies training sees, and what it knows of each.
    train_ids: np.ndarray
    train_paths: list[str]
    hard: np.ndarray  # class index, -1 for none
    hard_weight: np.ndarray  # 1 for an expert label, pseudo_weight for a pseudo-label, 0 for none
    votes: np.ndarray  # (n, answers) vote counts, zeros where none
    # The labelled galaxies held out for evaluation.
    test_ids: np.ndarray
    test_paths: list[str]
    test_labels: list[str]
    snapshot: dict = field(default_factory=dict)
    trained_as: dict = field(default_factory=dict)

    @property
    def expert_rows(self) -> np.ndarray:
        """bool (n,): the training rows with an expert label (not a pseudo-label, not votes alone)."""
        return (self.hard >= 0) & (self.hard_weight >= 1.0)


def image_paths(dataset: Dataset) -> dict[int, str]:
    """Galaxy id -> its image file, for the galaxies of the dataset that have one, in id order."""
    storage = Galaxy._meta.get_field("image").storage
    return {pk: storage.path(name) for pk, name in
            Galaxy.objects.filter(dataset=dataset).exclude(image="").order_by("pk").values_list("pk", "image")}


def _busiest_tree(dataset: Dataset) -> DecisionTree | None:
    tree_id = (VoteSummary.objects.filter(galaxy__dataset=dataset).values("question__tree")
               .order_by().annotate(n=Count("pk"))
               .order_by("-n").values_list("question__tree", flat=True).first())
    return DecisionTree.objects.filter(pk=tree_id).first() if tree_id else None


def vote_counts(dataset: Dataset, ids: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]], str | None]:
    """(counts (n, answers), question slices, tree name) of the decision tree most of the dataset's votes are on;
    fractions published without counts become counts through the question's total."""
    tree = _busiest_tree(dataset)
    if tree is None:
        return np.zeros((len(ids), 0), np.float32), [], None
    slices, column = [], {}
    for question in Question.objects.filter(tree=tree).order_by("order"):
        keys = list(Answer.objects.filter(question=question).order_by("order").values_list("key", flat=True))
        start = len(column)
        column.update({(question.pk, key): start + i for i, key in enumerate(keys)})
        slices.append((start, start + len(keys)))
    counts = np.zeros((len(ids), len(column)), np.float32)
    row = {int(g): i for i, g in enumerate(ids)}
    for galaxy_id, question_id, raw, fractions, total in VoteSummary.objects.filter(
            galaxy_id__in=list(row), question__tree=tree).values_list(
            "galaxy_id", "question_id", "counts", "fractions", "total"):
        values = raw if raw is not None else {k: (v or 0) * (total or 0) for k, v in (fractions or {}).items()}
        for key, count in values.items():
            if (question_id, key) in column:
                counts[row[galaxy_id], column[(question_id, key)]] = float(count or 0)
    return counts, slices, tree.name


def _pseudo_labels(dataset: Dataset, schema: LabelSchema, threshold: float, eligible: set[int]) -> dict[int, str]:
    """Confident predictions of the dataset's latest probability model for galaxies nobody labelled."""
    latest = Classifier.objects.filter(feature_set__dataset=dataset, schema=schema).order_by("-created_at").first()
    if latest is None:
        return {}
    return {galaxy_id: key for galaxy_id, key in Prediction.objects.filter(
        classifier=latest, probability__gte=threshold).values_list("galaxy_id", "label_class__key")
        if galaxy_id in eligible}


@contextmanager
def _one_point_in_time():
    """On PostgreSQL outside any transaction (a worker), a read-only REPEATABLE READ transaction: every query of
    the cycle's data then sees the database as it was at the first one. Under READ COMMITTED each query sees what
    was committed when it started, so labels given while the data are read would be in some queries (labels) and
    not in others (images, resolutions, pseudo-labels), and the snapshot recorded would match no moment. Inside a
    caller's transaction, that transaction decides. SQLite is left in autocommit: a long read transaction there
    would hold off every writer (labels) until it ends."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def cycle_data(*, dataset: Dataset, schema: LabelSchema, pseudo_threshold: float, pseudo_weight: float,
               held_out_fraction: float = HELD_OUT_FRACTION) -> CycleData:
    """The arrays of one retrain cycle, read at one point in time (see _one_point_in_time); labels given while
    they are read are left to the next cycle.

    Raises:
        TrainingDataError: fewer than two classes among the training labels, or no labelled galaxy held out.
    """
    with _one_point_in_time():
        return _read_cycle_data(dataset=dataset, schema=schema, pseudo_threshold=pseudo_threshold,
                                pseudo_weight=pseudo_weight, held_out_fraction=held_out_fraction)


def _read_cycle_data(*, dataset: Dataset, schema: LabelSchema, pseudo_threshold: float, pseudo_weight: float,
                     held_out_fraction: float) -> CycleData:
    from mlcore.training.evaluate import held_out_mask

    paths = image_paths(dataset)
    ids = np.array(sorted(paths), dtype=np.int64)
    held = held_out_mask(ids, fraction=held_out_fraction) if len(ids) else np.zeros(0, bool)
    labels = {g: key for g, key in galaxy_labels(dataset=dataset, schema=schema, source=EXPERT).items()
              if g in paths}
    order = list(LabelClass.objects.filter(schema=schema).order_by("order", "key").values_list("key", flat=True))
    train_labels = {int(g): labels[int(g)] for g in ids[~held] if int(g) in labels}
    classes = [key for key in order if key in set(train_labels.values())]
    if len(classes) < 2:
        raise TrainingDataError(
            f"dataset {dataset.name!r} has training labels of {len(classes)} class(es) of schema {schema.name!r} "
            f"({', '.join(classes) or 'none'}); a model needs at least two. Label more galaxies.")
    test_ids = np.array([g for g in ids[held] if int(g) in labels and labels[int(g)] in classes], dtype=np.int64)
    if not len(test_ids):
        raise TrainingDataError(f"none of the labelled galaxies of {dataset.name!r} falls in the held-out split "
                                f"({held_out_fraction:.0%} of galaxies, fixed by id): label more galaxies")
    train_pool = ids[~held]
    counts, slices, tree = vote_counts(dataset, train_pool)
    has_votes = counts.sum(axis=1) > 0 if counts.shape[1] else np.zeros(len(train_pool), bool)
    pseudo = _pseudo_labels(dataset, schema, pseudo_threshold,
                            eligible={int(g) for g in train_pool if int(g) not in labels})
    index = {key: i for i, key in enumerate(classes)}
    keep = np.array([int(g) in train_labels or int(g) in pseudo or voted for g, voted in
                     zip(train_pool, has_votes, strict=True)], dtype=bool)
    train_ids = train_pool[keep]
    hard = np.array([index.get(train_labels.get(int(g), pseudo.get(int(g))), -1) for g in train_ids], np.int64)
    weight = np.array([1.0 if int(g) in train_labels else (pseudo_weight if int(g) in pseudo else 0.0)
                       for g in train_ids], np.float32)
    weight[hard < 0] = 0.0
    snapshot = {
        "classes": {key: sum(1 for v in train_labels.values() if v == key) for key in classes},
        "expert_labels": len(train_labels), "pseudo_labels": int(sum(int(g) in pseudo for g in train_ids)),
        "with_votes": int(has_votes[keep].sum()), "tree": tree, "held_out": len(test_ids),
        "held_out_classes": {key: sum(1 for g in test_ids if labels[int(g)] == key) for key in classes},
        "held_out_fraction": held_out_fraction, "pseudo_threshold": pseudo_threshold,
    }
    # Which labels: the galaxies and the class each was trained as (labels may change later); kept apart from the
    # snapshot because pages list versions by the hundred and these run to the size of the dataset.
    trained_as = {"labels": {str(g): train_labels[g] for g in sorted(train_labels)},
                  "pseudo": {str(g): pseudo[int(g)] for g in train_ids if int(g) in pseudo}}
    return CycleData(classes=classes, question_slices=slices, tree=tree, train_ids=train_ids,
                     train_paths=[paths[int(g)] for g in train_ids], hard=hard, hard_weight=weight,
                     votes=counts[keep], test_ids=test_ids, test_paths=[paths[int(g)] for g in test_ids],
                     test_labels=[labels[int(g)] for g in test_ids], snapshot=snapshot, trained_as=trained_as)
