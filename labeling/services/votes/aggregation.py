"""Volunteer classifications and their aggregation into vote summaries."""

from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from labeling.models import DecisionTree, Galaxy, VolunteerClassification, VoteSummary
from labeling.models.screening import counted
from labeling.services.labelling.labels import galaxy_lock
from mlcore.votes.tree import count_votes, parse_tree, reach, validate_walk


@transaction.atomic
def classification_create(
    *,
    galaxy: Galaxy,
    tree: DecisionTree,
    answers: dict,
    user=None,
    volunteer_id: str = "",
    source: str = VolunteerClassification.Source.WEB,
    aggregate: bool = True,
) -> VolunteerClassification:
    """Store one volunteer's walk through ``tree`` for ``galaxy`` and, by default, refresh its vote summaries.

    A second classification from the same volunteer (the same non-empty ``volunteer_id``, source web) of the same
    galaxy and tree stores nothing: the first one is returned with ``created`` False, so a double submit is
    harmless. Concurrent classifications of one galaxy are serialised by a lock on the galaxy's row, so its
    summaries always count every classification stored.

    Raises:
        ValidationError: when the answers do not follow the tree; the message names the question or answer.
    """
    spec = parse_tree(tree.as_definition())
    try:
        validate_walk(spec, answers)
    except ValueError as exc:
        raise ValidationError({"answers": str(exc)}) from None
    galaxy_lock(galaxy.pk)
    if source == VolunteerClassification.Source.WEB and volunteer_id:
        earlier = VolunteerClassification.objects.filter(galaxy=galaxy, tree=tree, volunteer_id=volunteer_id,
                                                         source=source).first()
        if earlier is not None:
            earlier.created = False
            return earlier
    classification = VolunteerClassification.objects.create(
        galaxy=galaxy, tree=tree, answers=answers, user=user, volunteer_id=volunteer_id, source=source
    )
    classification.created = True
    if aggregate:
        votes_aggregate(tree=tree, galaxy_ids=[galaxy.id])
    return classification


@transaction.atomic
def votes_aggregate(*, tree: DecisionTree, galaxy_ids: Iterable[int] | None = None) -> int:
    """Recount the classifications of ``tree`` into VoteSummary rows (source 'aggregated').

    Classifications of excluded volunteers do not count (labeling.models.screening.counted); a galaxy whose
    classifications are all excluded loses its aggregated summaries, as if it had none.

    Args:
        tree: the decision tree whose classifications are counted.
        galaxy_ids: limit to these galaxies; all galaxies with classifications of the tree when None.

    Returns:
        The number of galaxies whose summaries were written.
    """
    spec = parse_tree(tree.as_definition())
    questions = {q.key: q for q in tree.questions.all()}
    rows = counted(VolunteerClassification.objects.filter(tree=tree))
    stale = VoteSummary.objects.filter(question__tree=tree, source=VoteSummary.Source.AGGREGATED).filter(
        Exists(VolunteerClassification.objects.filter(tree=tree, galaxy=OuterRef("galaxy_id")))).exclude(
        Exists(rows.filter(galaxy=OuterRef("galaxy_id"))))
    if galaxy_ids is not None:
        galaxy_ids = list(galaxy_ids)
        rows = rows.filter(galaxy_id__in=galaxy_ids)
        stale = stale.filter(galaxy_id__in=galaxy_ids)
    stale.delete()
    walks_by_galaxy = defaultdict(list)
    for galaxy_id, answers in rows.values_list("galaxy_id", "answers").iterator(chunk_size=2000):
        walks_by_galaxy[galaxy_id].append(answers)
    existing = {
        (s.galaxy_id, s.question_id): s
        for s in VoteSummary.objects.filter(
            galaxy_id__in=list(walks_by_galaxy), question__tree=tree, source=VoteSummary.Source.AGGREGATED
        )
    }
    to_create, to_update = [], []
    for galaxy_id, walks in walks_by_galaxy.items():
        votes = count_votes(spec, walks)
        reached = reach(votes, spec)
        for key, question_votes in votes.items():
            question = questions[key]
            values = {
                "counts": question_votes.counts,
                "total": question_votes.total,
                "fractions": question_votes.fractions(),
                "reach": reached[key],
            }
            summary = existing.get((galaxy_id, question.id))
            if summary is None:
                to_create.append(VoteSummary(galaxy_id=galaxy_id, question=question,
                                             source=VoteSummary.Source.AGGREGATED, **values))
            elif any(getattr(summary, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(summary, k, v)
                to_update.append(summary)
    VoteSummary.objects.bulk_create(to_create, batch_size=2000)
    VoteSummary.objects.bulk_update(to_update, ["counts", "total", "fractions", "reach"], batch_size=2000)
    return len(walks_by_galaxy)
