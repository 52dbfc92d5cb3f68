"""debias_votes: our own classifications' features fraction debiased for redshift, stored beside the raw one, read
by the consensus rules and shown on the galaxy page."""

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import ConsensusLabel, Question, VoteSummary
from labeling.selectors.catalogue import votes_by_tree
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db
T01 = "t01_smooth_or_features"


@pytest.fixture
def rule():
    return schema_get_or_load_shipped(name="broad-morphology").rules.get(name="gz2-thresholds")


@pytest.fixture
def faded(rule):
    """500 disks of similar physical sizes whose volunteers see fewer features further away; 10 lack a redshift."""
    rng = np.random.default_rng(1)
    galaxies = make_galaxies(500, dataset_name="faded")
    t01 = Question.objects.get(tree=rule.tree, key=T01)
    for i, galaxy in enumerate(galaxies):
        redshift = float(rng.uniform(0.02, 0.15))
        physical = float(rng.uniform(0.2, 0.4))
        galaxy.metadata = {"redshift": redshift, "petroR50_r": physical / redshift} if i < 490 else {}
        galaxy.save()
        features = int(round(30 * (0.95 - 5 * (redshift - 0.02))))
        counts = {"a01_smooth": 30 - features, "a02_features_or_disk": features, "a03_star_or_artifact": 0}
        VoteSummary.objects.create(galaxy=galaxy, question=t01, source=VoteSummary.Source.AGGREGATED, counts=counts,
                                   total=30, fractions={k: v / 30 for k, v in counts.items()})
    return galaxies


def debias(*extra):
    out = io.StringIO()
    call_command("debias_votes", "--dataset", "faded", "--tree", "gz2", "--question", T01,
                 "--answer", "a02_features_or_disk", *extra, stdout=out)
    return out.getvalue().strip()


def test_far_galaxies_get_their_features_back_and_the_rest_are_left_alone(faded):
    assert debias() == f"{T01} on 'faded': 490 galaxies debiased, 10 left alone (no redshift or size in their metadata)"

    summaries = VoteSummary.objects.filter(galaxy__dataset__name="faded").select_related("galaxy")
    far = [s for s in summaries if s.galaxy.metadata.get("redshift", 0) > 0.12]
    raw = np.mean([s.fractions["a02_features_or_disk"] for s in far])
    debiased = np.mean([s.extra["debiased"]["a02_features_or_disk"] for s in far])
    assert raw < 0.5 < 0.8 < debiased
    for summary in far:
        assert sum(summary.extra["debiased"].values()) == pytest.approx(1.0)
        assert summary.fractions["a02_features_or_disk"] < summary.extra["debiased"]["a02_features_or_disk"]
    assert all("debiased" not in s.extra for s in summaries if not s.galaxy.metadata)


def test_consensus_reads_the_debiased_fractions_and_the_galaxy_page_shows_both(faded, rule, client, expert):
    debias()
    consensus_compute(rule=rule)
    far = max(faded[:490], key=lambda g: g.metadata["redshift"])
    label = ConsensusLabel.objects.get(galaxy=far)
    assert label.fractions_used == "debiased" and label.label_class.key != "elliptical"
    bars = {bar.key: bar for bar in votes_by_tree(far)[0].questions[0].answers}
    assert bars["a01_smooth"].fraction > 0.5 and bars["a01_smooth"].debiased < 0.5
    client.force_login(expert)
    html = client.get(reverse("galaxy-detail", args=[far.pk])).content.decode()
    assert f'{round(100 * bars["a01_smooth"].debiased)}% debiased</span>' in html
    assert "<td class=\"small\">debiased</td>" in html  # the consensus table's Fractions column


def test_it_names_an_unknown_answer_or_question(faded):
    with pytest.raises(CommandError, match="no answer 'a99'"):
        call_command("debias_votes", "--dataset", "faded", "--tree", "gz2", "--question", T01, "--answer", "a99")
    with pytest.raises(CommandError, match="no question 't99'"):
        call_command("debias_votes", "--dataset", "faded", "--tree", "gz2", "--question", "t99", "--answer", "a")
