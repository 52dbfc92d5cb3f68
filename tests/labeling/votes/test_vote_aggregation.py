import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from labeling.models import VolunteerClassification, VoteSummary
from labeling.services.votes.aggregation import classification_create, votes_aggregate
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db

SMOOTH_ROUND = {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a16_completely_round", "t06_odd": "a15_no"}
DISK_EDGE_ON = {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a04_yes",
                "t09_bulge_shape": "a25_rounded", "t06_odd": "a15_no"}


def summary(galaxy, key):
    return VoteSummary.objects.get(galaxy=galaxy, question__key=key, source=VoteSummary.Source.AGGREGATED)


def test_classifications_aggregate_into_counts_fractions_and_reach(volunteer):
    tree = tree_get_or_load_shipped(name="gz2")
    galaxy = make_galaxies(1)[0]
    for answers in [SMOOTH_ROUND, SMOOTH_ROUND, SMOOTH_ROUND, DISK_EDGE_ON]:
        classification_create(galaxy=galaxy, tree=tree, answers=answers, user=volunteer)
    root = summary(galaxy, "t01_smooth_or_features")
    assert root.counts == {"a01_smooth": 3, "a02_features_or_disk": 1, "a03_star_or_artifact": 0}
    assert root.total == 4 and root.fractions["a01_smooth"] == 0.75 and root.reach == 1.0
    edge = summary(galaxy, "t09_bulge_shape")
    assert edge.total == 1 and edge.reach == 0.25
    assert summary(galaxy, "t03_bar").total == 0


def test_a_walk_that_breaks_the_tree_is_refused_and_not_stored(volunteer):
    tree = tree_get_or_load_shipped(name="gz2")
    galaxy = make_galaxies(1)[0]
    with pytest.raises(ValidationError, match="t03_bar"):
        classification_create(galaxy=galaxy, tree=tree, user=volunteer,
                              answers={"t01_smooth_or_features": "a01_smooth", "t03_bar": "a06_bar"})
    assert not VolunteerClassification.objects.exists()


def test_reaggregating_updates_only_what_changed():
    tree = tree_get_or_load_shipped(name="gz2")
    galaxy = make_galaxies(1)[0]
    VolunteerClassification.objects.create(galaxy=galaxy, tree=tree, answers=SMOOTH_ROUND)
    votes_aggregate(tree=tree)
    before = summary(galaxy, "t01_smooth_or_features").updated_at
    votes_aggregate(tree=tree)
    assert summary(galaxy, "t01_smooth_or_features").updated_at == before
    VolunteerClassification.objects.create(galaxy=galaxy, tree=tree, answers=DISK_EDGE_ON)
    call_command("aggregate_votes", "--tree", "gz2")
    assert summary(galaxy, "t01_smooth_or_features").total == 2
