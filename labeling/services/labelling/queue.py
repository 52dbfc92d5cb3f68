"""Building the experts' labelling queues: the galaxies that teach the model most, dealt so that two experts are
not handed the same galaxy, except a share deliberately given to two to measure their agreement."""

import math

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labeling.models import Dataset, ExpertLabel, Job, LabelSchema, QueueEntry
from labeling.services.jobs.lifecycle import JobReporter, job_create
from labeling.services.labelling.labels import EXPERTS_GROUP
from labeling.services.labelling.queue_inputs import queue_inputs
from labeling.services.learning.classifier import current_feature_set, latest_classifier, queue_policy


def labelling_experts(*, dataset: Dataset, schema: LabelSchema) -> list:
    """Everyone in the experts group, plus admins who have labelled this schema or have a queue for it."""
    users = get_user_model().objects.filter(is_active=True)
    admins_labelling = Q(is_staff=True) & (Q(expert_labels__schema=schema) | Q(
        queue_entries__schema=schema, queue_entries__dataset=dataset))
    return list(users.filter(Q(groups__name=EXPERTS_GROUP) | admins_labelling).distinct().order_by("pk"))


def _taken_by_others(dataset: Dataset, schema: LabelSchema, experts: list) -> set[int]:
    """Galaxies waiting in the queues of experts not being rebuilt (their single-labelled entries)."""
    return set(QueueEntry.objects.filter(dataset=dataset, schema=schema, status=QueueEntry.Status.PENDING,
                                         double_label=False).exclude(expert__in=experts)
               .values_list("galaxy_id", flat=True))


def _person_labels(dataset: Dataset, schema: LabelSchema) -> dict[int, set[int]]:
    """Experts with a current label, per galaxy."""
    found: dict[int, set[int]] = {}
    for galaxy_id, expert_id in ExpertLabel.objects.filter(
            schema=schema, galaxy__dataset=dataset, superseded_at__isnull=True, expert__isnull=False,
    ).values_list("galaxy_id", "expert_id"):
        found.setdefault(galaxy_id, set()).add(expert_id)
    return found


def _skipped(dataset: Dataset, schema: LabelSchema) -> set[tuple[int, int]]:
    return set(QueueEntry.objects.filter(dataset=dataset, schema=schema, status=QueueEntry.Status.SKIPPED)
               .values_list("expert_id", "galaxy_id"))


def _finite(value) -> float:
    """A score as stored: random sampling scores nothing (NaN), which the database and JSON cannot hold."""
    value = float(value)
    return round(value, 4) if math.isfinite(value) else 0.0


def _components_of(selection, position: int) -> dict[str, float]:
    return {name: _finite(values[position]) for name, values in selection.components.items()}


def queue_classifier(*, policy, feature_set, schema: LabelSchema):
    """The probabilities the queue reads: the imported predictions the policy names, when they are of this schema,
    else the latest probability model of the current features."""
    if policy.predictions_id is not None and policy.predictions.schema_id == schema.pk:
        return policy.predictions
    return latest_classifier(feature_set=feature_set, schema=schema)


def queue_build(*, dataset: Dataset, schema: LabelSchema, experts=None, strategy: str | None = None,
                seed: int | None = None, reporter: JobReporter | None = None) -> dict:
    """Refill the queues of ``experts`` (every labelling expert when None) for one dataset and schema, replacing
    their pending entries in one transaction.

    Returns:
        ``{"experts": n, "entries": n, "double_labelled": n, "strategy": used, "requested_strategy": asked}``.

    Raises:
        ValueError: for an unknown strategy.
    """
    from mlcore.active import query

    policy = queue_policy(dataset=dataset)
    requested = strategy or policy.strategy
    if requested not in query.STRATEGIES:
        raise ValueError(f"unknown strategy {requested!r}; one of {', '.join(query.STRATEGIES)}")
    seed = policy.seed if seed is None else seed
    experts = list(experts) if experts is not None else labelling_experts(dataset=dataset, schema=schema)
    feature_set = current_feature_set(dataset=dataset)
    classifier = queue_classifier(policy=policy, feature_set=feature_set, schema=schema)
    if reporter:
        reporter.progress(0, 3, "reading features, probabilities and votes")
    needs = query.strategy_needs(requested) | ({"features"} if feature_set is not None else set())
    inputs = queue_inputs(dataset=dataset, schema=schema, needs=needs, feature_set=feature_set,
                          classifier=classifier, seed=seed)
    ids = inputs.galaxy_ids
    summary = {"experts": len(experts), "entries": 0, "double_labelled": 0, "strategy": requested,
               "requested_strategy": requested}
    if not experts or not len(ids):
        _replace_entries(dataset, schema, experts, [])
        return summary
    taken = _taken_by_others(dataset, schema, experts)
    exclude = np.fromiter((int(g) in taken for g in ids), dtype=bool, count=len(ids))
    if reporter:
        reporter.progress(1, 3, f"choosing by {requested}")
    # min_labels guards against trusting a probability model fitted on a handful of our labels; an outside model's
    # predictions did not learn from them, so they are used from the first build.
    imported = classifier is not None and classifier.is_imported
    selection = query.choose(requested, n=policy.batch_size * len(experts), labelled=inputs.labelled,
                             exclude=exclude, seed=seed, min_labels=0 if imported else policy.min_labels,
                             weights=policy.weights or None, **inputs.arrays)
    common = {"dataset": dataset, "schema": schema, "strategy": selection.strategy, "requested_strategy": requested,
              "model_version": feature_set.model_version if feature_set else None,
              "classifier": classifier if "probs" in inputs.arrays else None}
    skipped = _skipped(dataset, schema)
    queues: dict[int, list[QueueEntry]] = {expert.pk: [] for expert in experts}
    dealt_to: dict[int, int] = {}
    for position, index in enumerate(selection.indices.tolist()):
        galaxy_id = int(ids[index])
        open_queues = [e for e in experts if len(queues[e.pk]) < policy.batch_size and (e.pk, galaxy_id) not in
                       skipped]
        if not open_queues:
            continue
        expert = min(open_queues, key=lambda e: len(queues[e.pk]))
        dealt_to[galaxy_id] = expert.pk
        queues[expert.pk].append(QueueEntry(
            expert=expert, galaxy_id=galaxy_id, score=_finite(selection.scores[position]),
            components=_components_of(selection, position), **common))
    doubles = _double_labels(dataset, schema, experts, queues, dealt_to, policy, skipped, seed, common)
    entries = []
    for expert in experts:
        ordered = _interleave(queues[expert.pk], doubles.get(expert.pk, []))
        for rank, entry in enumerate(ordered, start=1):
            entry.rank = rank
            entries.append(entry)
    if reporter:
        reporter.progress(2, 3, f"saving {len(entries)} queue entries")
    _replace_entries(dataset, schema, experts, entries)
    summary.update(entries=len(entries), double_labelled=sum(len(d) for d in doubles.values()),
                   strategy=selection.strategy)
    return summary


def _double_labels(dataset, schema, experts, queues, dealt_to, policy, skipped, seed, common) -> dict[int, list]:
    """A share of each queue given to a second expert: first galaxies one other expert already labelled (a second
    opinion there is sure to count), then galaxies dealt to another expert in this build."""
    per_expert = math.ceil(policy.double_label_share * policy.batch_size) if policy.double_label_share else 0
    if per_expert == 0:
        return {}
    rng = np.random.default_rng(seed)
    labelled_by = _person_labels(dataset, schema)
    singly = sorted(g for g, who in labelled_by.items() if len(who) == 1)
    rng.shuffle(singly)
    doubles: dict[int, list[QueueEntry]] = {}
    for expert in experts:
        mine = {entry.galaxy_id for entry in queues[expert.pk]}
        chosen: list[int] = []
        others_first = [g for g in singly if expert.pk not in labelled_by[g]]
        others_dealt = [g for g, owner in dealt_to.items() if owner != expert.pk]
        for galaxy_id in [*others_first, *others_dealt]:
            if len(chosen) == per_expert:
                break
            if galaxy_id in mine or galaxy_id in chosen or (expert.pk, galaxy_id) in skipped:
                continue
            chosen.append(galaxy_id)
        doubles[expert.pk] = [QueueEntry(expert=expert, galaxy_id=g, score=0.0, double_label=True,
                                         components={"double_label": 1.0}, **common) for g in chosen]
    return doubles


def _interleave(main: list, extra: list) -> list:
    """Spread ``extra`` evenly through ``main``, so agreement data accrue while the expert works."""
    if not extra:
        return main
    step = max(1, len(main) // (len(extra) + 1))
    ordered = list(main)
    for n, entry in enumerate(extra, start=1):
        ordered.insert(min(len(ordered), n * step + n - 1), entry)
    return ordered


@transaction.atomic
def _replace_entries(dataset, schema, experts, entries) -> None:
    QueueEntry.objects.filter(dataset=dataset, schema=schema, expert__in=experts,
                              status=QueueEntry.Status.PENDING).delete()
    QueueEntry.objects.bulk_create(entries, batch_size=2000)


def queue_build_start(*, dataset: Dataset, schema: LabelSchema, experts=None, strategy: str | None = None,
                      user=None, enqueue: bool = True) -> Job:
    """Queue a build of the experts' queues (all of them when ``experts`` is None).

    Raises:
        JobConflict: when the same build is already queued or running.
    """
    arguments = {"schema": schema.pk, "experts": sorted(e.pk for e in experts) if experts is not None else None,
                 "strategy": strategy}
    return job_create(kind=Job.Kind.BUILD_QUEUE, arguments=arguments, dataset=dataset, user=user, enqueue=enqueue)


def entry_finish(*, expert, dataset: Dataset, schema: LabelSchema, galaxy_id: int, status: str) -> None:
    """Close the expert's pending entry for the galaxy (if a rebuild did not already replace it)."""
    QueueEntry.objects.filter(expert=expert, dataset=dataset, schema=schema, galaxy_id=galaxy_id,
                              status=QueueEntry.Status.PENDING).update(status=status, finished_at=timezone.now())
