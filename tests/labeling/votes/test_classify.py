"""Volunteers classifying here: a galaxy is offered to a volunteer once, a double submit stores one classification,
galaxies retire after N classifications or when volunteers and model agree, offers mix usefulness and coverage,
and the classify pages work for anonymous visitors with the CSRF token."""

import json
import random
from pathlib import PurePosixPath

import pytest
from django.test import Client

from labeling.models import ClassifyPolicy, ExpertLabel, Galaxy, Subject, VolunteerClassification, VoteSummary
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.votes.classify import (
    classify_next,
    classify_submit,
    subjects_ensure,
    subjects_usefulness_refresh,
)
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.labeling.api_helpers import api_world

pytestmark = pytest.mark.django_db

ROUND = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
EDGE_ON = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes", "edge-on-bulge": "none",
           "merging": "none"}


@pytest.fixture
def world(tmp_path):
    return api_world(tmp_path / "import")


@pytest.fixture
def policy(world):
    tree = tree_get_or_load_shipped(name="gz_decals")
    schema_get_or_load_shipped(name="galaxy10")
    rule = world.schema.rules.get(name="gz-decals-thresholds")
    policy = ClassifyPolicy.objects.create(dataset=world.dataset, tree=tree, retire_after=3, early_rule=rule,
                                           early_min_classifications=2, useful_share=0.0)
    subjects_ensure(policy=policy)
    return policy


def submit(policy, galaxy, volunteer, answers=ROUND):
    return classify_submit(policy=policy, galaxy=galaxy, answers=answers, volunteer_id=volunteer)


def test_every_galaxy_with_an_image_becomes_a_subject_once(policy):
    assert Subject.objects.filter(dataset=policy.dataset, tree=policy.tree).count() == 18
    assert subjects_ensure(policy=policy) == 0


def test_a_volunteer_is_never_offered_a_galaxy_twice_and_runs_out(policy):
    seen = []
    for _ in range(18):
        subject = classify_next(policy=policy, volunteer_id="session:a", rng=random.Random(len(seen)))
        assert subject.galaxy_id not in seen
        submit(policy, subject.galaxy, "session:a", EDGE_ON)  # edge-on: the model disagrees, nothing retires early
        seen.append(subject.galaxy_id)
    assert classify_next(policy=policy, volunteer_id="session:a") is None
    assert classify_next(policy=policy, volunteer_id="session:b") is not None


def test_a_double_submit_stores_one_classification_and_counts_once(policy):
    galaxy = policy.dataset.galaxies.order_by("pk").last()
    first = submit(policy, galaxy, "user:7", EDGE_ON)
    again = submit(policy, galaxy, "user:7", ROUND)
    assert first.created and not again.created and again.pk == first.pk
    assert VolunteerClassification.objects.filter(galaxy=galaxy, tree=policy.tree).count() == 1
    assert Subject.objects.get(galaxy=galaxy, tree=policy.tree).n_classifications == 1
    root = VoteSummary.objects.get(galaxy=galaxy, question__key="smooth-or-featured", source="aggregated")
    assert root.counts["featured-or-disk"] == 1 and root.total == 1


def test_a_galaxy_retires_after_the_policys_number_of_classifications(policy):
    policy.early_rule = None
    policy.save()
    galaxy = policy.dataset.galaxies.order_by("pk").last()
    for number in range(3):
        assert not Subject.objects.get(galaxy=galaxy, tree=policy.tree).is_retired
        submit(policy, galaxy, f"session:{number}")
    subject = Subject.objects.get(galaxy=galaxy, tree=policy.tree)
    assert subject.is_retired and subject.retired_reason == "count" and subject.n_classifications == 3
    offered = {classify_next(policy=policy, volunteer_id="session:new", rng=random.Random(seed)).galaxy_id
               for seed in range(40)}
    assert galaxy.pk not in offered


def test_a_galaxy_retires_early_when_volunteers_and_model_agree_and_not_when_they_differ(policy, world):
    round_smooth = ExpertLabel.objects.filter(galaxy__dataset=world.dataset, label_class__key="2").first().galaxy
    prediction = world.classifier.predictions.get(galaxy=round_smooth)
    assert prediction.label_class.key == "2" and prediction.probability >= policy.early_min_confidence
    submit(policy, round_smooth, "session:1")
    assert not Subject.objects.get(galaxy=round_smooth, tree=policy.tree).is_retired  # 1 < early minimum of 2
    submit(policy, round_smooth, "session:2")
    subject = Subject.objects.get(galaxy=round_smooth, tree=policy.tree)
    assert subject.is_retired and subject.retired_reason == "agreement"

    edge_on = ExpertLabel.objects.filter(galaxy__dataset=world.dataset, label_class__key="2").last().galaxy
    submit(policy, edge_on, "session:1", EDGE_ON)
    submit(policy, edge_on, "session:2", EDGE_ON)
    assert not Subject.objects.get(galaxy=edge_on, tree=policy.tree).is_retired


def test_coverage_offers_the_least_classified_and_usefulness_the_least_certain(policy, world):
    classified = policy.dataset.galaxies.order_by("pk")[:17]
    for galaxy in classified:
        submit(policy, galaxy, "session:x", EDGE_ON)
    untouched = policy.dataset.galaxies.order_by("pk").last()
    assert classify_next(policy=policy, volunteer_id="session:y").galaxy_id == untouched.pk

    assert subjects_usefulness_refresh(dataset=world.dataset) > 0
    least_certain = world.classifier.predictions.order_by("probability").first().galaxy_id
    policy.useful_share = 1.0
    policy.save()
    offered = {classify_next(policy=policy, volunteer_id="session:y", rng=random.Random(seed)).galaxy_id
               for seed in range(30)}
    assert least_certain in offered
    top = set(Subject.objects.filter(tree=policy.tree).order_by("-usefulness").values_list("galaxy_id", flat=True)[:10])
    assert offered <= top


def test_anonymous_volunteers_classify_through_the_pages_with_the_csrf_token(policy):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(f"/classify/{policy.dataset.slug}/")
    assert page.status_code == 200 and b"classify-config" in page.content
    galaxy = browser.get(f"/classify/{policy.dataset.slug}/next/").json()["galaxy"]
    url = f"/classify/{policy.dataset.slug}/submit/"
    body = {"galaxy": galaxy["id"], "answers": EDGE_ON}
    assert browser.post(url, body, content_type="application/json").status_code == 403  # no CSRF token
    token = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    first = browser.post(url, body, content_type="application/json", **token)
    assert first.status_code == 201 and first.json()["classified"] == 1
    again = browser.post(url, body, content_type="application/json", **token)  # the same offer, spent
    assert again.status_code == 409 and again.json()["code"] == "used"
    stored = VolunteerClassification.objects.get(galaxy_id=galaxy["id"], tree=policy.tree)
    assert stored.user is None and stored.volunteer_id.startswith("session:")
    assert browser.get(f"/classify/{policy.dataset.slug}/next/").json()["galaxy"]["id"] != galaxy["id"]


def test_volunteers_get_a_galaxys_pixels_but_not_its_id_file_name_or_catalogue_columns(policy):
    """The demo's ids name the answer ("g10_class_8_5"); so do its file names. Zooniverse hides both."""
    galaxies = policy.dataset.galaxies.all()
    assert all(galaxy.external_id.startswith("g10_class_") for galaxy in galaxies)
    galaxies.update(metadata={"label": "Edge-on with Bulge", "redshift": 0.0412})
    browser = Client()
    page = browser.get(f"/classify/{policy.dataset.slug}/").content.decode()
    payload = browser.get(f"/classify/{policy.dataset.slug}/next/").content.decode()
    offered = policy.dataset.galaxies.get(pk=json.loads(payload)["galaxy"]["id"])
    assert json.loads(payload)["galaxy"] == {
        "id": offered.pk, "image_url": f"/classify/{policy.dataset.slug}/image/{offered.pk}/"}
    file_name = PurePosixPath(offered.image.name).stem
    for sent in (page, payload):
        assert "g10_class" not in sent and offered.external_id not in sent and file_name not in sent
        assert "Edge-on with Bulge" not in sent and "redshift" not in sent and "/media/" not in sent

    image = browser.get(json.loads(payload)["galaxy"]["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content) == offered.image.open("rb").read()
    assert file_name not in image["Content-Disposition"] and "g10_class" not in str(image.headers)


def test_the_volunteers_image_url_serves_only_galaxies_with_an_image_of_the_dataset_classified(policy, world):
    other = Galaxy.objects.create(dataset=dataset_get_or_create(name="Elsewhere"), external_id="x")
    no_image = Galaxy.objects.create(dataset=policy.dataset, external_id="catalogue-only")
    galaxy = policy.dataset.galaxies.exclude(image="").first()
    client = Client()
    assert client.get(f"/classify/{policy.dataset.slug}/image/{other.pk}/").status_code == 404
    assert client.get(f"/classify/{policy.dataset.slug}/image/{no_image.pk}/").status_code == 404
    assert client.get(f"/classify/elsewhere/image/{galaxy.pk}/").status_code == 404  # no classify policy there
    assert client.post(f"/classify/{policy.dataset.slug}/image/{galaxy.pk}/").status_code == 405


@pytest.mark.parametrize("body, field", [
    (b"not json", "body"),
    ({"answers": ROUND}, "galaxy"),
    ({"galaxy": 2**70, "answers": ROUND}, "galaxy"),
    ({"galaxy": "OFFERED", "answers": {}}, "answers"),
    ({"galaxy": "OFFERED", "answers": {"smooth-or-featured": "spiral"}}, "answers"),
    ({"galaxy": "OFFERED", "answers": {"smooth-or-featured": 3}}, "answers"),
])
def test_a_bad_submission_is_a_400_naming_the_field_and_stores_nothing(client, policy, body, field):
    offered = client.get(f"/classify/{policy.dataset.slug}/next/").json()["galaxy"]["id"]
    if isinstance(body, dict) and body.get("galaxy") == "OFFERED":
        body = {**body, "galaxy": offered}
    url = f"/classify/{policy.dataset.slug}/submit/"
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not VolunteerClassification.objects.filter(tree=policy.tree).exists()
    # The offer is not spent by answers refused: the right ones still go in.
    assert client.post(url, {"galaxy": offered, "answers": ROUND}, content_type="application/json").status_code == 201


def test_a_dataset_without_a_classify_policy_has_no_classify_page(client, world):
    assert client.get(f"/classify/{world.dataset.slug}/").status_code == 404
    assert b"No dataset is open" in client.get("/classify/").content


def test_weighting_down_weights_a_contrarian_and_publishes_weighted_fractions(policy, world):
    from django.core.management import call_command

    galaxies = list(policy.dataset.galaxies.order_by("pk")[:4])
    for galaxy in galaxies:
        for number in range(2):
            submit(policy, galaxy, f"session:honest{number}", ROUND)
        # Calls everything an artefact: at odds with the others on the one question they all answer.
        submit(policy, galaxy, "session:contrarian", {"smooth-or-featured": "artifact"})
    call_command("weight_volunteers", "--dataset", world.dataset.name)
    root = VoteSummary.objects.get(galaxy=galaxies[0], question__key="smooth-or-featured", source="aggregated")
    assert root.fractions["smooth"] == pytest.approx(2 / 3)
    assert root.extra["weighted_fraction"]["smooth"] > 0.9  # the contrarian's vote barely counts
