"""Galaxy Zoo 2's volunteer weighting for the votes collected here: each volunteer's consistency with the others
(mlcore.votes.weighting) becomes a weight, and every aggregated vote summary of the tree gains the weighted
fractions as extra["weighted_fraction"] (the column name of the GZ2 tables, so the votes export writes them as
``..._weighted_fraction`` columns). The plain counts and fractions are left as they are. Each volunteer's kappa and
weight are kept (VolunteerWeight) for the admin's page of volunteers; excluded volunteers are left out."""

import math
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from labeling.models import Dataset, DecisionTree, VolunteerClassification, VolunteerWeight, VoteSummary
from labeling.models.screening import counted, volunteer_key
from mlcore.votes.tree import parse_tree
from mlcore.votes.weighting import volunteer_weights, weighted_galaxy_votes

WRITE_BATCH = 2000
ANONYMOUS = "classification:"


def _who(volunteer_id: str, user_id: int | None, pk: int) -> str:
    # Imported or simulated rows name their volunteer; a web row without one stands alone (counted as its own).
    return volunteer_key(volunteer_id, user_id) or f"{ANONYMOUS}{pk}"


@transaction.atomic
def volunteers_weight(*, dataset: Dataset, tree: DecisionTree) -> dict:
    """Weight the volunteers of ``tree`` on ``dataset`` and write the weighted fractions of every galaxy's
    aggregated summaries.

    Returns:
        {"volunteers", "down_weighted" (weight below 1), "iterations", "summaries" (updated)}.

    Raises:
        ValueError: when the dataset has no classification of the tree.
    """
    spec = parse_tree(tree.as_definition())
    rows = counted(VolunteerClassification.objects.filter(galaxy__dataset=dataset, tree=tree)).order_by(
        "created_at", "pk")
    walks: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for pk, galaxy_id, volunteer_id, user_id, answers in rows.values_list(
            "pk", "galaxy_id", "volunteer_id", "user_id", "answers").iterator(chunk_size=WRITE_BATCH):
        walks[galaxy_id].append((_who(volunteer_id, user_id, pk), answers))
    if not walks:
        raise ValueError(f"dataset {dataset.name!r} has no classification of tree {tree.name!r} to weight")
    result = volunteer_weights(spec, ((who, galaxy_id, answers) for galaxy_id, pairs in walks.items()
                                      for who, answers in pairs))
    questions = {question.key: question.pk for question in tree.questions.all()}
    summaries = {(s.galaxy_id, s.question_id): s for s in VoteSummary.objects.filter(
        galaxy_id__in=list(walks), question__tree=tree, source=VoteSummary.Source.AGGREGATED)}
    changed = []
    for galaxy_id, pairs in walks.items():
        for key, votes in weighted_galaxy_votes(spec, pairs, result.weights).items():
            summary = summaries.get((galaxy_id, questions[key]))
            if summary is None:  # not aggregated yet: aggregate_votes writes it, the next weighting weights it
                continue
            weighted = {answer: round(value, 6) for answer, value in votes.fractions().items()}
            if summary.extra.get("weighted_fraction") != weighted:
                summary.extra = {**summary.extra, "weighted_fraction": weighted}
                changed.append(summary)
    VoteSummary.objects.bulk_update(changed, ["extra"], batch_size=WRITE_BATCH)
    now = timezone.now()
    VolunteerWeight.objects.filter(dataset=dataset, tree=tree).delete()
    VolunteerWeight.objects.bulk_create(
        [VolunteerWeight(dataset=dataset, tree=tree, volunteer=who, weight=weight, computed_at=now,
                         kappa=None if math.isnan(result.kappa[who]) else result.kappa[who])
         for who, weight in result.weights.items() if not who.startswith(ANONYMOUS)],
        batch_size=WRITE_BATCH)
    return {"volunteers": len(result.weights), "iterations": result.iterations,
            "down_weighted": sum(weight < 1 for weight in result.weights.values()), "summaries": len(changed)}
