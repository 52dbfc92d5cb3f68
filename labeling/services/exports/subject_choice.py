"""Which galaxies go out as Zooniverse subjects (labeling/services/exports/zooniverse.py writes them): those the
probability model is least sure of, one cluster of a clustering, or those the galaxy list's filters keep. Every
choice holds galaxies with an image only (a subject is an image) and says why each was chosen.

"Least sure" is the labelling queue's own reading of the model: the dataset's current feature set and the latest
probability model of the schema on it, the queue's pool (galaxies with a vector, not yet labelled by an expert or
resolved), and the uncertainty score of the queue's strategy (margin for cluster-margin and combined, whose model
part is the margin), ranked by mlcore.active.query.choose as the queue ranks them.
"""

from dataclasses import dataclass

import numpy as np

from labeling.models import Clustering, Dataset, Galaxy, LabelSchema, QueuePolicy
from labeling.selectors.catalogue import IMAGES_WITH, LABELLED_CONSENSUS, LABELLED_EXPERT, LABELLED_NONE, galaxy_list
from labeling.services.labelling.queue_inputs import queue_inputs
from labeling.services.learning.classifier import current_feature_set, latest_classifier

# Queue strategies that are one uncertainty score of the model's probabilities; the others use the margin.
SCORES = ("least_confidence", "margin", "entropy")
LABELLED = (LABELLED_EXPERT, LABELLED_CONSENSUS, LABELLED_NONE)
# What to run before "least sure" can be asked: the model is fitted on features and labels.
_FIRST = ("extract its features (manage.py extract_features --dataset {name!r}), then fit the probability model on "
          "labelled galaxies (the Jobs page's \"fit probability model\", or the dataset admin's \"Refit the "
          "probability model\"; it also refits itself as experts label)")


# Reasons hold no comma: a manifest cell without quotes reads the same in every CSV reader.
@dataclass(frozen=True)
class Chosen:
    """Galaxy ids in the order they were chosen (least sure first; else by id), and why each was."""

    galaxy_ids: list[int]
    reasons: list[str]


def _schema_named(name: str, option: str = "schema") -> LabelSchema:
    schema = LabelSchema.objects.filter(name=name).first()
    if schema is None:
        known = ", ".join(LabelSchema.objects.values_list("name", flat=True)) or "none yet"
        raise ValueError(f"{option}: no label schema {name!r} (schemas: {known})")
    return schema


def _checked_count(n: int, option: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{option}: {n!r} is not a whole number of galaxies of at least 1")
    return n


def least_sure(*, dataset: Dataset, n: int, schema: str | None = None) -> Chosen:
    """The ``n`` galaxies the latest probability model of the schema is least sure of (fewer when fewer are
    unlabelled).

    Args:
        schema: the schema's name; may be left out when one schema has a probability model on the dataset.

    Raises:
        ValueError: for n < 1, an unknown schema, or no probability model yet (saying what to run first).
    """
    from mlcore.active import query  # here, as in queue_build: scikit-learn is not loaded with every export

    _checked_count(n, "least-sure")
    feature_set = current_feature_set(dataset=dataset)
    if schema is None:
        names = sorted(set(LabelSchema.objects.filter(classifiers__feature_set=feature_set).values_list(
            "name", flat=True))) if feature_set is not None else []
        if len(names) > 1:
            raise ValueError(f"least-sure: dataset {dataset.name!r} has probability models of {', '.join(names)}; "
                             f"choose one with schema (--schema)")
        schema = names[0] if names else None
    if schema is None:
        raise ValueError(f"least-sure: dataset {dataset.name!r} has no probability model yet: "
                         f"{_FIRST.format(name=dataset.name)}")
    label_schema = _schema_named(schema)
    classifier = latest_classifier(feature_set=feature_set, schema=label_schema)
    if classifier is None:
        raise ValueError(f"least-sure: no probability model of schema {schema!r} on dataset {dataset.name!r} yet: "
                         f"{_FIRST.format(name=dataset.name)}")
    policy = QueuePolicy.objects.filter(dataset=dataset).first()  # read only: no policy row is created here
    strategy, seed = (policy.strategy, policy.seed) if policy is not None else (query.DEFAULT_STRATEGY, 0)
    measure = strategy if strategy in SCORES else "margin"
    inputs = queue_inputs(dataset=dataset, schema=label_schema, needs={"probs"}, feature_set=feature_set,
                          classifier=classifier)
    if not len(inputs.galaxy_ids):
        return Chosen([], [])
    selection = query.choose(measure, n=n, labelled=inputs.labelled, probs=inputs.arrays["probs"], min_labels=0,
                             seed=seed)
    ids = [int(inputs.galaxy_ids[i]) for i in selection.indices]
    reasons = [f"least sure #{rank}: {measure} {score:.4f} (schema {schema}; model #{classifier.pk})"
               for rank, score in enumerate(selection.scores.tolist(), start=1)]
    return Chosen(ids, reasons)


def in_cluster(*, dataset: Dataset, clustering: int, cluster: int, limit: int | None = None,
               seed: int = 0) -> Chosen:
    """The galaxies with an image that ``clustering`` (by id) put in cluster number ``cluster``.

    Args:
        limit: at most this many, a random sample (seeded) of the cluster.

    Raises:
        ValueError: for a clustering of another dataset or none, a cluster number it does not have, or limit < 1.
    """
    found = Clustering.objects.filter(pk=clustering, feature_set__dataset=dataset).first()
    if found is None:
        known = ", ".join(f"{c.pk} ({c.method}, k={c.k})" for c in Clustering.objects.filter(
            feature_set__dataset=dataset).order_by("pk")) or "none yet: run manage.py cluster"
        raise ValueError(f"clustering: no clustering {clustering} of dataset {dataset.name!r} (its clusterings: "
                         f"{known})")
    if not 0 <= cluster < found.k:
        raise ValueError(f"cluster: clustering {found.pk} has clusters 0 to {found.k - 1}, not {cluster}")
    ids = (Galaxy.objects.filter(cluster_assignments__clustering=found, cluster_assignments__cluster=cluster)
           .exclude(image="").order_by("pk").values_list("pk", flat=True))
    chosen = _sample(list(ids), limit, seed)
    return Chosen(chosen, [f"cluster {cluster} of clustering {found.pk} ({found.method}; k={found.k})"] * len(chosen))


def filtered(*, dataset: Dataset, schema: str | None = None, labelled: str | None = None,
             expert_class: str | None = None, consensus_class: str | None = None, search: str = "",
             limit: int | None = None, seed: int = 0) -> Chosen:
    """The galaxies with an image that the galaxy list's filters keep (labeling.selectors.catalogue.galaxy_list).

    Args:
        labelled: "expert", "consensus" or "none", within ``schema``.
        limit: at most this many, a random sample (seeded) of those kept.

    Raises:
        ValueError: for an unknown schema, labelled value or class, a filter that needs a schema without one, or
            limit < 1.
    """
    label_schema = _schema_named(schema) if schema is not None else None
    if labelled is not None and labelled not in LABELLED:
        raise ValueError(f"labelled: {labelled!r} is not one of {', '.join(LABELLED)}")
    if labelled is not None and label_schema is None:
        raise ValueError("labelled: needs a schema (--schema): labels are given under one")
    for option, key in (("expert-class", expert_class), ("consensus-class", consensus_class)):
        if key and label_schema is None:
            raise ValueError(f"{option}: needs a schema (--schema): class keys are only unique within one")
        if key and not label_schema.classes.filter(key=key).exists():
            keys = ", ".join(label_schema.classes.values_list("key", flat=True))
            raise ValueError(f"{option}: schema {label_schema.name!r} has no class {key!r} (classes: {keys})")
    galaxies = galaxy_list(dataset=dataset, schema=label_schema, labelled=labelled, expert_class=expert_class,
                           consensus_class=consensus_class, search=search, images=IMAGES_WITH)
    # Ids only: the list's prefetched labels and image-first ordering serve its pages, not this.
    ids = list(galaxies.prefetch_related(None).order_by("pk").values_list("pk", flat=True))
    chosen = _sample(ids, limit, seed)
    shown = [f"{name}={value}" for name, value in (("schema", schema), ("labelled", labelled),
                                                  ("expert class", expert_class),
                                                  ("consensus class", consensus_class), ("search", search)) if value]
    return Chosen(chosen, [f"filter: {'; '.join(shown) or 'every galaxy with an image'}"] * len(chosen))


def _sample(ids: list[int], limit: int | None, seed: int) -> list[int]:
    """``ids`` (sorted), or a seeded random ``limit`` of them, sorted."""
    if limit is None:
        return ids
    _checked_count(limit, "limit")
    if limit >= len(ids):
        return ids
    picked = np.random.default_rng(seed).choice(len(ids), size=limit, replace=False)
    return sorted(ids[i] for i in picked)
