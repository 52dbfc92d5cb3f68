"""The expert's pages: choosing what to label, the labelling page, agreement between experts, the admin's review of
disagreements, and who may open each."""

import re

import pytest
from django.urls import reverse

from labeling.models import ExpertLabel, LabelClass, LabelResolution
from labeling.selectors.agreement import agreement_stats
from labeling.selectors.labels import EXPERT, galaxy_labels
from labeling.services.labelling.labels import expert_label_set
from tests.labeling.ml_helpers import galaxy10_subset
from tests.labeling.queue_helpers import partly_labelled

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(tmp_path):
    return partly_labelled(tmp_path / "import")


def label(galaxy, schema, expert, key):
    return expert_label_set(galaxy=galaxy, schema=schema, expert=expert,
                            label_class=LabelClass.objects.get(schema=schema, key=key))


@pytest.fixture
def three_experts(labelled, expert, second_expert, django_user_model):
    """Six galaxies labelled by two or three experts: agree on four, disagree on two."""
    from django.contrib.auth.models import Group

    third = django_user_model.objects.create_user("tomas", password="pw-tomas")
    third.groups.add(Group.objects.get(name="experts"))
    dataset, schema = labelled
    galaxies = list(dataset.galaxies.order_by("pk")[:6])
    plan = [("2", "2", "2"), ("5", "5", "5"), ("8", "8", None), ("2", "2", None), ("2", "5", "5"), ("8", "2", None)]
    for galaxy, keys in zip(galaxies, plan, strict=True):
        for who, key in zip((expert, second_expert, third), keys, strict=True):
            if key:
                label(galaxy, schema, who, key)
    return dataset, schema, galaxies, third


def test_label_pages_are_for_experts_and_admins(client, labelled, expert, admin_user, volunteer, outsider):
    dataset, schema = labelled
    urls = [reverse("label-home"), reverse("label-page", args=[dataset.slug, schema.name]), reverse("agreement"),
            reverse("simulation-list")]
    for url in urls:
        assert client.get(url).status_code == 302, url  # anonymous: sign in first
    for user in (volunteer, outsider):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [403] * len(urls)
    for user in (expert, admin_user):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [200] * len(urls)


def test_the_label_menu_shows_for_experts_only(client, labelled, expert, volunteer):
    client.force_login(volunteer)
    assert 'href="/label/"' not in client.get(reverse("tree-list")).content.decode()
    client.force_login(expert)
    assert 'href="/label/"' in client.get(reverse("tree-list")).content.decode()


def test_the_label_home_lists_each_dataset_and_schema_with_the_experts_progress(client, labelled, expert):
    dataset, schema = labelled
    label(dataset.galaxies.order_by("pk").last(), schema, expert, "5")
    client.force_login(expert)
    page = client.get(reverse("label-home")).content.decode()
    assert dataset.name in page and reverse("label-page", args=[dataset.slug, schema.name]) in page
    assert "1 label from you today" in page


def test_the_label_page_carries_the_classes_with_their_shortcuts_and_the_api(client, labelled, expert):
    dataset, schema = labelled
    client.force_login(expert)
    response = client.get(reverse("label-page", args=[dataset.slug, schema.name]))
    config = response.context["config"]
    # Ten digits for the first ten classes; an eleventh ("uncertain") is chosen by its button.
    assert [c["shortcut"] for c in config["schema"]["classes"]] == [*"1234567890", ""]
    assert config["urls"]["next"] == reverse("api-queue-next")
    assert config["urls"]["skip"] == "/api/queue/ENTRY/skip/"
    assert client.get(reverse("label-page", args=[dataset.slug, "nonesuch"])).status_code == 404


def test_agreement_counts_pairs_kappas_and_disagreements(three_experts, expert, second_expert):
    dataset, schema, galaxies, third = three_experts
    stats = agreement_stats(schema=schema, dataset=dataset)
    assert stats.multi_labelled == 6 and stats.disagreements == 2
    pairs = {(p.first.username, p.second.username): p for p in stats.pairs}
    edwin_vera = pairs[("edwin", "vera")]
    assert edwin_vera.common == 6 and edwin_vera.agreement == pytest.approx(4 / 6)
    from sklearn.metrics import cohen_kappa_score

    a = ["2", "5", "8", "2", "2", "8"]
    b = ["2", "5", "8", "2", "5", "2"]
    assert edwin_vera.kappa == pytest.approx(cohen_kappa_score(a, b))
    assert pairs[("tomas", "vera")].common == 3 and pairs[("tomas", "vera")].agreement == 1.0
    assert -1 <= stats.fleiss_kappa < 1
    per_expert = {row.expert.username: row for row in stats.experts}
    assert per_expert["edwin"].labels == 6 and per_expert["edwin"].classes == {"2": 3, "5": 1, "8": 2}


def test_the_agreement_page_shows_the_figures(client, three_experts, expert):
    dataset, schema, *_ = three_experts
    client.force_login(expert)
    page = client.get(reverse("agreement"), {"schema": schema.name, "dataset": dataset.slug}).content.decode()
    assert 'data-pair="edwin+vera"' in page and "Fleiss" in page
    assert 'href="/review/' not in page  # experts see the figures; only admins review


def test_the_review_page_lists_disagreements_and_an_admin_resolves_one(client, three_experts, admin_user):
    dataset, schema, galaxies, _ = three_experts
    client.force_login(admin_user)
    page = client.get(reverse("review"), {"schema": schema.name}).content.decode()
    split = [galaxies[4].pk, galaxies[5].pk]
    assert all(f'data-galaxy="{pk}"' in page for pk in split)
    assert f'data-galaxy="{galaxies[0].pk}"' not in page
    response = client.post(reverse("review-resolve", args=[split[1]]), {
        "schema": schema.name, "label_class": "8", "note": "bar seen in the r band", "next": "/review/"})
    assert response.status_code == 302
    resolution = LabelResolution.objects.get(galaxy_id=split[1])
    assert (resolution.label_class.key, resolution.resolved_by, resolution.note) == (
        "8", admin_user, "bar seen in the r band")
    # The resolution is the galaxy's label from now on, and it leaves the list of open disagreements.
    assert galaxy_labels(dataset=dataset, schema=schema, source=EXPERT)[split[1]] == "8"
    page = client.get(reverse("review"), {"schema": schema.name}).content.decode()
    assert f'data-galaxy="{split[1]}"' not in page
    page = client.get(reverse("review"), {"schema": schema.name, "resolved": "1"}).content.decode()
    assert "Resolved as <strong>" in page


def test_review_and_resolve_are_for_admins_only(client, three_experts, expert):
    dataset, schema, galaxies, _ = three_experts
    resolve = reverse("review-resolve", args=[galaxies[4].pk])
    assert client.get(reverse("review")).status_code == 302
    assert client.post(resolve, {"schema": schema.name, "label_class": "8"}).status_code == 302
    client.force_login(expert)
    assert client.get(reverse("review")).status_code == 403
    assert client.post(resolve, {"schema": schema.name, "label_class": "8"}).status_code == 403
    assert not LabelResolution.objects.exists()


def test_resolving_with_a_class_of_another_schema_is_refused_with_a_message(client, three_experts, admin_user):
    dataset, schema, galaxies, _ = three_experts
    client.force_login(admin_user)
    response = client.post(reverse("review-resolve", args=[galaxies[4].pk]),
                           {"schema": schema.name, "label_class": "nonesuch"}, follow=True)
    assert "Choose one of the classes" in response.content.decode()
    assert not LabelResolution.objects.exists()


def test_a_resolve_redirect_never_leaves_the_site(client, three_experts, admin_user):
    dataset, schema, galaxies, _ = three_experts
    client.force_login(admin_user)
    response = client.post(reverse("review-resolve", args=[galaxies[4].pk]), {
        "schema": schema.name, "label_class": "8", "next": "https://evil.example/"})
    assert response.url == reverse("review")


def test_the_home_page_offers_the_expert_the_queue_experts_already_work_on(client, labelled, expert, tmp_path):
    dataset, schema = labelled
    unlabelled = galaxy10_subset(tmp_path / "other", per_class=10, name="Nobody labels this yet")
    ExpertLabel.objects.filter(galaxy__dataset=unlabelled).delete()  # more open galaxies, but no expert's work yet
    client.force_login(expert)
    page = client.get(reverse("home")).content.decode()
    start = re.search(r'id="start-labelling" href="([^"]+)">Label (\d+) galax', page)
    assert start.group(1) == reverse("label-page", args=[dataset.slug, schema.name])
    assert int(start.group(2)) == dataset.galaxies.count() - 6
    assert "Start a retrain cycle" not in page  # an admin's start, not an expert's


def test_the_home_page_says_so_when_every_galaxy_is_labelled(client, labelled, expert):
    dataset, schema = labelled
    for galaxy in dataset.galaxies.filter(expert_labels__isnull=True):
        label(galaxy, schema, expert, "2")
    client.force_login(expert)
    page = client.get(reverse("home")).content.decode()
    assert 'id="start-labelling"' not in page and "Every galaxy with an image has a label" in page
