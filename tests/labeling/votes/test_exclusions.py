"""Excluding a volunteer (services/votes/exclusions.py): their classifications stay on record but leave the vote
summaries, the subjects' counts and retirement, the weights and the consensus, which are recounted to the figures
they would have without them; including them again restores every figure; later classifications of an excluded
volunteer are stored and not counted; only admins may exclude."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from labeling.models import (
    ConsensusLabel,
    ConsensusRule,
    Subject,
    VolunteerClassification,
    VolunteerExclusion,
    VolunteerWeight,
    VoteSummary,
)
from labeling.services.votes.aggregation import votes_aggregate
from labeling.services.votes.classify import classify_submit
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.exclusions import volunteer_exclude, volunteer_include
from labeling.services.votes.weighting import volunteers_weight
from tests.labeling.factories import make_galaxies
from tests.labeling.screening_helpers import BOT, ROUND, figures, screening_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(volunteer):
    return screening_world(volunteer)


def root(galaxy):
    return VoteSummary.objects.get(galaxy=galaxy, question__key="smooth-or-featured", source="aggregated")


def test_excluding_a_volunteer_recounts_to_the_figures_without_them_and_keeps_their_rows(world, admin_user):
    before = figures(world.tree)
    exclusion, result = volunteer_exclude(volunteer=BOT, reason="a galaxy a second", admin=admin_user)

    excluded = figures(world.tree)
    assert excluded != before and result["galaxies"] == 4
    assert root(world.galaxies[0]).counts["smooth"] == 3 and root(world.galaxies[0]).total == 4
    assert VolunteerClassification.objects.filter(volunteer_id=BOT).count() == 4
    assert (exclusion.volunteer, exclusion.reason, exclusion.excluded_by) == (BOT, "a galaxy a second", admin_user)
    with transaction.atomic():  # the same world without the bot at all
        VolunteerClassification.objects.filter(volunteer_id=BOT).delete()
        VolunteerExclusion.objects.all().delete()
        votes_aggregate(tree=world.tree)
        assert figures(world.tree) == excluded
        transaction.set_rollback(True)


def test_including_them_again_restores_every_figure_and_keeps_the_record(world, admin_user):
    before = figures(world.tree)
    volunteer_exclude(volunteer=BOT, reason="fast", admin=admin_user)
    exclusion, _ = volunteer_include(volunteer=BOT, admin=admin_user, note="a fast human after all")

    assert figures(world.tree) == before
    assert exclusion.included_by == admin_user and exclusion.included_at is not None
    assert not exclusion.in_force and exclusion.included_note == "a fast human after all"
    # A second exclusion is a new record beside the first.
    volunteer_exclude(volunteer=BOT, reason="fast again", admin=admin_user)
    assert VolunteerExclusion.objects.filter(volunteer=BOT).count() == 2


def test_galaxies_retired_by_their_votes_reopen_and_retire_again(world, admin_user):
    subjects = Subject.objects.filter(tree=world.tree, galaxy__dataset=world.dataset)
    assert all(s.is_retired and s.n_classifications == 5 for s in subjects)

    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    assert all(not s.is_retired and s.n_classifications == 4 for s in subjects.all())

    volunteer_include(volunteer=BOT, admin=admin_user)
    assert all(s.retired_reason == Subject.Retired.COUNT and s.n_classifications == 5 for s in subjects.all())


def test_an_admins_retirement_stands_whatever_the_count(world, admin_user):
    subject = Subject.objects.get(galaxy=world.galaxies[0], tree=world.tree)
    Subject.objects.filter(pk=subject.pk).update(retired_reason=Subject.Retired.ADMIN)
    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    subject.refresh_from_db()
    assert subject.is_retired and subject.retired_reason == Subject.Retired.ADMIN and subject.n_classifications == 4


def test_the_consensus_is_computed_again_for_the_galaxies_they_classified(world, admin_user):
    rule = ConsensusRule.objects.get(name="gz-decals-thresholds")
    consensus_compute(rule=rule, dataset=world.dataset)
    def labels():
        return list(ConsensusLabel.objects.filter(galaxy__dataset=world.dataset).values_list("label_class__key",
                                                                                             "n_votes"))

    assert labels() == [("2", 5)] * 4

    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    assert labels() == []  # four votes left, the rule wants five

    volunteer_include(volunteer=BOT, admin=admin_user)
    assert labels() == [("2", 5)] * 4


def test_a_galaxy_only_they_classified_loses_its_consensus_label(world, admin_user):
    rule = ConsensusRule.objects.get(name="gz-decals-thresholds")
    ConsensusRule.objects.filter(pk=rule.pk).update(min_votes=1)
    rule.refresh_from_db()
    only_bot = make_galaxies(1, dataset_name=world.dataset.name, prefix="bot-only-")[0]
    classify_submit(policy=world.policy, galaxy=only_bot, answers=ROUND, volunteer_id=BOT)
    consensus_compute(rule=rule, dataset=world.dataset)
    assert ConsensusLabel.objects.filter(galaxy=only_bot).exists()

    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    assert not ConsensusLabel.objects.filter(galaxy=only_bot).exists()
    assert ConsensusLabel.objects.filter(galaxy__in=world.galaxies).count() == 4  # four votes each are enough


def test_the_weights_are_computed_again_without_them(world, admin_user):
    volunteers_weight(dataset=world.dataset, tree=world.tree)
    weights = VolunteerWeight.objects.filter(dataset=world.dataset, tree=world.tree)
    assert weights.get(volunteer=world.contrarian).kappa < weights.get(volunteer=BOT).kappa
    assert root(world.galaxies[0]).extra["weighted_fraction"]["smooth"] == pytest.approx(0.8)

    volunteer_exclude(volunteer=world.contrarian, reason="contrarian", admin=admin_user)
    assert not weights.filter(volunteer=world.contrarian).exists()
    assert root(world.galaxies[0]).extra["weighted_fraction"]["smooth"] == 1.0
    assert root(world.galaxies[0]).fractions["smooth"] == 1.0


def test_a_later_classification_of_an_excluded_volunteer_is_stored_but_counts_nowhere(world, admin_user):
    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    fresh = make_galaxies(1, dataset_name=world.dataset.name, prefix="fresh-")[0]

    stored = classify_submit(policy=world.policy, galaxy=fresh, answers=ROUND, volunteer_id=BOT)

    assert stored.created and VolunteerClassification.objects.filter(galaxy=fresh, volunteer_id=BOT).exists()
    assert not VoteSummary.objects.filter(galaxy=fresh).exists()
    assert not Subject.objects.filter(galaxy=fresh, n_classifications__gt=0).exists()
    # A recount of the whole tree leaves them out as well.
    votes_aggregate(tree=world.tree)
    assert not VoteSummary.objects.filter(galaxy=fresh).exists()
    assert root(world.galaxies[1]).total == 4


def test_excluding_a_signed_in_volunteer_covers_their_classifications_stored_without_an_id(world, volunteer,
                                                                                            admin_user):
    fresh = make_galaxies(1, dataset_name=world.dataset.name, prefix="api-")[0]
    VolunteerClassification.objects.create(galaxy=fresh, tree=world.tree, answers=ROUND, user=volunteer)
    votes_aggregate(tree=world.tree, galaxy_ids=[fresh.pk])
    assert root(fresh).total == 1

    volunteer_exclude(volunteer=world.contrarian, reason="contrarian", admin=admin_user)
    assert not VoteSummary.objects.filter(galaxy=fresh).exists()


@pytest.mark.parametrize("who", ["expert", "volunteer", None])
def test_only_admins_may_exclude_or_include(world, request, who, admin_user):
    user = request.getfixturevalue(who) if who else None
    with pytest.raises(PermissionDenied):
        volunteer_exclude(volunteer=BOT, reason="bot", admin=user)
    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    with pytest.raises(PermissionDenied):
        volunteer_include(volunteer=BOT, admin=user)
    assert VolunteerExclusion.objects.get().in_force


@pytest.mark.parametrize("volunteer_key, reason, field", [
    ("session:nobody", "bot", "volunteer"),
    ("", "bot", "volunteer"),
    (BOT, "  ", "reason"),
])
def test_it_refuses_an_unknown_volunteer_or_no_reason(world, admin_user, volunteer_key, reason, field):
    with pytest.raises(ValidationError) as error:
        volunteer_exclude(volunteer=volunteer_key, reason=reason, admin=admin_user)
    assert field in error.value.message_dict
    assert not VolunteerExclusion.objects.exists()


def test_it_refuses_to_exclude_twice_or_to_include_someone_not_excluded(world, admin_user):
    with pytest.raises(ValidationError, match="not excluded"):
        volunteer_include(volunteer=BOT, admin=admin_user)
    volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    with pytest.raises(ValidationError, match="excluded already"):
        volunteer_exclude(volunteer=BOT, reason="bot", admin=admin_user)
    assert VolunteerExclusion.objects.count() == 1


def test_summaries_weighted_before_weights_were_kept_are_weighted_again(world, admin_user):
    volunteers_weight(dataset=world.dataset, tree=world.tree)
    VolunteerWeight.objects.all().delete()  # as a weighting from before this table would have left them
    volunteer_exclude(volunteer=world.contrarian, reason="contrarian", admin=admin_user)
    assert root(world.galaxies[0]).extra["weighted_fraction"]["smooth"] == 1.0
