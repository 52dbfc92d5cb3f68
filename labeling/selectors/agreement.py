"""How far experts agree with each other and with the volunteers: per-expert statistics, Cohen's kappa per pair
and Fleiss' kappa over the galaxies two or more experts labelled, and the disagreements an admin should resolve."""

from dataclasses import dataclass, field
from datetime import datetime, time
from itertools import combinations

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from labeling.models import ConsensusLabel, ConsensusRule, Dataset, ExpertLabel, Galaxy, LabelResolution, LabelSchema
from labeling.selectors.catalogue import with_current_labels


@dataclass
class ExpertStats:
    expert: object
    labels: int
    today: int
    classes: dict[str, int]
    with_consensus: int  # of their labelled galaxies, how many have a volunteer consensus
    agree_consensus: float | None
    kappa_consensus: float | None


@dataclass
class PairStats:
    first: object
    second: object
    common: int
    agreement: float
    kappa: float


@dataclass
class Agreement:
    schema: LabelSchema
    dataset: Dataset | None
    experts: list[ExpertStats] = field(default_factory=list)
    pairs: list[PairStats] = field(default_factory=list)
    multi_labelled: int = 0
    fleiss_kappa: float | None = None
    disagreements: int = 0


def _person_labels(schema: LabelSchema, dataset: Dataset | None):
    labels = ExpertLabel.objects.filter(schema=schema, superseded_at__isnull=True, expert__isnull=False)
    return labels.filter(galaxy__dataset=dataset) if dataset is not None else labels


def _consensus(schema: LabelSchema, dataset: Dataset | None) -> dict[int, str]:
    uncertain = set(ConsensusRule.objects.filter(schema=schema).values_list("uncertain_class_key", flat=True))
    rows = ConsensusLabel.objects.filter(schema=schema).exclude(label_class__key__in=uncertain)
    if dataset is not None:
        rows = rows.filter(galaxy__dataset=dataset)
    return dict(rows.values_list("galaxy_id", "label_class__key"))


def agreement_stats(*, schema: LabelSchema, dataset: Dataset | None = None) -> Agreement:
    """Agreement figures for a schema (in one dataset, or all). A fixed number of queries."""
    from mlcore.votes.agreement import category_counts, cohen_kappa, fleiss_kappa

    by_galaxy: dict[int, dict[int, str]] = {}
    for galaxy_id, expert_id, key in _person_labels(schema, dataset).values_list("galaxy_id", "expert_id",
                                                                                "label_class__key"):
        by_galaxy.setdefault(galaxy_id, {})[expert_id] = key
    consensus = _consensus(schema, dataset)
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    today = dict(_person_labels(schema, dataset).filter(created_at__gte=midnight).values("expert")
                 .annotate(n=Count("pk")).values_list("expert", "n"))
    users = get_user_model().objects.in_bulk({e for raters in by_galaxy.values() for e in raters})
    result = Agreement(schema=schema, dataset=dataset)
    for expert_id, user in sorted(users.items(), key=lambda item: item[1].get_username()):
        mine = {g: raters[expert_id] for g, raters in by_galaxy.items() if expert_id in raters}
        classes: dict[str, int] = {}
        for key in mine.values():
            classes[key] = classes.get(key, 0) + 1
        shared = [g for g in mine if g in consensus]
        theirs, volunteers = [mine[g] for g in shared], [consensus[g] for g in shared]
        result.experts.append(ExpertStats(
            expert=user, labels=len(mine), today=today.get(expert_id, 0), classes=dict(sorted(classes.items())),
            with_consensus=len(shared),
            agree_consensus=sum(a == b for a, b in zip(theirs, volunteers, strict=True)) / len(shared)
            if shared else None,
            kappa_consensus=cohen_kappa(theirs, volunteers) if shared else None,
        ))
    for first, second in combinations(sorted(users, key=lambda pk: users[pk].get_username()), 2):
        common = [g for g, raters in by_galaxy.items() if first in raters and second in raters]
        if not common:
            continue
        a, b = [by_galaxy[g][first] for g in common], [by_galaxy[g][second] for g in common]
        result.pairs.append(PairStats(first=users[first], second=users[second], common=len(common),
                                      agreement=sum(x == y for x, y in zip(a, b, strict=True)) / len(common),
                                      kappa=cohen_kappa(a, b)))
    multi = {g: raters for g, raters in by_galaxy.items() if len(raters) >= 2}
    result.multi_labelled = len(multi)
    result.disagreements = sum(1 for raters in multi.values() if len(set(raters.values())) > 1)
    if multi:
        categories = sorted({key for raters in multi.values() for key in raters.values()})
        result.fleiss_kappa = fleiss_kappa(category_counts(multi, categories))
    return result


@dataclass
class Disagreement:
    galaxy: Galaxy
    labels: list  # the experts' current ExpertLabel rows
    consensus: ConsensusLabel | None
    resolution: LabelResolution | None


def disagreements(*, schema: LabelSchema, dataset: Dataset | None = None, include_resolved: bool = False,
                  limit: int = 200) -> list[Disagreement]:
    """Galaxies whose experts gave different classes, unresolved first, each with every expert's label, the
    volunteers' consensus and any resolution. A fixed number of queries."""
    labels = _person_labels(schema, dataset)
    split = (labels.values("galaxy").annotate(classes=Count("label_class", distinct=True))
             .filter(classes__gt=1).values("galaxy"))
    galaxies = Galaxy.objects.filter(pk__in=split).select_related("dataset")
    resolved = LabelResolution.objects.filter(schema=schema)
    if not include_resolved:
        galaxies = galaxies.exclude(pk__in=resolved.values("galaxy"))
    galaxies = list(with_current_labels(galaxies, schema=schema).order_by("pk")[:limit])
    resolutions = {r.galaxy_id: r for r in resolved.filter(galaxy__in=galaxies).select_related(
        "label_class", "resolved_by")}
    rows = []
    for galaxy in galaxies:
        experts = sorted((lab for lab in galaxy.current_expert_labels if lab.expert_id is not None),
                         key=lambda lab: lab.created_at)
        consensus = next(iter(galaxy.consensus_labels_shown), None)
        rows.append(Disagreement(galaxy=galaxy, labels=experts, consensus=consensus,
                                 resolution=resolutions.get(galaxy.pk)))
    rows.sort(key=lambda row: row.resolution is not None)
    return rows


def schemas_with_expert_labels() -> list[LabelSchema]:
    return list(LabelSchema.objects.filter(Q(expert_labels__expert__isnull=False)).distinct().order_by("name"))
