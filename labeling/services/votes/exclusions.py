"""Excluding a volunteer (a bot, a careless or a hostile classifier) and including them again. Their
classifications stay on record either way; what changes is what counts them: the galaxies they classified are
recounted at once (vote summaries, subjects' counts and retirement), and where the dataset's volunteers were
weighted, or its consensus computed, those are computed again."""

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import (
    ClassifyPolicy,
    ConsensusLabel,
    ConsensusRule,
    Dataset,
    DecisionTree,
    Galaxy,
    Subject,
    VolunteerClassification,
    VolunteerExclusion,
    VolunteerWeight,
    VoteSummary,
)
from labeling.models.screening import USER_PREFIX
from labeling.services.votes.aggregation import votes_aggregate
from labeling.services.votes.classify import retirement_reason, subject_counts
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.weighting import volunteers_weight

USER_KEY = re.compile(rf"^{USER_PREFIX}(\d+)$")


def _check_admin(admin) -> None:
    if admin is None or not admin.is_staff:
        raise PermissionDenied("only admins may exclude or include volunteers")


def _classifications_of(volunteer: str, user_id: int | None):
    """The classifications a key names: its volunteer_id, or a signed-in user's stored without one."""
    rows = VolunteerClassification.objects.filter(volunteer_id=volunteer)
    if user_id is not None:
        rows = rows | VolunteerClassification.objects.filter(volunteer_id="", user_id=user_id)
    return rows


@transaction.atomic
def volunteer_exclude(*, volunteer: str, reason: str, admin) -> tuple[VolunteerExclusion, dict]:
    """Exclude a volunteer from every count, now and for their later classifications, and recount.

    Args:
        volunteer: their key (labeling.models.screening.volunteer_key): "user:<id>", "session:<key>", an imported id.
        reason: why, for the record (required).
        admin: the staff user deciding.

    Returns:
        (the exclusion, what was recounted: see _recount).

    Raises:
        PermissionDenied: when ``admin`` is not staff.
        ValidationError: for an empty reason, a volunteer with no classification, or one excluded already.
    """
    _check_admin(admin)
    volunteer, reason = volunteer.strip(), reason.strip()
    if not reason:
        raise ValidationError({"reason": "say why the volunteer is excluded"})
    match = USER_KEY.match(volunteer)
    user = get_user_model().objects.filter(pk=int(match[1])).first() if match else None
    if not volunteer or not _classifications_of(volunteer, user.pk if user else None).exists():
        raise ValidationError({"volunteer": f"no classification by volunteer {volunteer!r}"})
    try:
        with transaction.atomic():  # the constraint keeps one exclusion in force per volunteer
            exclusion = VolunteerExclusion.objects.create(volunteer=volunteer, user=user, reason=reason,
                                                          excluded_by=admin)
    except IntegrityError:
        raise ValidationError({"volunteer": f"volunteer {volunteer!r} is excluded already"}) from None
    result = _recount(volunteer, user.pk if user else None)
    exclusion.consensus_rules = result.pop("rules")
    exclusion.save(update_fields=["consensus_rules"])
    return exclusion, result


@transaction.atomic
def volunteer_include(*, volunteer: str, admin, note: str = "") -> tuple[VolunteerExclusion, dict]:
    """Count an excluded volunteer again, keeping the exclusion on record as ended (who, when, an optional note).

    Returns:
        (the exclusion, now ended; what was recounted).

    Raises:
        PermissionDenied: when ``admin`` is not staff.
        ValidationError: when the volunteer is not excluded.
    """
    _check_admin(admin)
    exclusion = VolunteerExclusion.objects.select_for_update().in_force().filter(volunteer=volunteer.strip()).first()
    if exclusion is None:
        raise ValidationError({"volunteer": f"volunteer {volunteer!r} is not excluded"})
    exclusion.included_at, exclusion.included_by, exclusion.included_note = timezone.now(), admin, note.strip()
    exclusion.save(update_fields=["included_at", "included_by", "included_note"])
    result = _recount(exclusion.volunteer, exclusion.user_id, rules=exclusion.consensus_rules)
    result.pop("rules")
    return exclusion, result


def _recount(volunteer: str, user_id: int | None, rules: list = ()) -> dict:
    """Recount what the volunteer's classifications touch: the aggregated summaries and the subjects of each galaxy
    they classified (under each tree), then, per dataset and tree, the volunteer weights where they had been
    computed and the consensus of every rule whose labels the dataset holds (and of ``rules``, [rule id, dataset
    id] pairs).

    Returns:
        {"galaxies": galaxies recounted, "subjects": subjects whose count or retirement changed,
         "weighted": (dataset, tree) pairs weighted again, "consensus": rules recomputed,
         "rules": the [rule id, dataset id] pairs recomputed}.
    """
    touched = list(_classifications_of(volunteer, user_id).order_by().values_list(
        "tree_id", "galaxy_id", "galaxy__dataset_id").distinct())
    galaxy_ids = sorted({galaxy_id for _, galaxy_id, _ in touched})
    # The galaxies' row locks, in one order, as every classification takes them: a volunteer classifying one of
    # them now waits for the recount rather than having their vote counted over by it.
    list(Galaxy.objects.select_for_update(of=("self",)).filter(pk__in=galaxy_ids).order_by("pk").values_list("pk"))
    by_tree: dict[int, set[int]] = {}
    pairs: set[tuple[int, int]] = set()
    for tree_id, galaxy_id, dataset_id in touched:
        by_tree.setdefault(tree_id, set()).add(galaxy_id)
        pairs.add((dataset_id, tree_id))
    trees = DecisionTree.objects.in_bulk(list(by_tree))
    datasets = Dataset.objects.in_bulk({dataset_id for dataset_id, _ in pairs})
    for tree_id, ids in by_tree.items():
        votes_aggregate(tree=trees[tree_id], galaxy_ids=sorted(ids))
    subjects = 0
    for policy in ClassifyPolicy.objects.select_related("tree", "dataset", "early_rule").filter(
            tree_id__in=list(by_tree), dataset_id__in=list(datasets)):
        subjects += _subjects_recount(policy, sorted(by_tree[policy.tree_id]))
    weighted = []
    for dataset_id, tree_id in sorted(pairs):
        weights = VolunteerWeight.objects.filter(dataset_id=dataset_id, tree_id=tree_id)
        # Summaries weighted before the weights were kept say so by their weighted fractions.
        weighted_before = VoteSummary.objects.filter(
            galaxy__dataset_id=dataset_id, question__tree_id=tree_id, source=VoteSummary.Source.AGGREGATED,
            extra__has_key="weighted_fraction")
        if weights.exists() or weighted_before.exists():
            try:
                volunteers_weight(dataset=datasets[dataset_id], tree=trees[tree_id])
            except ValueError:  # nobody left to weight
                weights.delete()
            weighted.append((dataset_id, tree_id))
    # Only the rules whose labels the dataset holds: computing another rule of the same schema would replace the
    # labels an admin chose to compute with a rule they did not choose.
    recompute = {(rule_id, dataset_id) for rule_id, dataset_id in rules if dataset_id in datasets}
    for dataset_id, tree_id in pairs:
        recompute |= {(rule_id, dataset_id) for rule_id in ConsensusLabel.objects.filter(
            galaxy__dataset_id=dataset_id, rule__tree_id=tree_id).values_list("rule_id", flat=True).distinct()}
    found = ConsensusRule.objects.select_related("tree", "schema").in_bulk({rule_id for rule_id, _ in recompute})
    recompute = sorted(pair for pair in recompute if pair[0] in found)
    for rule_id, dataset_id in recompute:
        # A galaxy left with no votes at all loses the label the rule gave it there too.
        consensus_compute(rule=found[rule_id], dataset=datasets[dataset_id])
    return {"galaxies": len(galaxy_ids), "subjects": subjects, "weighted": len(weighted),
            "consensus": len(recompute), "rules": [list(pair) for pair in recompute]}


def _subjects_recount(policy: ClassifyPolicy, galaxy_ids: list[int]) -> int:
    """Set the subjects' counts from the classifications that count, retire those that now should be, and reopen
    those retired by count or by agreement that no longer would be (an admin's retirement stands).

    Returns:
        Subjects changed.
    """
    counts = subject_counts(policy=policy, galaxy_ids=galaxy_ids)
    changed = 0
    now = timezone.now()
    for subject in Subject.objects.filter(galaxy_id__in=galaxy_ids, tree=policy.tree):
        before = (subject.n_classifications, subject.retired_at, subject.retired_reason)
        subject.n_classifications = counts.get(subject.galaxy_id, 0)
        if subject.retired_reason != Subject.Retired.ADMIN:
            reason = retirement_reason(policy=policy, subject=subject)
            if reason is None:
                subject.retired_at, subject.retired_reason = None, ""
            elif subject.retired_at is None:
                subject.retired_at, subject.retired_reason = now, reason
        if (subject.n_classifications, subject.retired_at, subject.retired_reason) != before:
            subject.save(update_fields=["n_classifications", "retired_at", "retired_reason"])
            changed += 1
    return changed
