"""The bulk-labelling controls on the cluster gallery and the similar-galaxies grid: a checkbox per galaxy, a
"select all" per group and the toolbar for experts, pages volunteers may not open, and pages whose number of queries
does not grow with the number of galaxies shown."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


@pytest.fixture
def feature_set(dataset):
    return indexed(extracted(dataset))


def gallery(client, clustering):
    return client.get(reverse("clustering-detail", args=[clustering.pk]))


def similar(client, dataset, k: int):
    return client.get(reverse("galaxy-similar", args=[dataset.galaxies.order_by("pk").first().pk]), {"k": k})


def test_an_expert_gets_a_checkbox_per_tile_a_select_all_per_cluster_and_the_toolbar(client, expert, feature_set):
    clustering = clustered(feature_set, k=3)
    client.force_login(expert)
    response = gallery(client, clustering)
    html = response.content.decode()
    cards = response.context["cards"]
    assert html.count('class="bulk-check"') == sum(len(card.samples) for card in cards)
    for card in cards:
        assert f'data-bulk-group="cluster-{card.number}"' in html
        assert f'class="bulk-all" data-group="cluster-{card.number}"' in html
    sample = cards[0].samples[0]
    assert f'value="{sample.pk}" aria-label="Select {sample.external_id}"' in html
    assert 'id="bulk-toolbar"' in html and f'data-url="{reverse("api-labels-bulk")}"' in html
    assert '<option value="galaxy10">' in html and '<option value="5">Barred Spiral</option>' in html
    assert "js/bulk_label.js" in html


def test_an_expert_can_tick_every_galaxy_of_the_similar_grid(client, expert, dataset, feature_set):
    client.force_login(expert)
    response = similar(client, dataset, 12)
    html = response.content.decode()
    assert html.count('class="bulk-check"') == 12
    for neighbour in response.context["neighbours"]:
        assert f'value="{neighbour.galaxy.pk}"' in html
    assert 'class="bulk-all" data-group="similar"' in html and "Select all 12 shown" in html
    assert 'id="bulk-toolbar"' in html and "js/bulk_label.js" in html


def test_a_volunteer_may_not_open_the_pages_nor_see_any_bulk_control(client, volunteer, dataset, feature_set):
    clustering = clustered(feature_set, k=3)
    client.force_login(volunteer)
    for response in (gallery(client, clustering), similar(client, dataset, 12)):
        assert response.status_code == 403
        html = response.content.decode()
        assert "bulk-check" not in html and "bulk-all" not in html and "bulk-toolbar" not in html
        assert "bulk_label.js" not in html


def test_the_gallery_costs_the_same_queries_for_few_or_many_tiles(client, expert, feature_set):
    few, many = clustered(feature_set, k=2), clustered(feature_set, k=6)
    client.force_login(expert)
    counts, tiles = [], []
    for clustering in (few, many):
        with CaptureQueriesContext(connection) as queries:
            response = gallery(client, clustering)
        counts.append(len(queries))
        tiles.append(response.content.decode().count('class="bulk-check"'))
    assert tiles[0] < tiles[1]
    assert counts[0] == counts[1], f"{counts[0]} queries for {tiles[0]} tiles, {counts[1]} for {tiles[1]}"


def test_the_similar_grid_costs_the_same_queries_for_few_or_many_tiles(client, expert, dataset, feature_set):
    client.force_login(expert)
    counts = []
    for k in (4, 16):
        with CaptureQueriesContext(connection) as queries:
            assert similar(client, dataset, k).content.decode().count('class="bulk-check"') == k
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{counts[0]} queries for 4 tiles, {counts[1]} for 16"
