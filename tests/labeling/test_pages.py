import io

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from labeling.models import ConsensusLabel, Galaxy, VoteSummary
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.labelling.labels import expert_label_set
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped

pytestmark = pytest.mark.django_db


def png_bytes(size=(48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_galaxy(dataset, external_id, *, image=False, **fields) -> Galaxy:
    galaxy = Galaxy.objects.create(dataset=dataset, external_id=external_id, **fields)
    if image:
        galaxy.image.save(f"{external_id}.png", ContentFile(png_bytes()), save=False)
        galaxy.width, galaxy.height = 48, 40
        galaxy.save()
    return galaxy


@pytest.fixture
def schema():
    return schema_get_or_load_shipped(name="galaxy10")


@pytest.fixture
def gz2():
    return tree_get_or_load_shipped(name="gz2")


@pytest.fixture
def dataset():
    return dataset_get_or_create(name="Test galaxies", survey="SDSS", licence="MIT", attribution="Someone et al.")


def give_expert_label(galaxy, schema, key, expert, **extra):
    return expert_label_set(galaxy=galaxy, schema=schema, label_class=schema.classes.get(key=key), expert=expert,
                            **extra)


def give_consensus(galaxy, schema, key, *, agreement=0.8, n_votes=40):
    return ConsensusLabel.objects.create(galaxy=galaxy, schema=schema, rule=schema.rules.first(),
                                         label_class=schema.classes.get(key=key), agreement=agreement,
                                         n_votes=n_votes)


def put_votes(galaxy, tree, counts_by_question, *, source=VoteSummary.Source.CATALOGUE):
    for question in tree.questions.filter(key__in=counts_by_question):
        counts = counts_by_question[question.key]
        total = sum(counts.values())
        VoteSummary.objects.create(galaxy=galaxy, question=question, source=source, counts=counts, total=total,
                                   fractions={k: (v / total if total else 0.0) for k, v in counts.items()},
                                   reach=1.0 if total else 0.0)


@pytest.fixture
def logged_in(client, expert):
    client.force_login(expert)
    return client


def tile_ids(response) -> list[str]:
    return [galaxy.external_id for galaxy in response.context["page"].object_list]


@pytest.mark.parametrize("name, args", [("dataset-list", []), ("galaxy-list", []), ("galaxy-detail", [1])])
def test_anonymous_visitors_are_sent_to_the_login_page(client, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("who, lands_on", [("outsider", "classify-home"), ("expert", "home")])
def test_a_user_logs_in_through_the_form_and_lands_on_the_page_for_their_role(client, request, who, lands_on):
    user = request.getfixturevalue(who)
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": user.username, "password": f"pw-{user.username}"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    landed = client.get(reverse("home"), follow=True)
    assert landed.status_code == 200 and landed.request["PATH_INFO"] == reverse(lands_on)


def test_a_wrong_password_shows_an_error_and_logs_nobody_in(client, outsider):
    response = client.post(reverse("login"), {"username": "olga", "password": "wrong"})
    assert response.status_code == 200 and b"form-error" in response.content
    assert client.get(reverse("dataset-list")).status_code == 302


def test_logging_out_takes_a_post_and_ends_the_session(logged_in):
    assert logged_in.post(reverse("logout")).status_code == 302
    assert logged_in.get(reverse("dataset-list")).status_code == 302


def test_the_dataset_list_counts_images_votes_and_labels(logged_in, dataset, schema, gz2, expert):
    pictured = add_galaxy(dataset, "pictured", image=True)
    voted = add_galaxy(dataset, "voted")
    add_galaxy(dataset, "bare")
    put_votes(voted, gz2, {"t01_smooth_or_features": {"a01_smooth": 3, "a02_features_or_disk": 1}})
    give_expert_label(pictured, schema, "5", expert)
    give_expert_label(pictured, schema, "6", expert)  # supersedes: still one labelled galaxy
    give_consensus(voted, schema, "2")
    dataset_get_or_create(name="Empty one")
    response = logged_in.get(reverse("dataset-list"))
    rows = {d.name: d for d in response.context["datasets"]}
    counted = rows["Test galaxies"]
    assert (counted.n_galaxies, counted.n_images, counted.n_voted, counted.n_expert, counted.n_consensus) == (
        3, 1, 1, 1, 1)
    assert rows["Empty one"].n_galaxies == 0
    html = response.content.decode()
    assert "Someone et al." in html and "MIT" in html
    assert f"{reverse('galaxy-list')}?dataset={dataset.slug}" in html


def test_the_dataset_list_says_a_dataset_without_images_holds_votes_only_and_links_to_them(logged_in, dataset,
                                                                                          schema, gz2):
    add_galaxy(dataset, "pictured", image=True)
    stripe82 = dataset_get_or_create(name="Stripe 82 votes")
    for name in ("s1", "s2"):
        voted = add_galaxy(stripe82, name)
        put_votes(voted, gz2, {"t01_smooth_or_features": {"a01_smooth": 3, "a02_features_or_disk": 1}})
    give_consensus(voted, schema, "2")
    html = logged_in.get(reverse("dataset-list")).content.decode()
    pictured_card, votes_card = (html[html.index(f"<h2><a href=\"{reverse('galaxy-list')}?dataset={slug}\""):]
                                 for slug in (dataset.slug, stripe82.slug))
    pictured_card, votes_card = (card[:card.index("</article>")] for card in (pictured_card, votes_card))
    assert "votes only, no images" in votes_card and "votes only" not in pictured_card
    grid = reverse("galaxy-list")
    assert f'href="{grid}?dataset={stripe82.slug}">Browse votes</a>' in votes_card
    assert f'href="{grid}?dataset={stripe82.slug}&amp;labelled=consensus">Consensus labels</a>' in votes_card
    assert f'href="{grid}?dataset={dataset.slug}">Browse galaxies</a>' in pictured_card


def test_the_dataset_list_costs_the_same_queries_for_one_or_five_datasets(logged_in, dataset,
                                                                          django_assert_max_num_queries):
    add_galaxy(dataset, "pictured", image=True)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("dataset-list")).status_code == 200
        return len(captured)

    one = count_queries()
    for number in range(4):
        add_galaxy(dataset_get_or_create(name=f"Votes only {number}"), f"v{number}")
    assert count_queries() == one


def test_the_grid_shows_galaxies_with_an_image_first_and_filters_by_image(logged_in, dataset, settings):
    settings.GALAXY_PAGE_SIZE = 2
    for number in range(3):  # older than the pictures: by id alone they would come first
        add_galaxy(dataset_get_or_create(name="A votes-only catalogue"), f"votes-{number}")
    for number in range(2):
        add_galaxy(dataset, f"pictured-{number}", image=True)
    grid = reverse("galaxy-list")
    first = logged_in.get(grid)
    assert tile_ids(first) == ["pictured-0", "pictured-1"]
    assert first.context["page"].paginator.count == 5
    assert tile_ids(logged_in.get(grid, {"page": 2})) == ["votes-0", "votes-1"]
    with_images = logged_in.get(grid, {"images": "with"})
    assert tile_ids(with_images) == ["pictured-0", "pictured-1"]
    assert with_images.context["page"].paginator.count == 2
    without = logged_in.get(grid, {"images": "without", "page": 2})
    assert tile_ids(without) == ["votes-2"]
    assert 'href="?images=without&amp;page=1"' in without.content.decode()
    assert "images" in logged_in.get(grid, {"images": "sometimes"}).context["form"].errors


def test_the_grid_shows_a_thumbnail_or_a_placeholder_with_badges(logged_in, dataset, schema, expert):
    pictured = add_galaxy(dataset, "pictured", image=True)
    add_galaxy(dataset, "catalogue-only")
    give_expert_label(pictured, schema, "5", expert)
    give_consensus(pictured, schema, "6")
    html = logged_in.get(reverse("galaxy-list"), {"dataset": dataset.slug}).content.decode()
    assert pictured.image.url in html
    assert 'class="placeholder"' in html and "catalogue-only" in html
    assert 'badge badge-expert"' in html and "Barred Spiral" in html
    assert "badge badge-consensus" in html and "Unbarred Tight Spiral" in html


def test_the_grid_filters_by_dataset_and_search(logged_in, dataset):
    add_galaxy(dataset, "J1234+56")
    add_galaxy(dataset, "J9999-01")
    add_galaxy(dataset_get_or_create(name="Other"), "J1234+57")
    assert tile_ids(logged_in.get(reverse("galaxy-list"), {"dataset": dataset.slug})) == ["J1234+56", "J9999-01"]
    assert tile_ids(logged_in.get(reverse("galaxy-list"), {"q": "j1234"})) == ["J1234+57", "J1234+56"]


def test_the_grid_filters_by_expert_and_consensus_class(logged_in, dataset, schema, expert, second_expert):
    barred, round_, both = (add_galaxy(dataset, name) for name in ("barred", "round", "both"))
    give_expert_label(barred, schema, "5", expert)
    give_expert_label(round_, schema, "2", expert)
    give_expert_label(both, schema, "5", expert)
    give_expert_label(both, schema, "5", second_expert)  # two agreeing experts: still one tile
    give_consensus(round_, schema, "2")
    give_consensus(both, schema, "uncertain")
    grid = reverse("galaxy-list")
    by_class = logged_in.get(grid, {"schema": "galaxy10", "class": "5"})
    assert tile_ids(by_class) == ["barred", "both"]
    assert tile_ids(logged_in.get(grid, {"schema": "galaxy10", "consensus": "2"})) == ["round"]
    assert tile_ids(logged_in.get(grid, {"schema": "galaxy10", "class": "5", "consensus": "uncertain"})) == ["both"]
    assert by_class.content.decode().count("badge badge-expert\"") == 2 + 1  # two tiles, plus the legend


def test_the_grid_filters_by_whether_a_galaxy_is_labelled(logged_in, dataset, schema, expert):
    by_expert, by_votes = add_galaxy(dataset, "by-expert"), add_galaxy(dataset, "by-votes")
    add_galaxy(dataset, "unlabelled")
    give_expert_label(by_expert, schema, "0", expert)
    give_consensus(by_votes, schema, "1")
    grid = reverse("galaxy-list")
    assert tile_ids(logged_in.get(grid, {"labelled": "expert"})) == ["by-expert"]
    assert tile_ids(logged_in.get(grid, {"labelled": "consensus"})) == ["by-votes"]
    assert tile_ids(logged_in.get(grid, {"labelled": "none"})) == ["unlabelled"]


def test_a_class_filter_without_a_schema_is_refused_and_shows_nothing(logged_in, dataset):
    add_galaxy(dataset, "g1")
    response = logged_in.get(reverse("galaxy-list"), {"class": "5"})
    assert response.context["form"].errors["expert_class"] == [
        "Choose a schema first: class keys are only unique within one schema."]
    assert tile_ids(response) == []


def test_an_unknown_class_of_the_schema_is_refused(logged_in, dataset, schema):
    add_galaxy(dataset, "g1")
    response = logged_in.get(reverse("galaxy-list"), {"schema": "galaxy10", "class": "spiral"})
    assert "expert_class" in response.context["form"].errors and tile_ids(response) == []


def test_the_grid_is_paginated_and_page_links_keep_the_filters(logged_in, dataset, settings):
    settings.GALAXY_PAGE_SIZE = 2
    for i in range(5):
        add_galaxy(dataset, f"g{i}")
    add_galaxy(dataset_get_or_create(name="Other"), "elsewhere")
    response = logged_in.get(reverse("galaxy-list"), {"dataset": dataset.slug, "page": 2})
    assert tile_ids(response) == ["g2", "g3"]
    assert response.context["page"].paginator.num_pages == 3
    html = response.content.decode()
    assert f'href="?dataset={dataset.slug}&amp;page=3"' in html
    assert f'href="?dataset={dataset.slug}&amp;page=1"' in html
    assert tile_ids(logged_in.get(reverse("galaxy-list"), {"dataset": dataset.slug, "page": 99})) == ["g4"]


def test_a_page_of_the_grid_costs_the_same_queries_for_3_or_30_galaxies(
    logged_in, dataset, schema, expert, settings, django_assert_max_num_queries
):
    settings.GALAXY_PAGE_SIZE = 100
    query = {"schema": "galaxy10"}  # no dataset filter: each tile names its dataset too

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("galaxy-list"), query).status_code == 200
        return len(captured)

    def add_labelled(n, start):
        for i in range(start, start + n):
            galaxy = add_galaxy(dataset, f"g{i:02d}")
            give_expert_label(galaxy, schema, str(i % 10), expert)
            give_consensus(galaxy, schema, str((i + 1) % 10))

    add_labelled(3, 0)
    few = count_queries()
    add_labelled(27, 3)
    with django_assert_max_num_queries(12):
        response = logged_in.get(reverse("galaxy-list"), query)
    assert len(tile_ids(response)) == 30
    assert count_queries() == few


def test_the_galaxy_page_shows_the_vote_fractions_in_tree_order(logged_in, dataset, gz2):
    galaxy = add_galaxy(dataset, "voted", image=True, ra=10.5, dec=-2.25, metadata={"redshift": 0.05})
    put_votes(galaxy, gz2, {
        "t02_edgeon": {"a04_yes": 1, "a05_no": 9},
        "t01_smooth_or_features": {"a01_smooth": 30, "a02_features_or_disk": 10, "a03_star_or_artifact": 0},
        "t07_rounded": {"a16_completely_round": 0, "a17_in_between": 0, "a18_cigar_shaped": 0},
    })
    response = logged_in.get(reverse("galaxy-detail", args=[galaxy.id]))
    (block,) = response.context["detail"].votes
    assert block.source == "catalogue"
    assert [q.question.key for q in block.questions] == ["t01_smooth_or_features", "t02_edgeon", "t07_rounded"]
    first = block.questions[0]
    assert [(bar.key, bar.fraction, bar.count) for bar in first.answers] == [
        ("a01_smooth", 0.75, 30), ("a02_features_or_disk", 0.25, 10), ("a03_star_or_artifact", 0.0, 0)]
    assert [q.has_votes for q in block.questions] == [True, True, False]
    html = response.content.decode()
    assert 'style="width: 75.0%"' in html and "75% <span class=\"muted\">(30)</span>" in html
    assert 'class="question question-empty" data-question="t07_rounded"' in html
    assert galaxy.image.url in html and "10.50000°" in html and "redshift" in html


def test_the_galaxy_page_shows_current_labels_history_and_consensus(logged_in, dataset, schema, expert):
    galaxy = add_galaxy(dataset, "labelled")
    give_expert_label(galaxy, schema, "2", expert, note="first look")
    give_expert_label(galaxy, schema, "3", expert, note="rounder than I thought")
    give_consensus(galaxy, schema, "3", agreement=0.64, n_votes=25)
    response = logged_in.get(reverse("galaxy-detail", args=[galaxy.id]))
    detail = response.context["detail"]
    assert [label.label_class.key for label in detail.current_expert_labels] == ["3"]
    assert [label.label_class.key for label in detail.past_expert_labels] == ["2"]
    html = response.content.decode()
    assert "rounder than I thought" in html and "History: 1 superseded label" in html
    assert "64%" in html and "gz-decals-thresholds" in html and "edwin" in html
    assert 'class="placeholder placeholder-large"' in html


def test_the_galaxy_page_links_its_neighbours_in_the_dataset(logged_in, dataset):
    first, middle, last = (add_galaxy(dataset, name) for name in ("a", "b", "c"))
    add_galaxy(dataset_get_or_create(name="Other"), "x")
    detail = logged_in.get(reverse("galaxy-detail", args=[middle.id])).context["detail"]
    assert (detail.previous_id, detail.next_id) == (first.id, last.id)
    assert logged_in.get(reverse("galaxy-detail", args=[last.id])).context["detail"].next_id is None


def test_an_unknown_galaxy_is_a_404(logged_in):
    assert logged_in.get(reverse("galaxy-detail", args=[987654])).status_code == 404


@pytest.mark.parametrize("name, args", [("tree-list", []), ("tree-detail", ["gz2"])])
def test_anonymous_visitors_cannot_read_the_trees(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_tree_list_counts_questions_and_answers(logged_in, gz2):
    tree_get_or_load_shipped(name="gz_decals")
    response = logged_in.get(reverse("tree-list"))
    counts = {tree.name: (tree.n_questions, tree.n_answers) for tree in response.context["trees"]}
    assert counts == {"gz2": (11, 37), "gz_decals": (10, 34)}
    assert reverse("tree-detail", args=["gz_decals"]) in response.content.decode()


def test_the_tree_page_shows_help_examples_and_where_each_question_comes_from(
    logged_in, gz2, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        response = logged_in.get(reverse("tree-detail", args=["gz2"]))
    questions = {item.question.key: item for item in response.context["questions"]}
    assert [key[:3] for key in questions] == [f"t{n:02d}" for n in range(1, 12)]
    # Disks lead to the edge-on question; every answer of the bulge question leads on to "anything odd?".
    edge_on = questions["t02_edgeon"].asked_after
    assert [(q.key, [a.key for a in answers]) for q, answers in edge_on] == [
        ("t01_smooth_or_features", ["a02_features_or_disk"])]
    odd_sources = dict((q.key, answers) for q, answers in questions["t06_odd"].asked_after)
    assert odd_sources["t05_bulge_prominence"] == [] and "t07_rounded" in odd_sources
    assert questions["t01_smooth_or_features"].asked_after == []
    html = response.content.decode()
    assert 'id="q-t10_arms_winding"' in html
    assert "/static/trees/examples/gz2/t03_bar--a06_bar-0.jpg" in html
    assert "A straight bright band crosses the centre" in html


def test_an_unknown_tree_is_a_404(logged_in):
    assert logged_in.get(reverse("tree-detail", args=["no-such-tree"])).status_code == 404


def test_the_galaxy_page_links_each_question_to_its_place_in_the_tree(logged_in, dataset, gz2):
    galaxy = add_galaxy(dataset, "linked")
    put_votes(galaxy, gz2, {"t01_smooth_or_features": {"a01_smooth": 3, "a02_features_or_disk": 1,
                                                       "a03_star_or_artifact": 0}})
    html = logged_in.get(reverse("galaxy-detail", args=[galaxy.id])).content.decode()
    assert f'{reverse("tree-detail", args=["gz2"])}#q-t01_smooth_or_features' in html
    assert 'title="A featureless glow' in html
