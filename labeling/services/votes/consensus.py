"""Consensus labels: each galaxy's vote fractions mapped to a schema class by a ConsensusRule."""

from collections import defaultdict

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from labeling.models import ConsensusLabel, ConsensusRule, Dataset, VoteSummary
from mlcore.votes.fractions import check_kinds, describe_used, pick_fractions
from mlcore.votes.tree import consensus


@transaction.atomic
def consensus_compute(*, rule: ConsensusRule, dataset: Dataset | None = None) -> dict[str, int]:
    """Recompute the consensus labels of ``rule``'s schema for every galaxy with votes on the rule's tree.

    When a galaxy has both catalogue and aggregated votes, the source with more volunteers on the root question
    counts. Each question's fractions are the first kind in ``rule.fractions`` it has (debiased, weighted, raw);
    conditions naming their own kinds read those. The label records which kinds decided. Galaxies with too few
    votes, or none left at all, lose any consensus label this rule gave them. Expert labels are never touched.

    Returns:
        Counts per class key, plus 'too_few_votes'.
    """
    root = rule.tree.questions.order_by("order").first()
    classes = {c.key: c for c in rule.schema.classes.all()}
    if rule.uncertain_class_key not in classes:
        raise ValueError(f"rule {rule}: schema {rule.schema.name!r} has no class {rule.uncertain_class_key!r}")
    summaries = VoteSummary.objects.filter(question__tree=rule.tree).values_list(
        "galaxy_id", "source", "question__key", "fractions", "total", "extra"
    )
    if dataset is not None:
        summaries = summaries.filter(galaxy__dataset=dataset)
    by_galaxy = defaultdict(lambda: defaultdict(dict))
    for galaxy_id, source, question_key, fractions, total, extra in summaries.iterator(chunk_size=5000):
        by_galaxy[galaxy_id][source][question_key] = (fractions, total, extra)
    kinds = check_kinds(rule.fractions)
    # The rule reads only its conditions' questions: a fallback elsewhere decided nothing.
    read = {c["question"] for conditions in rule.conditions.values() for c in conditions if not c.get("fractions")}
    own_kinds = {check_kinds(c["fractions"]) for conditions in rule.conditions.values() for c in conditions
                 if c.get("fractions")}

    # Subqueries, not lists of every galaxy with votes: a catalogue holds hundreds of thousands.
    has_votes = Exists(VoteSummary.objects.filter(galaxy=OuterRef("galaxy_id"), question__tree_id=rule.tree_id))
    labels = ConsensusLabel.objects.filter(schema=rule.schema).filter(has_votes)
    if dataset is not None:
        labels = labels.filter(galaxy__dataset=dataset)
    existing = {label.galaxy_id: label for label in labels.iterator(chunk_size=5000)}
    tally: dict[str, int] = defaultdict(int)
    to_create, to_update, to_delete = [], [], []
    now = timezone.now()
    for galaxy_id, sources in by_galaxy.items():
        chosen = max(sources.values(), key=lambda qs: (qs.get(root.key, ({}, 0, {}))[1] or 0))
        picked = {q: pick_fractions(f, extra, kinds) for q, (f, _, extra) in chosen.items()}
        # A question nobody answered holds no fractions of any kind: its fallback to raw decided nothing.
        used = describe_used({q: kind for q, (_, kind) in picked.items()
                              if (q in read and chosen[q][1]) or q == root.key}, root.key)
        outcome = consensus(
            {q: f for q, (f, _) in picked.items()},
            {q: t for q, (_, t, _) in chosen.items()},
            rule.conditions,
            root=root.key,
            default_threshold=rule.default_threshold,
            min_votes=rule.min_votes,
            uncertain=rule.uncertain_class_key,
            fractions_by_kinds={own: {q: pick_fractions(f, extra, own)[0] for q, (f, _, extra) in chosen.items()}
                                for own in own_kinds},
        )
        label = existing.get(galaxy_id)
        if outcome.class_key is None:
            tally["too_few_votes"] += 1
            if label is not None:
                to_delete.append(label.id)
            continue
        tally[outcome.class_key] += 1
        values = {"rule": rule, "label_class": classes[outcome.class_key], "agreement": outcome.agreement,
                  "n_votes": outcome.n_votes, "fractions_used": used}
        if label is None:
            to_create.append(ConsensusLabel(galaxy_id=galaxy_id, schema=rule.schema, computed_at=now, **values))
        elif (label.rule_id, label.label_class_id, label.agreement, label.n_votes, label.fractions_used) != (
            rule.id, values["label_class"].id, outcome.agreement, outcome.n_votes, used
        ):
            for k, v in values.items():
                setattr(label, k, v)
            label.computed_at = now
            to_update.append(label)
    # Galaxies whose votes on the tree are all gone (every volunteer excluded, the catalogue re-imported without
    # them) are not in by_galaxy at all: the labels this rule gave them go too.
    orphans = ConsensusLabel.objects.filter(rule=rule).filter(~has_votes)
    if dataset is not None:
        orphans = orphans.filter(galaxy__dataset=dataset)
    orphaned = list(orphans.values_list("id", flat=True))
    if orphaned:
        tally["too_few_votes"] += len(orphaned)
        to_delete += orphaned
    ConsensusLabel.objects.filter(id__in=to_delete).delete()
    ConsensusLabel.objects.bulk_create(to_create, batch_size=2000)
    ConsensusLabel.objects.bulk_update(to_update, ["rule", "label_class", "agreement", "n_votes", "fractions_used",
                                                     "computed_at"],
                                       batch_size=2000)
    return dict(tally)
