"""Which galaxies a Zooniverse subject set holds: the ones the latest probability model is least sure of (the
queue's uncertainty, in its order), one cluster of a clustering, or the galaxy list's filters; bad choices are
refused saying what to give or run instead."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from labeling.models import ClusterAssignment, ExpertLabel, Galaxy, Prediction
from labeling.services.exports import subject_choice
from tests.labeling.exports.subject_helpers import manifest, modelled, subjects
from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path):
    return modelled(tmp_path / "import")


def chosen_ids(out) -> list[int]:
    return [int(row["#galaxy_pk"]) for row in manifest(out)[1]]


def test_the_least_sure_are_the_unlabelled_galaxies_of_smallest_margin_most_uncertain_first(world, tmp_path):
    labelled = set(ExpertLabel.objects.filter(galaxy__dataset=world.dataset).values_list("galaxy_id", flat=True))
    classes = list(world.classifier.classes)
    margin = {}
    for galaxy_id, probabilities in Prediction.objects.filter(classifier=world.classifier).values_list(
            "galaxy_id", "probabilities"):
        top = sorted((probabilities.get(key, 0.0) for key in classes), reverse=True)
        margin[galaxy_id] = 1.0 - (top[0] - top[1])
    expected = sorted((g for g in margin if g not in labelled), key=lambda g: -margin[g])[:5]

    subjects(world.dataset, tmp_path / "least sure", "--least-sure", "5")

    assert chosen_ids(tmp_path / "least sure") == expected
    reasons = [row["#reason"] for row in manifest(tmp_path / "least sure")[1]]
    assert reasons[0].startswith("least sure #1: margin ") and f"model #{world.classifier.pk}" in reasons[0]
    scores = [float(reason.split("margin ")[1].split(" ")[0]) for reason in reasons]
    assert scores == sorted(scores, reverse=True)


def test_asking_for_more_least_sure_galaxies_than_are_unlabelled_gives_them_all(world):
    chosen = subject_choice.least_sure(dataset=world.dataset, n=100)

    assert len(chosen.galaxy_ids) == 12  # 18 galaxies, 6 labelled


def test_a_cluster_is_every_galaxy_the_clustering_put_in_it(world, tmp_path):
    clustering = clustered(world.feature_set, k=3)
    members = sorted(ClusterAssignment.objects.filter(clustering=clustering, cluster=1)
                     .values_list("galaxy_id", flat=True))

    subjects(world.dataset, tmp_path / "cluster", "--clustering", str(clustering.pk), "--cluster", "1")

    assert chosen_ids(tmp_path / "cluster") == members
    assert manifest(tmp_path / "cluster")[1][0]["#reason"] == f"cluster 1 of clustering {clustering.pk} (kmeans; k=3)"


def test_filters_keep_what_the_galaxy_list_keeps_and_limit_samples_them(world, tmp_path):
    unlabelled = sorted(Galaxy.objects.filter(dataset=world.dataset).exclude(
        pk__in=ExpertLabel.objects.values("galaxy_id")).values_list("pk", flat=True))
    fives = sorted(ExpertLabel.objects.filter(label_class__key="5").values_list("galaxy_id", flat=True))

    subjects(world.dataset, tmp_path / "none", "--schema", "galaxy10", "--labelled", "none")
    subjects(world.dataset, tmp_path / "fives", "--schema", "galaxy10", "--expert-class", "5")
    subjects(world.dataset, tmp_path / "three", "--schema", "galaxy10", "--labelled", "none", "--limit", "3")

    assert chosen_ids(tmp_path / "none") == unlabelled and len(unlabelled) == 12
    assert chosen_ids(tmp_path / "fives") == fives and len(fives) == 2
    three = chosen_ids(tmp_path / "three")
    assert len(three) == 3 and set(three) <= set(unlabelled)
    assert manifest(tmp_path / "none")[1][0]["#reason"] == "filter: schema=galaxy10; labelled=none"


def test_no_probability_model_yet_says_what_to_run_first(tmp_path):
    bare = galaxy10_subset(tmp_path / "bare", name="bare")

    with pytest.raises(CommandError, match=r"has no probability model yet: extract its features \(manage.py "
                                           r"extract_features --dataset 'bare'\)"):
        subjects(bare, tmp_path / "out", "--least-sure", "5")
    extracted(bare)
    with pytest.raises(CommandError, match="has no probability model yet"):
        subjects(bare, tmp_path / "out", "--least-sure", "5")
    with pytest.raises(CommandError, match="no probability model of schema 'galaxy10' on dataset 'bare' yet"):
        subjects(bare, tmp_path / "out", "--least-sure", "5", "--schema", "galaxy10")
    assert not (tmp_path / "out").exists()


def test_bad_choices_are_refused_naming_the_option(world, tmp_path):
    clustering = clustered(world.feature_set, k=3)
    out = tmp_path / "out"
    refused = [
        (("--least-sure", "0"), "least-sure: 0 is not a whole number of galaxies of at least 1"),
        (("--limit", "0"), "limit: 0 is not a whole number of galaxies of at least 1"),
        (("--clustering", str(clustering.pk + 100), "--cluster", "0"),
         rf"no clustering {clustering.pk + 100} of dataset .* \(its clusterings: {clustering.pk} \(kmeans, k=3\)\)"),
        (("--clustering", str(clustering.pk), "--cluster", "7"),
         f"cluster: clustering {clustering.pk} has clusters 0 to 2, not 7"),
        (("--cluster", "1"), "--clustering ID and --cluster K go together"),
        (("--least-sure", "3", "--labelled", "none"), "--least-sure takes no --clustering, --cluster, filter"),
        (("--labelled", "none"), r"labelled: needs a schema \(--schema\)"),
        (("--labelled", "maybe", "--schema", "galaxy10"), "labelled: 'maybe' is not one of expert, consensus, none"),
        (("--expert-class", "42", "--schema", "galaxy10"), "expert-class: schema 'galaxy10' has no class '42'"),
        (("--schema", "nope"), "schema: no label schema 'nope'"),
        (("--search", "no such galaxy"), "no galaxies with an image were chosen .*: nothing to upload"),
        (("--layout", "zoobot"), "--layout: not an option of --what subjects"),
    ]
    for options, message in refused:
        with pytest.raises(CommandError, match=message):
            subjects(world.dataset, out, *options)
        assert not out.exists(), options
    with pytest.raises(CommandError, match="--what subjects goes with --format zooniverse"):
        call_command("export", "--dataset", world.dataset.name, "--what", "subjects", "--format", "csv")
    with pytest.raises(CommandError, match="--least-sure: not an option of --what labels"):
        call_command("export", "--dataset", world.dataset.name, "--what", "labels", "--format", "csv",
                     "--least-sure", "3")


def test_a_sample_is_the_same_for_the_same_seed(world):
    first = subject_choice.filtered(dataset=world.dataset, limit=5, seed=1)
    again = subject_choice.filtered(dataset=world.dataset, limit=5, seed=1)

    assert first.galaxy_ids == again.galaxy_ids == sorted(first.galaxy_ids)
    assert np.unique(first.galaxy_ids).size == 5
