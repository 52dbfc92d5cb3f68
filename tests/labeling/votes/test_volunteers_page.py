"""The admin's page of volunteers (selectors/volunteers.py, views/volunteers.py): a bot-like session comes first by
speed and a contrarian last by agreement, filters by dataset and tree, pages, costs the same queries however many
volunteers there are, excludes and includes through its forms, and is for admins only."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import VolunteerClassification, VolunteerExclusion
from labeling.selectors.volunteers import volunteer_report
from labeling.services.votes.classify import classify_submit
from labeling.services.votes.exclusions import volunteer_exclude
from labeling.services.votes.trees import tree_get_or_load_shipped
from labeling.services.votes.weighting import volunteers_weight
from tests.labeling.permission_helpers import client_for
from tests.labeling.screening_helpers import BOT, HONEST, ROUND, screening_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(volunteer):
    return screening_world(volunteer)


def listed(response) -> list[str]:
    """The volunteers of the main table, in the page's order."""
    page = response.content.decode()
    if 'id="volunteers"' not in page:
        return []
    table = page.split('id="volunteers"')[1].split("</table>")[0]
    return re.findall(r'<tr data-volunteer="([^"]+)"', table)


def excluded_listed(response) -> list[str]:
    page = response.content.decode()
    if 'id="excluded"' not in page:
        return []
    return re.findall(r'<tr data-volunteer="([^"]+)"', page.split('id="excluded"')[1].split("</table>")[0])


def test_a_fast_bot_like_session_comes_first_by_speed(world, admin_user):
    client = client_for(admin_user)
    for sort in ("median_gap", "-per_hour", "-burst"):
        order = listed(client.get(reverse("volunteer-list"), {"sort": sort}))
        assert order[0] == BOT, sort
        assert set(order) == {*HONEST, BOT, world.contrarian}
    bot = next(row for row in volunteer_report(sort="median_gap").rows if row.key == BOT)
    assert bot.pace.median_gap_s == 1 and bot.pace.busiest_minute == 4 and bot.web == 4


def test_a_contrarian_comes_last_by_agreement(world, admin_user, volunteer):
    client = client_for(admin_user)
    for sort in ("-root_agreement", "-agreement"):
        assert listed(client.get(reverse("volunteer-list"), {"sort": sort}))[-1] == world.contrarian, sort
    rows = {row.key: row for row in volunteer_report(sort="-root_agreement").rows}
    assert rows[world.contrarian].agreement.root_share == 0.0 and rows[world.contrarian].agreement.root_compared == 4
    assert rows[HONEST[0]].agreement.root_share == 1.0
    # The signed-in contrarian shows under their user name.
    assert rows[world.contrarian].name == volunteer.username


def test_it_shows_the_consistency_weight_once_computed(world, admin_user):
    assert all(row.weight is None for row in volunteer_report().rows)
    volunteers_weight(dataset=world.dataset, tree=world.tree)
    rows = {row.key: row for row in volunteer_report(dataset=world.dataset, tree=world.tree).rows}
    assert rows[world.contrarian].kappa < rows[HONEST[0]].kappa and rows[HONEST[0]].weight == 1.0
    assert "κ" in client_for(admin_user).get(reverse("volunteer-list")).content.decode()


def test_it_filters_by_dataset_and_tree(world, volunteer, admin_user):
    other = screening_world(volunteer, n_galaxies=1, name="elsewhere")
    classify_submit(policy=other.policy, galaxy=other.galaxies[0], answers=ROUND, volunteer_id="session:elsewhere")
    client = client_for(admin_user)
    everywhere = listed(client.get(reverse("volunteer-list")))
    here = listed(client.get(reverse("volunteer-list"), {"dataset": world.dataset.slug, "tree": world.tree.name}))
    assert "session:elsewhere" in everywhere and "session:elsewhere" not in here
    tree_get_or_load_shipped(name="gz2")
    nobody = client.get(reverse("volunteer-list"), {"tree": "gz2"})
    assert listed(nobody) == [] and "No volunteer has classified here" in nobody.content.decode()
    assert client.get(reverse("volunteer-list"), {"dataset": "no-such-dataset"}).status_code == 404


def test_it_pages_and_leaves_out_volunteers_below_the_minimum(world, admin_user, monkeypatch):
    monkeypatch.setattr("labeling.views.volunteers.PAGE_SIZE", 2)
    client = client_for(admin_user)
    first, last = (listed(client.get(reverse("volunteer-list"), {"page": n})) for n in (1, 3))
    assert len(first) == 2 and len(last) == 1
    fresh = world.galaxies[0]
    VolunteerClassification.objects.create(galaxy=fresh, tree=world.tree, answers=ROUND, volunteer_id="session:once")
    assert "session:once" not in {row.key for row in volunteer_report(min_classifications=2).rows}
    assert "session:once" in {row.key for row in volunteer_report().rows}


def test_the_query_count_does_not_grow_with_the_volunteers(world, admin_user):
    volunteers_weight(dataset=world.dataset, tree=world.tree)
    volunteer_exclude(volunteer=HONEST[2], reason="test", admin=admin_user)
    client = client_for(admin_user)
    path = reverse("volunteer-list")
    client.get(path)  # the session and the user are read once, as on any page

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    few = queries()
    for number in range(30):
        for galaxy in world.galaxies[:2]:
            classify_submit(policy=world.policy, galaxy=galaxy, answers=ROUND, volunteer_id=f"session:many{number}")
    volunteers_weight(dataset=world.dataset, tree=world.tree)
    volunteer_exclude(volunteer="session:many0", reason="test", admin=admin_user)
    assert len(volunteer_report().rows) > 30
    assert queries() == few


def test_excluding_from_the_page_moves_them_to_the_excluded_list_and_back(world, admin_user):
    client = client_for(admin_user)
    path = reverse("volunteer-list") + "?sort=-burst"
    response = client.post(reverse("volunteer-exclude"), {"volunteer": BOT, "reason": "a galaxy a second",
                                                          "next": path}, follow=True)
    assert response.redirect_chain[-1] == (path, 302)
    assert BOT not in listed(response) and excluded_listed(response) == [BOT]
    assert "a galaxy a second" in response.content.decode() and "4 galaxies recounted" in response.content.decode()
    assert VolunteerExclusion.objects.get().excluded_by == admin_user

    response = client.post(reverse("volunteer-include"), {"volunteer": BOT, "next": path}, follow=True)
    assert BOT in listed(response) and excluded_listed(response) == []
    assert "Exclusions ended (1)" in response.content.decode()


def test_an_exclusion_without_a_reason_is_refused_on_the_page(world, admin_user):
    response = client_for(admin_user).post(reverse("volunteer-exclude"), {"volunteer": BOT, "reason": ""},
                                           follow=True)
    assert "Could not exclude" in response.content.decode() and not VolunteerExclusion.objects.exists()


def test_the_next_address_must_be_on_this_site(world, admin_user):
    response = client_for(admin_user).post(reverse("volunteer-exclude"), {
        "volunteer": BOT, "reason": "bot", "next": "https://evil.example/"})
    assert response["Location"] == reverse("volunteer-list")


@pytest.mark.parametrize("who, status", [(None, 302), ("volunteer", 403), ("expert", 403), ("outsider", 403)])
def test_only_admins_see_the_page_or_exclude(world, request, who, status):
    client = client_for(request.getfixturevalue(who) if who else None)
    assert client.get(reverse("volunteer-list")).status_code == status
    assert client.post(reverse("volunteer-exclude"), {"volunteer": BOT, "reason": "bot"}).status_code == status
    assert not VolunteerExclusion.objects.exists()


def test_the_admins_start_card_links_to_the_page(admin_user, expert):
    assert reverse("volunteer-list") in client_for(admin_user).get(reverse("home")).content.decode()
    assert reverse("volunteer-list") not in client_for(expert).get(reverse("home")).content.decode()
