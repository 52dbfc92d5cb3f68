import pytest

from labeling.models import ConsensusLabel, ExpertLabel, VoteSummary
from labeling.services.labelling.labels import expert_label_set
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule():
    schema = schema_get_or_load_shipped(name="broad-morphology")
    return schema.rules.get(name="gz2-thresholds")


def put_votes(galaxy, tree, counts_by_question, source=VoteSummary.Source.CATALOGUE):
    for question in tree.questions.prefetch_related("answers"):
        counts = {a.key: counts_by_question.get(question.key, {}).get(a.key, 0) for a in question.answers.all()}
        total = sum(counts.values())
        VoteSummary.objects.create(
            galaxy=galaxy, question=question, source=source, counts=counts, total=total,
            fractions={k: (v / total if total else 0.0) for k, v in counts.items()},
        )


def test_votes_past_every_threshold_give_the_class(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {
        "t01_smooth_or_features": {"a02_features_or_disk": 30, "a01_smooth": 5},
        "t02_edgeon": {"a05_no": 28, "a04_yes": 2},
        "t04_spiral": {"a08_spiral": 25, "a09_no_spiral": 3},
    })
    tally = consensus_compute(rule=rule)
    label = ConsensusLabel.objects.get(galaxy=galaxy)
    assert tally == {"spiral": 1}
    assert label.label_class.key == "spiral" and label.n_votes == 35
    assert label.agreement == pytest.approx(30 / 35)


def test_split_votes_give_uncertain(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 12, "a02_features_or_disk": 10}})
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "uncertain"


def test_too_few_votes_give_no_consensus_and_remove_an_old_one(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 20}})
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "elliptical"
    VoteSummary.objects.filter(galaxy=galaxy).delete()
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 3}})
    assert consensus_compute(rule=rule) == {"too_few_votes": 1}
    assert not ConsensusLabel.objects.filter(galaxy=galaxy).exists()


def test_a_galaxy_that_lost_all_its_votes_loses_its_label_and_others_keep_theirs(rule):
    gone, kept, elsewhere = make_galaxies(2) + make_galaxies(1, dataset_name="other")
    for galaxy in (gone, kept, elsewhere):
        put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 20}})
    consensus_compute(rule=rule)
    VoteSummary.objects.filter(galaxy__in=[gone, elsewhere]).delete()
    assert consensus_compute(rule=rule, dataset=gone.dataset) == {"elliptical": 1, "too_few_votes": 1}
    assert set(ConsensusLabel.objects.values_list("galaxy", flat=True)) == {kept.pk, elsewhere.pk}
    consensus_compute(rule=rule)
    assert set(ConsensusLabel.objects.values_list("galaxy", flat=True)) == {kept.pk}


def test_the_threshold_is_configurable(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 14, "a02_features_or_disk": 6}})
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "elliptical"  # 0.70 >= 0.6
    rule.default_threshold = 0.8
    rule.save()
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "uncertain"


def test_consensus_never_touches_an_expert_label(rule, expert):
    galaxy = make_galaxies(1)[0]
    schema = rule.schema
    expert_label_set(galaxy=galaxy, schema=schema, label_class=schema.classes.get(key="spiral"), expert=expert)
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 40}})
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "elliptical"
    assert ExpertLabel.objects.get(galaxy=galaxy).label_class.key == "spiral"


def test_the_source_with_more_volunteers_decides(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 40}})
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a02_features_or_disk": 12}},
              source=VoteSummary.Source.AGGREGATED)
    consensus_compute(rule=rule)
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "elliptical"


# Which fractions decide -------------------------------------------------------------------------------------------

def publish(galaxy, question_key, suffix, values):
    summary = VoteSummary.objects.get(galaxy=galaxy, question__key=question_key)
    summary.extra = {**summary.extra, suffix: values}
    summary.save()


def test_published_debiased_fractions_decide_over_raw_ones_and_the_label_says_so(rule):
    # objid 8647474690313683572 of the Stripe 82 table: raw smooth 0.706, debiased smooth 0.125 / features 0.965.
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 12, "a02_features_or_disk": 5},
                                  "t02_edgeon": {"a05_no": 5}, "t04_spiral": {"a08_spiral": 1, "a09_no_spiral": 4}})
    publish(galaxy, "t01_smooth_or_features", "debiased",
            {"a01_smooth": 0.125, "a02_features_or_disk": 0.965, "a03_star_or_artifact": 0.0})
    publish(galaxy, "t02_edgeon", "debiased", {"a04_yes": 0.0, "a05_no": 1.0})
    publish(galaxy, "t04_spiral", "debiased", {"a08_spiral": 0.2, "a09_no_spiral": 0.8})

    consensus_compute(rule=rule)

    label = ConsensusLabel.objects.get(galaxy=galaxy)
    assert (label.label_class.key, label.fractions_used) == ("lenticular", "debiased")
    assert label.agreement == pytest.approx(0.8)


def test_a_rule_that_asks_for_raw_fractions_ignores_the_debiased_ones(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 12, "a02_features_or_disk": 5}})
    publish(galaxy, "t01_smooth_or_features", "debiased", {"a01_smooth": 0.125, "a02_features_or_disk": 0.965})
    rule.fractions = ["raw"]
    rule.save()

    consensus_compute(rule=rule)

    label = ConsensusLabel.objects.get(galaxy=galaxy)
    assert (label.label_class.key, label.fractions_used) == ("elliptical", "raw")


def test_aggregated_votes_without_debiased_fractions_fall_back_to_weighted_then_raw(rule):
    weighted, plain = make_galaxies(2)
    for galaxy in (weighted, plain):
        put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a01_smooth": 11, "a02_features_or_disk": 9}},
                  source=VoteSummary.Source.AGGREGATED)
    publish(weighted, "t01_smooth_or_features", "weighted_fraction",
            {"a01_smooth": 0.75, "a02_features_or_disk": 0.25, "a03_star_or_artifact": 0.0})

    consensus_compute(rule=rule)

    labels = {label.galaxy: label for label in ConsensusLabel.objects.all()}
    assert (labels[weighted].label_class.key, labels[weighted].fractions_used) == ("elliptical", "weighted")
    assert (labels[plain].label_class.key, labels[plain].fractions_used) == ("uncertain", "raw")


def test_a_question_without_debiased_fractions_is_named_as_a_fallback(rule):
    galaxy = make_galaxies(1)[0]
    put_votes(galaxy, rule.tree, {"t01_smooth_or_features": {"a02_features_or_disk": 20},
                                  "t02_edgeon": {"a05_no": 20}, "t04_spiral": {"a08_spiral": 18, "a09_no_spiral": 2}})
    publish(galaxy, "t01_smooth_or_features", "debiased", {"a01_smooth": 0.0, "a02_features_or_disk": 1.0})

    consensus_compute(rule=rule)

    label = ConsensusLabel.objects.get(galaxy=galaxy)
    assert (label.label_class.key, label.fractions_used) == ("spiral", "debiased, raw")
