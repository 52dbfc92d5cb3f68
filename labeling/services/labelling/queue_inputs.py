"""What the query strategies read, gathered from the database and the feature store as arrays aligned with one pool
of galaxies: feature vectors, the probability model's probabilities, cluster ids and volunteer vote fractions.
Each input is loaded only when the chosen strategy needs it (mlcore.active.query.strategy_needs)."""

from dataclasses import dataclass, field

import numpy as np

from labeling.models import (
    Answer,
    Classifier,
    Dataset,
    ExpertLabel,
    FeatureSet,
    Galaxy,
    LabelResolution,
    LabelSchema,
    Prediction,
    VoteSummary,
)


@dataclass
class QueueInputs:
    galaxy_ids: np.ndarray  # (N,) int64, the pool, in id order
    labelled: np.ndarray  # (N,) bool: a current label under the schema (person, import or resolution)
    feature_set: FeatureSet | None = None
    classifier: Classifier | None = None
    arrays: dict = field(default_factory=dict)  # keyword arguments of mlcore.active.query.choose

    def index_of(self) -> dict[int, int]:
        return {int(g): i for i, g in enumerate(self.galaxy_ids)}


def _pool(dataset: Dataset, feature_set: FeatureSet | None) -> np.ndarray:
    """Galaxies with an image; with a feature set, those with a vector (the others cannot be scored)."""
    ids = np.array(sorted(Galaxy.objects.filter(dataset=dataset).exclude(image="").values_list("id", flat=True)),
                   dtype=np.int64)
    if feature_set is not None and len(ids):
        from labeling.selectors.similarity import opened_store

        ids = ids[opened_store(feature_set).has(ids)]
    return ids


def _labelled(dataset: Dataset, schema: LabelSchema, ids: np.ndarray) -> np.ndarray:
    done = set(ExpertLabel.objects.filter(schema=schema, galaxy__dataset=dataset, superseded_at__isnull=True)
               .values_list("galaxy_id", flat=True))
    done |= set(LabelResolution.objects.filter(schema=schema, galaxy__dataset=dataset)
                .values_list("galaxy_id", flat=True))
    return np.fromiter((int(g) in done for g in ids), dtype=bool, count=len(ids))


def _probabilities(classifier: Classifier, ids: np.ndarray) -> np.ndarray | None:
    """(N, C) in the classifier's class order; galaxies it did not predict get a uniform row."""
    classes = list(classifier.classes)
    probs = np.full((len(ids), len(classes)), 1.0 / len(classes), dtype=np.float32)
    position = {int(g): i for i, g in enumerate(ids)}
    for galaxy_id, row in Prediction.objects.filter(classifier=classifier).values_list("galaxy_id", "probabilities"):
        i = position.get(galaxy_id)
        if i is not None:
            probs[i] = [row.get(c, 0.0) for c in classes]
    return probs


def vote_questions_of(dataset: Dataset, ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question with votes: (fractions (N, answers), volunteers who answered it (N,)), first questions of
    each tree first, as mlcore.active.query.vote_disagreement takes them."""
    position = {int(g): i for i, g in enumerate(ids)}
    rows = (VoteSummary.objects.filter(galaxy__dataset=dataset)
            .order_by("question__tree_id", "question__order", "source")
            .values_list("galaxy_id", "question_id", "fractions", "total"))
    answers: dict[int, list[str]] = {}
    for question_id, key in Answer.objects.filter(
            question__vote_summaries__galaxy__dataset=dataset).distinct().values_list("question_id", "key"):
        answers.setdefault(question_id, []).append(key)
    blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for galaxy_id, question_id, fractions, total in rows:
        i = position.get(galaxy_id)
        keys = answers.get(question_id)
        if i is None or not keys:
            continue
        if question_id not in blocks:
            blocks[question_id] = (np.full((len(ids), len(keys)), np.nan), np.zeros(len(ids)))
        matrix, reached = blocks[question_id]
        matrix[i] = [float((fractions or {}).get(k) or 0.0) for k in keys]
        # Published fractions without counts: count the galaxy as voted on, weakly (one volunteer).
        reached[i] = total if total is not None else 1
    return list(blocks.values())


def queue_inputs(*, dataset: Dataset, schema: LabelSchema, needs: set[str], feature_set: FeatureSet | None,
                 classifier: Classifier | None, seed: int = 0) -> QueueInputs:
    ids = _pool(dataset, feature_set)
    inputs = QueueInputs(galaxy_ids=ids, labelled=_labelled(dataset, schema, ids), feature_set=feature_set,
                         classifier=classifier)
    if not len(ids):
        return inputs
    features = None
    if feature_set is not None and needs & {"features", "member_probs", "clusters"}:
        from labeling.selectors.similarity import opened_store

        features = opened_store(feature_set).get(ids).astype(np.float32)
        inputs.arrays["features"] = features
    if classifier is not None and "probs" in needs:
        inputs.arrays["probs"] = _probabilities(classifier, ids)
    # Imported predictions have no head file: BALD's ensemble is then missing and choose() falls back.
    if classifier is not None and classifier.path and "member_probs" in needs and features is not None:
        from mlcore.active.head import ProbabilityHead

        inputs.arrays["member_probs"] = ProbabilityHead.load(classifier.path).member_proba(features)
    if "clusters" in needs and features is not None and len(ids) >= 2:
        from mlcore.active.batch import cluster_margin_clusters

        # The rule the simulations measured (2 x classes), not an admin's browsing clustering of another k.
        inputs.arrays["clusters"] = cluster_margin_clusters(features, schema.classes.count(), seed=seed)
    if "vote_questions" in needs:
        questions = vote_questions_of(dataset, ids)
        if questions:
            inputs.arrays["vote_questions"] = questions
    return inputs
