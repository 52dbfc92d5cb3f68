"""Who may open which page: a table of every page (every URL outside /api/ and /admin/) and method with the roles
allowed, checked against the URL configuration (a page added without a row fails here, by name) and then cell by
cell for six visitors; the admin site's index and every registered model's list and add pages are for admins.

The rule is the API's (test_api_permissions.py): volunteers and other signed-in users without a group classify and
read the decision trees; experts and admins read the rest (galaxies and their labels, clusters, maps, jobs, training,
simulations) and label; only admins start, cancel or re-run jobs, train, activate a version, roll a dataset back
and resolve disagreements. Anonymous visitors classify too. A denied anonymous visitor is sent to sign in (302 to
/login/?next=...); a denied signed-in one gets 403, not a trip back to the login page. Every POST carries the CSRF
token, and is refused without it."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from labeling.models import ClassifyPolicy, Embedding, Simulation
from tests.labeling.api_helpers import SMOOTH_ROUND, api_world
from tests.labeling.ml_helpers import mapped
from tests.labeling.permission_helpers import (
    ADMIN,
    EVERYONE,
    READERS,
    ROLES,
    SIGNED_IN,
    Context,
    as_json,
    client_for,
    context_for,
    csrf_client,
)

pytestmark = pytest.mark.django_db


@dataclass
class Site:
    """The API tests' world and users, and what only the pages show: a map, a simulation, a classify policy."""

    ctx: Context
    map: Embedding
    simulation: Simulation
    policy: ClassifyPolicy

    def galaxy(self, index: int = 0) -> int:
        return self.ctx.galaxy(index).pk


Body = Callable[[Site, str], dict]


@dataclass(frozen=True)
class Page:
    """Who may send ``method`` to the page, what an allowed visitor gets, the path, and a POST's form (or JSON)."""

    allowed: frozenset
    path: Callable[[Site], str]
    ok: int | dict[str, int] = 200  # a dict where roles get different answers (role -> status)
    body: Body | None = None
    json: bool = False
    offered: bool = False  # the classify page takes answers only for the galaxy it offered: the body's galaxy is that


def at(name: str, *args: Callable[[Site], object] | str, query: str = "") -> Callable[[Site], str]:
    return lambda site: reverse(name, args=[arg(site) if callable(arg) else arg for arg in args]) + query


def form(**fields: Callable[[Site], object] | str) -> Body:
    return lambda site, role: {key: value(site) if callable(value) else value for key, value in fields.items()}


def credentials(site: Site, role: str) -> dict:
    """A role's own user name and password; an anonymous visitor knows the volunteer's."""
    user = site.ctx.user(role) or site.ctx.user("volunteer")
    return {"username": user.username, "password": f"pw-{user.username}"}


def dataset(site: Site) -> str:
    return site.ctx.world.dataset.slug


def galaxy(site: Site) -> int:
    return site.galaxy()


PAGES: dict[tuple[str, str], Page] = {
    # Experts and admins get the page of where to start; everyone else goes on to the classify pages.
    ("home", "GET"): Page(EVERYONE, at("home"), ok={role: 200 if role in READERS else 302 for role in EVERYONE}),
    ("login", "GET"): Page(EVERYONE, at("login")),
    ("login", "POST"): Page(EVERYONE, at("login"), ok=302, body=credentials),
    ("logout", "GET"): Page(EVERYONE, at("logout"), ok=405),  # logging out takes a POST (Django 5)
    ("logout", "POST"): Page(EVERYONE, at("logout"), ok=302, body=form()),
    ("dataset-list", "GET"): Page(READERS, at("dataset-list")),
    ("galaxy-list", "GET"): Page(READERS, at("galaxy-list")),
    ("galaxy-detail", "GET"): Page(READERS, at("galaxy-detail", galaxy)),
    ("galaxy-similar", "GET"): Page(READERS, at("galaxy-similar", galaxy)),
    ("galaxy-thumbnail", "GET"): Page(READERS, at("galaxy-thumbnail", galaxy), ok=302),
    ("clustering-list", "GET"): Page(READERS, at("clustering-list")),
    ("clustering-detail", "GET"): Page(READERS, at("clustering-detail", lambda site: site.ctx.world.clustering.pk)),
    ("map-list", "GET"): Page(READERS, at("map-list")),
    ("map-detail", "GET"): Page(READERS, at("map-detail", lambda site: site.map.pk)),
    ("map-points", "GET"): Page(READERS, at("map-points", lambda site: site.map.pk)),
    ("job-list", "GET"): Page(READERS, at("job-list")),
    ("job-status", "GET"): Page(READERS, lambda site: reverse("job-status") + f"?ids={site.ctx.job.pk}"),
    ("job-start", "POST"): Page(ADMIN, at("job-start", "build_queue"), ok=302, body=form(
        dataset=lambda site: site.ctx.world.dataset.pk, schema=lambda site: site.ctx.world.schema.pk)),
    ("job-cancel", "POST"): Page(ADMIN, at("job-cancel", lambda site: site.ctx.job.pk), ok=302, body=form()),
    ("job-rerun", "POST"): Page(ADMIN, at("job-rerun", lambda site: site.ctx.job.pk), ok=302, body=form()),
    ("label-home", "GET"): Page(READERS, at("label-home")),
    ("label-page", "GET"): Page(READERS, at("label-page", dataset, "galaxy10")),
    ("agreement", "GET"): Page(READERS, at("agreement")),
    ("review", "GET"): Page(ADMIN, at("review")),
    ("review-resolve", "POST"): Page(ADMIN, at("review-resolve", galaxy), ok=302,
                                     body=form(schema="galaxy10", label_class="2")),
    ("simulation-list", "GET"): Page(READERS, at("simulation-list")),
    ("simulation-detail", "GET"): Page(READERS, at("simulation-detail", lambda site: site.simulation.pk)),
    ("training", "GET"): Page(READERS, at("training")),
    # An empty form: the page again with the form's errors (a valid one would need a trainable dataset).
    ("training-start", "POST"): Page(ADMIN, at("training-start"), body=form()),
    ("training-pretrain", "POST"): Page(ADMIN, at("training-pretrain"), body=form()),
    ("training-activate", "POST"): Page(ADMIN, at(
        "training-activate", lambda site: site.ctx.world.feature_set.model_version_id), ok=302, body=form(
        dataset=dataset)),
    ("training-curve", "GET"): Page(READERS, at("training-curve", dataset)),
    # Nothing to roll back to in this world: the Training page again, with the reason.
    ("training-rollback", "POST"): Page(ADMIN, at("training-rollback", dataset), ok=302, body=form()),
    ("classify-home", "GET"): Page(EVERYONE, at("classify-home")),
    ("classify-page", "GET"): Page(EVERYONE, at("classify-page", dataset)),
    ("classify-next", "GET"): Page(EVERYONE, at("classify-next", dataset)),
    ("classify-image", "GET"): Page(EVERYONE, at("classify-image", dataset, galaxy)),
    ("classify-submit", "POST"): Page(EVERYONE, at("classify-submit", dataset), ok=201, json=True, offered=True,
                                      body=lambda site, role: {"answers": SMOOTH_ROUND}),
    ("volunteer-list", "GET"): Page(ADMIN, at("volunteer-list")),
    # Nobody by that key classified in this world: back to the page, whose message says so.
    ("volunteer-exclude", "POST"): Page(ADMIN, at("volunteer-exclude"), ok=302,
                                        body=form(volunteer="session:nobody", reason="bot")),
    ("volunteer-include", "POST"): Page(ADMIN, at("volunteer-include"), ok=302, body=form(volunteer="session:nobody")),
    ("tree-list", "GET"): Page(SIGNED_IN, at("tree-list")),
    ("tree-detail", "GET"): Page(SIGNED_IN, at("tree-detail", "gz2")),
    ("media-file", "GET"): Page(EVERYONE, lambda site: reverse("media-file", kwargs={
        "path": site.ctx.galaxy().thumbnail.name})),
}


def page_names() -> set[str]:
    """The name (or route, when it has none) of every URL pattern outside /api/ and /admin/."""
    found = set()

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if route.startswith(("api/", "admin/")):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.add(pattern.name or route)

    walk(get_resolver().url_patterns, "")
    return found


def test_every_page_has_a_row_saying_who_may_open_it():
    served, named = page_names(), {name for name, _ in PAGES}
    assert not sorted(served - named), f"pages without a row in PAGES (add one naming the roles allowed): " \
                                       f"{sorted(served - named)}"
    assert not sorted(named - served), f"rows in PAGES for pages the URL configuration no longer serves: " \
                                       f"{sorted(named - served)}"


@pytest.fixture
def site(tmp_path, settings, volunteer, outsider, expert, second_expert, admin_user) -> Site:
    settings.GALAXY_SERVE_FILES = True
    ctx = context_for(api_world(tmp_path / "import"), volunteer=volunteer, outsider=outsider, expert=expert,
                      second_expert=second_expert, admin_user=admin_user)
    world = ctx.world
    simulation = Simulation.objects.create(dataset=world.dataset, oracle="labels.csv", curves={"random": [
        {"labels": 6, "accuracy": 0.5, "balanced_accuracy": 0.5}]}, savings={"baseline_final_accuracy": 0.5})
    policy = ClassifyPolicy.objects.create(dataset=world.dataset, tree=world.tree)
    return Site(ctx, mapped(world.feature_set), simulation, policy)


def request(site: Site, role: str, method: str, page: Page, *, with_token: bool = True):
    """The page's request from a fresh browser of the role (a login or logout changes the session), its form
    carrying the CSRF token (in the header for JSON, as a script sends it) unless told otherwise."""
    client, header = csrf_client(site.ctx.user(role))
    path = page.path(site)
    if method == "GET":
        return client.get(path)
    body = page.body(site, role)
    if page.offered:
        client.get(reverse("classify-page", args=[dataset(site)]))
        body["galaxy"] = client.get(reverse("classify-next", args=[dataset(site)])).json()["galaxy"]["id"]
    if page.json:
        return client.post(path, as_json(body), content_type="application/json", **(header if with_token else {}))
    if with_token:
        body = {**body, "csrfmiddlewaretoken": header["HTTP_X_CSRFTOKEN"]}
    return client.post(path, body)


def sent_to_sign_in(response, path: str, login: str = "login") -> bool:
    location = urlsplit(response.get("Location", ""))
    return response.status_code == 302 and location.path == reverse(login) and \
        parse_qs(location.query).get("next") == [path]


def test_each_page_admits_exactly_the_roles_its_row_names(site, subtests):
    for (name, method), page in PAGES.items():
        with subtests.test(msg=f"{method} {name}"):
            wrong = []
            for role in ROLES:
                with transaction.atomic():  # every role meets the same world: a job not yet cancelled ...
                    path = page.path(site)
                    response = request(site, role, method, page)
                    transaction.set_rollback(True)
                if role in page.allowed:
                    ok = response.status_code == (page.ok[role] if isinstance(page.ok, dict) else page.ok)
                elif role == "anonymous":
                    ok = sent_to_sign_in(response, path)
                else:
                    ok = response.status_code == 403
                if not ok:
                    wrong.append(f"{role}: {response.status_code} {response.get('Location', '')} "
                                 f"{response.content[:120]!r}")
            assert not wrong, f"{method} {name}:\n" + "\n".join(wrong)


def test_every_post_is_refused_without_the_csrf_token_and_accepted_with_it(site, subtests):
    posts = [(key, page) for key, page in PAGES.items() if key[1] == "POST"]
    assert len(posts) >= 9  # forms and the classify script: an empty sweep would prove nothing
    for (name, _), page in posts:
        for role in sorted(page.allowed):
            with subtests.test(msg=f"POST {name} as {role}"), transaction.atomic():
                refused = request(site, role, "POST", page, with_token=False)
                accepted = request(site, role, "POST", page)
                transaction.set_rollback(True)
                assert refused.status_code == 403 and b"CSRF" in refused.content, refused.content[:200]
                assert accepted.status_code == page.ok, accepted.content[:200]


@pytest.mark.parametrize("who", [None, "volunteer", "outsider"])
def test_home_sends_everyone_but_experts_to_classify(request, who):
    client = client_for(request.getfixturevalue(who) if who else None)
    assert client.get(reverse("home"))["Location"] == reverse("classify-home")


@pytest.mark.parametrize("who, roles", [("expert", {"expert", "volunteer"}), ("second_expert", {"expert", "volunteer"}),
                                        ("admin_user", {"expert", "admin", "volunteer"})])
def test_home_shows_experts_and_admins_where_each_of_their_roles_starts(request, who, roles):
    page = client_for(request.getfixturevalue(who)).get(reverse("home"))
    assert page.status_code == 200
    assert set(re.findall(r'data-role="(\w+)"', page.content.decode())) == roles


def test_a_volunteer_signing_in_lands_on_the_classify_pages_and_sees_no_expert_menu(volunteer):
    client, header = csrf_client(None)
    signed_in = client.post(reverse("login"), {"username": volunteer.username, "password": f"pw-{volunteer.username}",
                                               "csrfmiddlewaretoken": header["HTTP_X_CSRFTOKEN"]}, follow=True)
    assert signed_in.redirect_chain[-1] == (reverse("classify-home"), 302) and signed_in.status_code == 200
    page = signed_in.content.decode()
    for name in ("dataset-list", "galaxy-list", "clustering-list", "map-list", "job-list", "label-home"):
        assert f'href="{reverse(name)}"' not in page, name
    assert f'href="{reverse("tree-list")}"' in page


# --- The admin site ------------------------------------------------------------------------------------------------


def admin_pages(admin_user) -> list[tuple[str, int]]:
    """(path, what an admin gets) for the index and every registered model's list and add pages."""
    request = RequestFactory().get("/")
    request.user = admin_user
    pages = [(reverse("admin:index"), 200)]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        pages.append((reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"), 200))
        pages.append((reverse(f"admin:{meta.app_label}_{meta.model_name}_add"),
                      200 if model_admin.has_add_permission(request) else 403))
    return pages


def test_the_admin_site_is_for_admins_and_sends_everyone_else_to_its_login(site, admin_user, subtests):
    pages = admin_pages(admin_user)
    assert len(pages) > 2 * 20  # every registered model, not an empty registry
    clients = {role: client_for(site.ctx.user(role)) for role in ROLES}
    for path, status in pages:
        with subtests.test(msg=path):
            assert clients["admin"].get(path).status_code == status
            # Django's admin sends everyone else to its own login page, which tells a signed-in non-admin that they
            # may not enter (200, no loop), rather than answering 403.
            refused = [role for role in ROLES[:-1] if not sent_to_sign_in(clients[role].get(path), path, "admin:login")]
            assert not refused, refused
    refused = clients["expert"].get(reverse("admin:index"), follow=True)
    assert refused.status_code == 200 and len(refused.redirect_chain) == 1
    assert b"not authorized" in refused.content


def test_the_second_expert_cannot_change_or_undo_the_first_experts_label_from_any_page(site, expert, second_expert):
    ctx = site.ctx
    first = ctx.own_label("expert")
    galaxy, dataset_id = first.galaxy, ctx.world.dataset.pk
    for (_, method), page in PAGES.items():
        if method == "POST":  # each from a fresh browser: review-resolve and the rest are 403, classify a vote
            assert request(site, "second_expert", method, page).status_code < 500
    client, header = csrf_client(second_expert)
    # What the labelling page's scripts send: a label, an undo, a bulk label, all on the first expert's galaxy.
    for path, body in [
        (reverse("api-labels"), {"galaxy": galaxy.pk, "schema": "galaxy10", "label_class": "8"}),
        (reverse("api-labels-undo"), {"dataset": dataset_id, "schema": "galaxy10"}),
        (reverse("api-labels-bulk"), {"schema": "galaxy10", "label_class": "2", "galaxies": [galaxy.pk]}),
    ]:
        assert client.post(path, as_json(body), content_type="application/json", **header).status_code < 500
    first.refresh_from_db()
    assert first.is_current and first.label_class.key == "5"
    assert list(expert.expert_labels.values_list("pk", flat=True)) == [first.pk]
    # Their own label went in beside it.
    assert second_expert.expert_labels.get(galaxy=galaxy, superseded_at__isnull=True).label_class.key == "2"
