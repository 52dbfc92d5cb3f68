"""Consensus labels: each galaxy's vote fractions mapped to a schema class by a ConsensusRule."""

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from labeling.models import ConsensusLabel, ConsensusRule, Dataset, VoteSummary
from mlcore.votes.tree import consensus


@transaction.atomic
def consensus_compute(*, rule: ConsensusRule, dataset: Dataset | None = None) -> dict[str, int]:
    """Recompute the consensus labels of ``rule``'s schema for every galaxy with votes on the rule's tree.

    When a galaxy has both catalogue and aggregated votes, the source with more volunteers on the root question
    counts. Galaxies with too few votes lose any consensus label they had. Expert labels are never touched.

    Returns:
        Counts per class key, plus 'too_few_votes'.
    """
    root = rule.tree.questions.order_by("order").first()
    classes = {c.key: c for c in rule.schema.classes.all()}
    if rule.uncertain_class_key not in classes:
        raise ValueError(f"rule {rule}: schema {rule.schema.name!r} has no class {rule.uncertain_class_key!r}")
    summaries = VoteSummary.objects.filter(question__tree=rule.tree).values_list(
        "galaxy_id", "source", "question__key", "fractions", "total"
    )
    if dataset is not None:
        summaries = summaries.filter(galaxy__dataset=dataset)
    by_galaxy = defaultdict(lambda: defaultdict(dict))
    for galaxy_id, source, question_key, fractions, total in summaries.iterator(chunk_size=5000):
        by_galaxy[galaxy_id][source][question_key] = (fractions, total)

    existing = {
        label.galaxy_id: label
        for label in ConsensusLabel.objects.filter(schema=rule.schema, galaxy_id__in=list(by_galaxy))
    }
    tally: dict[str, int] = defaultdict(int)
    to_create, to_update, to_delete = [], [], []
    now = timezone.now()
    for galaxy_id, sources in by_galaxy.items():
        chosen = max(sources.values(), key=lambda qs: (qs.get(root.key, ({}, 0))[1] or 0))
        outcome = consensus(
            {q: f for q, (f, _) in chosen.items()},
            {q: t for q, (_, t) in chosen.items()},
            rule.conditions,
            root=root.key,
            default_threshold=rule.default_threshold,
            min_votes=rule.min_votes,
            uncertain=rule.uncertain_class_key,
        )
        label = existing.get(galaxy_id)
        if outcome.class_key is None:
            tally["too_few_votes"] += 1
            if label is not None:
                to_delete.append(label.id)
            continue
        tally[outcome.class_key] += 1
        values = {"rule": rule, "label_class": classes[outcome.class_key], "agreement": outcome.agreement,
                  "n_votes": outcome.n_votes}
        if label is None:
            to_create.append(ConsensusLabel(galaxy_id=galaxy_id, schema=rule.schema, computed_at=now, **values))
        elif (label.rule_id, label.label_class_id, label.agreement, label.n_votes) != (
            rule.id, values["label_class"].id, outcome.agreement, outcome.n_votes
        ):
            for k, v in values.items():
                setattr(label, k, v)
            label.computed_at = now
            to_update.append(label)
    ConsensusLabel.objects.filter(id__in=to_delete).delete()
    ConsensusLabel.objects.bulk_create(to_create, batch_size=2000)
    ConsensusLabel.objects.bulk_update(to_update, ["rule", "label_class", "agreement", "n_votes", "computed_at"],
                                       batch_size=2000)
    return dict(tally)
