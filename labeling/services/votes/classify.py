"""Volunteers classifying in this application: which galaxy to offer next, storing a classification once, and
retiring galaxies that have enough classifications, or whose volunteers and model already agree.

A galaxy is offered to a volunteer at most once. Offers mix usefulness and coverage: a share of them (the
dataset's ClassifyPolicy.useful_share) goes to the galaxies the probability model is least sure of or the experts
dispute, the rest to the least-classified galaxies, so the catalogue keeps being covered.
"""

import random

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone

from labeling.models import (
    ClassifyPolicy,
    Dataset,
    ExpertLabel,
    Galaxy,
    LabelSchema,
    Prediction,
    Subject,
    VolunteerClassification,
    VoteSummary,
)
from labeling.models.screening import counted, is_excluded
from labeling.services.learning.classifier import current_feature_set, latest_classifier
from labeling.services.votes.aggregation import classification_create
from mlcore.votes.tree import consensus

# Candidates read per offer; the one offered is drawn at random among them, so that volunteers arriving together
# are spread over equally good galaxies instead of all getting the first.
CANDIDATES = 10
WRITE_BATCH = 2000


def policy_for(*, dataset: Dataset) -> ClassifyPolicy | None:
    return ClassifyPolicy.objects.select_related("tree", "early_rule__schema", "dataset").filter(
        dataset=dataset).first()


def subjects_ensure(*, policy: ClassifyPolicy) -> int:
    """Subject rows for the dataset's galaxies with an image that lack one under the policy's tree, each counting
    the classifications already made here (imported and simulated votes do not count towards retirement: they are
    not the ones this application collects). Returns how many were created."""
    missing = (Galaxy.objects.filter(dataset=policy.dataset).exclude(image="")
               .exclude(Exists(Subject.objects.filter(galaxy=OuterRef("pk"), tree=policy.tree)))
               .values_list("pk", flat=True))
    created = 0
    rng = random.Random()
    batch: list[int] = []
    for galaxy_id in missing.iterator(chunk_size=WRITE_BATCH):
        batch.append(galaxy_id)
        if len(batch) == WRITE_BATCH:
            created += _create_subjects(policy, batch, rng)
            batch = []
    if batch:
        created += _create_subjects(policy, batch, rng)
    return created


def _create_subjects(policy: ClassifyPolicy, galaxy_ids: list[int], rng: random.Random) -> int:
    counts = subject_counts(policy=policy, galaxy_ids=galaxy_ids)
    rows = [Subject(galaxy_id=galaxy_id, dataset=policy.dataset, tree=policy.tree,
                    n_classifications=counts.get(galaxy_id, 0), shuffle=rng.random()) for galaxy_id in galaxy_ids]
    # Two page loads may ensure at once; the unique constraint keeps one row per galaxy and tree.
    return len(Subject.objects.bulk_create(rows, ignore_conflicts=True))


def subject_counts(*, policy: ClassifyPolicy, galaxy_ids: list[int]) -> dict[int, int]:
    """galaxy id -> the classifications that count towards its retirement: made here, under the policy's tree, by
    volunteers not excluded. Galaxies without one are left out."""
    rows = counted(VolunteerClassification.objects.filter(galaxy_id__in=galaxy_ids, tree=policy.tree,
                                                          source=VolunteerClassification.Source.WEB))
    return dict(rows.values("galaxy_id").annotate(n=Count("pk")).values_list("galaxy_id", "n"))


def classify_next(*, policy: ClassifyPolicy, volunteer_id: str, exclude: list[int] = (),
                  rng: random.Random | None = None) -> Subject | None:
    """The next galaxy to offer the volunteer: not retired, never classified by them, not among ``exclude`` (the
    galaxies their page already holds); None when they have seen every galaxy left."""
    rng = rng or random.Random()
    seen = VolunteerClassification.objects.filter(galaxy=OuterRef("galaxy_id"), tree=policy.tree,
                                                  volunteer_id=volunteer_id, source=VolunteerClassification.Source.WEB)
    open_ = (Subject.objects.filter(dataset=policy.dataset, tree=policy.tree, retired_at__isnull=True)
             .exclude(galaxy_id__in=list(exclude)).exclude(Exists(seen)).select_related("galaxy"))
    choosers = [_most_useful, _least_classified]
    if rng.random() >= policy.useful_share:
        choosers.reverse()  # coverage first, usefulness when nothing is left to cover
    for chooser in choosers:
        subject = chooser(open_, rng)
        if subject is not None:
            return subject
    return None


def _most_useful(open_, rng: random.Random) -> Subject | None:
    """One of the CANDIDATES galaxies the model is least sure of (or the experts dispute)."""
    candidates = list(open_.filter(usefulness__gt=0).order_by("-usefulness", "shuffle")[:CANDIDATES])
    return rng.choice(candidates) if candidates else None


def _least_classified(open_, rng: random.Random) -> Subject | None:
    """A galaxy with the fewest classifications, drawn evenly among all of them: entered at a random point of their
    fixed shuffle order, so that volunteers arriving together spread over the catalogue instead of piling on the
    same few galaxies."""
    first = open_.order_by("n_classifications", "shuffle").first()
    if first is None:
        return None
    level = open_.filter(n_classifications=first.n_classifications)
    start = rng.random()
    candidates = (list(level.filter(shuffle__gte=start).order_by("shuffle")[:CANDIDATES])
                  or list(level.order_by("shuffle")[:CANDIDATES]))
    return rng.choice(candidates)


def classify_submit(*, policy: ClassifyPolicy, galaxy: Galaxy, answers: dict, volunteer_id: str,
                    user=None) -> VolunteerClassification:
    """Store a volunteer's classification (once: a second submit of the same galaxy returns the first, with
    ``created`` False), recount the galaxy's vote summaries, count it on the galaxy's subject and retire the
    galaxy when it has enough classifications or its volunteers and the model agree.

    Raises:
        ValidationError: when the answers do not follow the tree, or the galaxy is not in the policy's dataset.
    """
    if galaxy.dataset_id != policy.dataset_id:
        raise ValidationError({"galaxy": f"galaxy {galaxy.pk} is not in dataset {policy.dataset.name!r}"})
    with transaction.atomic():
        classification = classification_create(galaxy=galaxy, tree=policy.tree, answers=answers, user=user,
                                               volunteer_id=volunteer_id)
        # An excluded volunteer's classification is stored (they are not told) but counts towards nothing.
        if classification.created and not is_excluded(volunteer_id=volunteer_id, user_id=getattr(user, "pk", None)):
            subject, _ = Subject.objects.get_or_create(galaxy=galaxy, tree=policy.tree,
                                                       defaults={"dataset": policy.dataset,
                                                                 "shuffle": random.random()})
            Subject.objects.filter(pk=subject.pk).update(n_classifications=F("n_classifications") + 1)
            subject.refresh_from_db()
            if not subject.is_retired:
                _retire_if_done(policy, subject)
    return classification


def retirement_reason(*, policy: ClassifyPolicy, subject: Subject) -> str | None:
    """Why the subject should be retired now (a Subject.Retired value), or None while it should stay open."""
    if subject.n_classifications >= policy.retire_after:
        return Subject.Retired.COUNT
    if policy.early_rule is not None and subject.n_classifications >= policy.early_min_classifications \
            and volunteers_and_model_agree(policy=policy, galaxy_id=subject.galaxy_id):
        return Subject.Retired.AGREEMENT
    return None


def _retire_if_done(policy: ClassifyPolicy, subject: Subject) -> None:
    reason = retirement_reason(policy=policy, subject=subject)
    if reason is not None:
        Subject.objects.filter(pk=subject.pk, retired_at__isnull=True).update(retired_at=timezone.now(),
                                                                              retired_reason=reason)


def volunteers_and_model_agree(*, policy: ClassifyPolicy, galaxy_id: int) -> bool:
    """True when the consensus of the galaxy's votes here (under the policy's early rule) is a real class, at least
    early_min_agreement strong, and the probability model of the rule's schema gives that same class at least
    early_min_confidence."""
    rule = policy.early_rule
    summaries = VoteSummary.objects.filter(galaxy_id=galaxy_id, question__tree=policy.tree,
                                           source=VoteSummary.Source.AGGREGATED).values_list(
        "question__key", "fractions", "total")
    fractions = {key: shares for key, shares, _ in summaries}
    totals = {key: total for key, _, total in summaries}
    root = policy.tree.questions.order_by("order").values_list("key", flat=True).first()
    outcome = consensus(fractions, totals, rule.conditions, root=root, default_threshold=rule.default_threshold,
                        min_votes=0, uncertain=rule.uncertain_class_key)
    if outcome.class_key in (None, rule.uncertain_class_key) or outcome.agreement < policy.early_min_agreement:
        return False
    classifier = latest_classifier(feature_set=current_feature_set(dataset=policy.dataset), schema=rule.schema)
    if classifier is None:
        return False
    prediction = Prediction.objects.filter(classifier=classifier, galaxy_id=galaxy_id).select_related(
        "label_class").first()
    return (prediction is not None and prediction.label_class.key == outcome.class_key
            and prediction.probability >= policy.early_min_confidence)


def subjects_usefulness_refresh(*, dataset: Dataset) -> int:
    """Set each subject's usefulness from the model and the experts: 1 minus the probability the current model gives
    its likeliest class (its uncertainty), or 1 for a galaxy whose experts disagree. Called after a refit.

    Returns:
        Subjects updated.
    """
    policy = policy_for(dataset=dataset)
    if policy is None:
        return 0
    uncertainty: dict[int, float] = {}
    feature_set = current_feature_set(dataset=dataset)
    # The model of the early-retirement rule's schema when there is one, else every schema's latest model.
    classifiers = [] if feature_set is None else (
        [latest_classifier(feature_set=feature_set, schema=policy.early_rule.schema)] if policy.early_rule
        else [latest_classifier(feature_set=feature_set, schema=schema)
              for schema in LabelSchema.objects.filter(classifiers__feature_set=feature_set).distinct()])
    for classifier in filter(None, classifiers):
        for galaxy_id, probability in Prediction.objects.filter(classifier=classifier).values_list(
                "galaxy_id", "probability").iterator(chunk_size=WRITE_BATCH):
            uncertainty[galaxy_id] = max(uncertainty.get(galaxy_id, 0.0), 1.0 - probability)
    disputed = (ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True)
                .values("galaxy_id", "schema_id").annotate(classes=Count("label_class", distinct=True))
                .filter(classes__gt=1).values_list("galaxy_id", flat=True))
    for galaxy_id in disputed:
        uncertainty[galaxy_id] = 1.0
    updated = []
    for subject in Subject.objects.filter(dataset=dataset, tree=policy.tree).only("pk", "galaxy_id", "usefulness"):
        value = round(uncertainty.get(subject.galaxy_id, 0.0), 6)
        if subject.usefulness != value:
            subject.usefulness = value
            updated.append(subject)
    Subject.objects.bulk_update(updated, ["usefulness"], batch_size=WRITE_BATCH)
    return len(updated)
