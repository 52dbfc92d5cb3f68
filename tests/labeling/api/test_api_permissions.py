"""Who may call which API endpoint: a table of every endpoint and method with the roles allowed, checked against the
URL configuration (an endpoint added without a row fails here, by name) and then cell by cell for six callers.

The rule (labeling/api/permissions.py): anonymous callers get nothing but a token for valid credentials; volunteers
(and other signed-in users without a group) classify and read the schema and its pages; experts read everything
and write their own labels; admins do everything, withdrawing anyone's label included, but nobody changes another
expert's label. A denied anonymous caller gets 401 (the token authentication comes first, so DRF asks for a token);
a denied signed-in caller gets 403; an allowed one gets the status of the row (never 401, 403 or 5xx)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from labeling.models import ExpertLabel, VolunteerClassification
from labeling.services.labelling.labels import expert_label_set
from tests.labeling.api_helpers import SMOOTH_ROUND, api_world
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
    send,
)

pytestmark = pytest.mark.django_db

# With TokenAuthentication first in DEFAULT_AUTHENTICATION_CLASSES, DRF answers a caller without credentials with
# 401 and "WWW-Authenticate: Token" (with SessionAuthentication first it would be 403 and no header).
ANONYMOUS_DENIED = 401
SIGNED_IN_DENIED = 403


Request = Callable[[Context, str], tuple[str, dict | None]]


@dataclass(frozen=True)
class Row:
    """Who may send ``method`` to the endpoint, what an allowed caller gets, and how to build the request."""

    allowed: frozenset
    request: Request
    ok: int = 200


def at(name: str, **kwargs) -> Request:
    return lambda ctx, role: (reverse(name, kwargs=kwargs), None)


def detail(name: str, pk: Callable[[Context], object], field: str = "pk", query: str = "") -> Request:
    return lambda ctx, role: (reverse(name, kwargs={field: pk(ctx)}) + query, None)


def own_label(name: str, body: dict | None = None) -> Request:
    return lambda ctx, role: (reverse(name, kwargs={"pk": ctx.own_label(role).pk}), body)


def label_body(ctx: Context, role: str) -> tuple[str, dict]:
    return reverse("api-expert-label-list"), {"galaxy": ctx.galaxy(6).pk, "schema": "galaxy10", "label_class": "8"}


def undo(ctx: Context, role: str) -> tuple[str, dict]:
    ctx.own_label(role)  # something to undo
    return reverse("api-labels-undo"), {"dataset": ctx.world.dataset.pk, "schema": "galaxy10"}


def credentials(ctx: Context, role: str) -> tuple[str, dict]:
    """A role's own user name and password; an anonymous caller knows the volunteer's."""
    user = ctx.user(role) or ctx.user("volunteer")
    return reverse("api-token"), {"username": user.username, "password": f"pw-{user.username}"}


def import_body(ctx: Context, role: str) -> tuple[str, dict]:
    """An import of a file that is in the import folder (read when the job runs, not when it is queued); a dataset
    per role, so that one role's queued import is not the same job as another's (a 409)."""
    root = Path(settings.GALAXY_IMPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    (root / "votes.csv").write_text("objid\n")
    return reverse("api-job-import"), {"kind": "import_votes", "path": "votes.csv", "format": "gz2-table",
                                       "dataset_name": f"Imported as {role}"}


def outside_import_body(url_name: str, extra: dict) -> Request:
    """An import of an outside model's outputs: the file exists (its rows are read when the job runs); a name per
    role, so that one role's queued import is not the same job as another's."""
    def request(ctx: Context, role: str) -> tuple[str, dict]:
        root = Path(settings.GALAXY_IMPORT_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        (root / "outside.csv").write_text("id,2,5\n")
        return reverse(url_name), {"path": "outside.csv", "dataset_name": ctx.world.dataset.name,
                                   "name": f"outside model of {role}", **extra}
    return request


def pk_of(model_attr: str) -> Callable[[Context], int]:
    return lambda ctx: getattr(ctx.world, model_attr).pk


EXPECTED: dict[tuple[str, str], Row] = {
    ("api-root", "GET"): Row(READERS, at("api-root")),
    ("api-dataset-list", "GET"): Row(READERS, at("api-dataset-list")),
    ("api-dataset-detail", "GET"): Row(READERS, detail("api-dataset-detail", pk_of("dataset"))),
    ("api-dataset-export", "GET"): Row(READERS, detail("api-dataset-export", pk_of("dataset"), query="?what=labels")),
    ("api-galaxy-list", "GET"): Row(READERS, at("api-galaxy-list")),
    ("api-galaxy-detail", "GET"): Row(READERS, detail("api-galaxy-detail", lambda ctx: ctx.galaxy().pk)),
    ("api-galaxy-neighbours", "GET"): Row(READERS, detail("api-galaxy-neighbours", lambda ctx: ctx.galaxy().pk)),
    ("api-tree-list", "GET"): Row(READERS, at("api-tree-list")),
    ("api-tree-detail", "GET"): Row(READERS, detail("api-tree-detail", lambda ctx: "gz2", field="name")),
    ("api-vote-summary-list", "GET"): Row(READERS, at("api-vote-summary-list")),
    ("api-vote-summary-detail", "GET"): Row(READERS, detail(
        "api-vote-summary-detail", lambda ctx: ctx.galaxy().vote_summaries.first().pk)),
    ("api-classification-list", "POST"): Row(SIGNED_IN, lambda ctx, role: (
        reverse("api-classification-list"), {"galaxy": ctx.galaxy(4).pk, "tree": "gz2", "answers": SMOOTH_ROUND}),
        ok=201),
    ("api-schema-list", "GET"): Row(READERS, at("api-schema-list")),
    ("api-schema-detail", "GET"): Row(READERS, detail("api-schema-detail", lambda ctx: "galaxy10", field="name")),
    ("api-expert-label-list", "GET"): Row(READERS, at("api-expert-label-list")),
    ("api-expert-label-list", "POST"): Row(READERS, label_body, ok=201),
    ("api-expert-label-detail", "GET"): Row(READERS, own_label("api-expert-label-detail")),
    ("api-expert-label-detail", "PUT"): Row(READERS, own_label("api-expert-label-detail", {"label_class": "2"})),
    ("api-expert-label-detail", "PATCH"): Row(READERS, own_label("api-expert-label-detail", {"note": "on reflection"})),
    ("api-expert-label-detail", "DELETE"): Row(READERS, own_label("api-expert-label-detail"), ok=204),
    ("api-expert-label-history", "GET"): Row(READERS, own_label("api-expert-label-history")),
    ("api-consensus-label-list", "GET"): Row(READERS, at("api-consensus-label-list")),
    ("api-consensus-label-detail", "GET"): Row(READERS, detail(
        "api-consensus-label-detail", lambda ctx: ctx.world.broad.consensus_labels.first().pk)),
    ("api-model-version-list", "GET"): Row(READERS, at("api-model-version-list")),
    ("api-model-version-detail", "GET"): Row(READERS, detail(
        "api-model-version-detail", lambda ctx: ctx.world.feature_set.model_version_id)),
    ("api-clustering-list", "GET"): Row(READERS, at("api-clustering-list")),
    ("api-clustering-detail", "GET"): Row(READERS, detail("api-clustering-detail", pk_of("clustering"))),
    ("api-clustering-assignments", "GET"): Row(READERS, detail("api-clustering-assignments", pk_of("clustering"))),
    ("api-clustering-centroids", "GET"): Row(READERS, detail("api-clustering-centroids", pk_of("clustering"))),
    ("api-prediction-list", "GET"): Row(READERS, at("api-prediction-list")),
    ("api-prediction-detail", "GET"): Row(READERS, detail(
        "api-prediction-detail", lambda ctx: ctx.world.classifier.predictions.first().pk)),
    ("api-job-list", "GET"): Row(READERS, at("api-job-list")),
    ("api-job-list", "POST"): Row(ADMIN, lambda ctx, role: (reverse("api-job-list"), {
        "kind": "build_queue", "dataset": ctx.world.dataset.pk, "schema": "galaxy10"}), ok=201),
    ("api-job-import", "POST"): Row(ADMIN, import_body, ok=201),
    ("api-job-import-features", "POST"): Row(ADMIN, outside_import_body("api-job-import-features", {}), ok=201),
    ("api-job-import-predictions", "POST"): Row(ADMIN, outside_import_body("api-job-import-predictions", {
        "schema": "galaxy10"}), ok=201),
    ("api-job-detail", "GET"): Row(READERS, detail("api-job-detail", lambda ctx: ctx.job.pk)),
    ("api-job-cancel", "POST"): Row(ADMIN, detail("api-job-cancel", lambda ctx: ctx.job.pk)),
    ("api-queue-next", "GET"): Row(READERS, lambda ctx, role: (
        reverse("api-queue-next") + f"?dataset={ctx.world.dataset.pk}&schema=galaxy10", None)),
    ("api-queue-skip", "POST"): Row(READERS, lambda ctx, role: (
        reverse("api-queue-skip", kwargs={"entry_id": ctx.own_entry(role).pk}), None)),
    ("api-labels", "POST"): Row(READERS, lambda ctx, role: (reverse("api-labels"), {
        "galaxy": ctx.galaxy(7).pk, "schema": "galaxy10", "label_class": "2"}), ok=201),
    ("api-labels-undo", "POST"): Row(READERS, undo),
    ("api-labels-bulk", "POST"): Row(READERS, lambda ctx, role: (reverse("api-labels-bulk"), {
        "schema": "galaxy10", "label_class": "8", "galaxies": [ctx.galaxy(8).pk, ctx.galaxy(9).pk]}), ok=201),
    ("api-token", "POST"): Row(EVERYONE, credentials),
    ("api-token", "DELETE"): Row(SIGNED_IN, at("api-token"), ok=204),
    ("api-schema", "GET"): Row(SIGNED_IN, at("api-schema")),
    ("api-docs", "GET"): Row(SIGNED_IN, at("api-docs")),
    ("api-redoc", "GET"): Row(SIGNED_IN, at("api-redoc")),
}


def _methods(callback) -> set[str]:
    """The HTTP methods a view answers (HEAD and OPTIONS aside, which follow GET's and the read rule)."""
    actions = getattr(callback, "actions", None)  # a viewset's route: {"get": "list", "post": "create"}
    if actions:
        # DRF adds "head" to a route's actions at its first GET (the dict is shared), so it depends on which tests
        # ran before: left out here as for plain views.
        return {method.upper() for method in actions if method not in ("head", "options")}
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:  # a function view: say so rather than guess
        return {"ANY"}
    return {method.upper() for method in view.http_method_names
            if method not in ("head", "options") and hasattr(view, method)}


def api_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) of every view the URL configuration serves under /api/, format-suffix twins folded."""
    found = set()

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                found.update((pattern.name or route, method) for method in _methods(pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_endpoint_and_method_has_a_row_saying_who_may_call_it():
    served = api_endpoints()
    missing = sorted(served - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - served)
    assert not missing, f"API endpoints without a row in EXPECTED (add one naming the roles allowed): {missing}"
    assert not stale, f"rows in EXPECTED for endpoints the URL configuration no longer serves: {stale}"


@pytest.fixture
def world(tmp_path):
    return api_world(tmp_path / "import")


@pytest.fixture
def context(world, volunteer, outsider, expert, second_expert, admin_user) -> Context:
    return context_for(world, volunteer=volunteer, outsider=outsider, expert=expert, second_expert=second_expert,
                       admin_user=admin_user)


def test_each_endpoint_admits_exactly_the_roles_its_row_names(context, subtests):
    clients = {role: client_for(user) for role, user in context.users.items()}
    for (name, method), row in EXPECTED.items():
        with subtests.test(msg=f"{method} {name}"):
            wrong = []
            for role in ROLES:
                # Each call in a savepoint rolled back: every role meets the same world (a label not yet withdrawn,
                # a token not yet revoked, a job not yet cancelled).
                with transaction.atomic():
                    path, body = row.request(context, role)
                    response = send(clients[role], method, path, body)
                    transaction.set_rollback(True)
                if role in row.allowed:
                    expected = row.ok
                else:
                    expected = ANONYMOUS_DENIED if role == "anonymous" else SIGNED_IN_DENIED
                if response.status_code != expected:
                    wrong.append(f"{role}: {response.status_code} (expected {expected}) "
                                 f"{response.content[:200]!r}")
                elif expected == ANONYMOUS_DENIED:
                    assert response["WWW-Authenticate"] == "Token", f"{role} {method} {path}"
            assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)


# --- Labels: one's own and another's -------------------------------------------------------------------------------


@pytest.fixture
def labels(context, expert, second_expert):
    """A galaxy10 label in force from each expert, on the same galaxy."""
    galaxy, schema = context.galaxy(5), context.world.schema
    mine = expert_label_set(galaxy=galaxy, schema=schema, label_class=schema.classes.get(key="5"), expert=expert)
    theirs = expert_label_set(galaxy=galaxy, schema=schema, label_class=schema.classes.get(key="8"),
                              expert=second_expert)
    return mine, theirs


def label_url(label: ExpertLabel, action: str = "") -> str:
    return reverse(f"api-expert-label-{action or 'detail'}", kwargs={"pk": label.pk})


def test_an_expert_changes_and_withdraws_their_own_label_but_not_another_experts(labels, expert):
    mine, theirs = labels
    client = client_for(expert)
    assert send(client, "PATCH", label_url(theirs), {"label_class": "2"}).status_code == 403
    assert send(client, "PUT", label_url(theirs), {"label_class": "2", "note": ""}).status_code == 403
    assert send(client, "DELETE", label_url(theirs), None).status_code == 403
    theirs.refresh_from_db()
    assert theirs.is_current and theirs.label_class.key == "8"
    assert ExpertLabel.objects.filter(expert=theirs.expert).count() == 1  # no replacement was made

    changed = send(client, "PATCH", label_url(mine), {"label_class": "2"})
    assert changed.status_code == 200 and changed.json()["label_class"] == "2"
    assert send(client, "DELETE", label_url(ExpertLabel.objects.get(pk=changed.json()["id"])), None).status_code == 204


def test_an_expert_reads_another_experts_label_and_its_history(labels, expert):
    mine, theirs = labels
    client = client_for(expert)
    assert send(client, "GET", label_url(theirs), None).json()["expert"] == theirs.expert.username
    history = send(client, "GET", label_url(theirs, "history"), None)
    assert history.status_code == 200 and [row["id"] for row in history.json()] == [theirs.pk]


def test_nobody_changes_another_experts_label_not_even_an_admin(labels, admin_user, second_expert):
    mine, _ = labels
    for user in (admin_user, second_expert):
        client = client_for(user)
        assert send(client, "PATCH", label_url(mine), {"note": "not mine"}).status_code == 403, user
        assert send(client, "PUT", label_url(mine), {"label_class": "2", "note": ""}).status_code == 403, user
    mine.refresh_from_db()
    assert mine.is_current and mine.note == "" and mine.label_class.key == "5"


def test_an_admin_withdraws_anyones_label_and_it_stays_in_the_history(labels, admin_user, second_expert, expert):
    mine, _ = labels
    assert send(client_for(second_expert), "DELETE", label_url(mine), None).status_code == 403
    mine.refresh_from_db()
    assert mine.is_current

    assert send(client_for(admin_user), "DELETE", label_url(mine), None).status_code == 204
    mine.refresh_from_db()
    assert not mine.is_current
    history = send(client_for(expert), "GET", label_url(mine, "history"), None).json()
    assert [(row["id"], row["current"]) for row in history] == [(mine.pk, False)]


# --- Tokens and CSRF -----------------------------------------------------------------------------------------------


def test_a_token_in_the_authorization_header_works_without_a_csrf_token(context, expert):
    client = Client(enforce_csrf_checks=True)
    given = client.post(reverse("api-token"), {"username": expert.username, "password": f"pw-{expert.username}"})
    assert given.status_code == 200
    header = {"HTTP_AUTHORIZATION": f"Token {given.json()['token']}"}
    path, body = label_body(context, "expert")
    response = client.post(path, as_json(body), content_type="application/json", **header)
    assert response.status_code == 201, response.content
    assert ExpertLabel.objects.filter(pk=response.json()["id"], expert=expert).exists()


def test_a_wrong_or_revoked_token_is_401_asking_for_a_token(context, expert):
    token = Token.objects.create(user=expert)
    client = Client()
    assert client.get(reverse("api-dataset-list"), HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert client.delete(reverse("api-token"), HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 204
    for key in (token.key, "0" * 40, "not-a-token"):
        response = client.get(reverse("api-dataset-list"), HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 401, key
        assert response["WWW-Authenticate"] == "Token"
        assert response.json() == {"detail": "Invalid token."}


def test_wrong_credentials_get_no_token_and_a_400(context, expert):
    response = Client().post(reverse("api-token"), {"username": expert.username, "password": "guess"})
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not Token.objects.filter(user=expert).exists()


def test_an_anonymous_caller_is_told_to_authenticate(context):
    response = Client().get(reverse("api-dataset-list"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_session_post_without_a_csrf_token_is_refused(context, expert, volunteer):
    client, csrf = csrf_client(expert)
    path, body = label_body(context, "expert")
    refused = client.post(path, as_json(body), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not ExpertLabel.objects.filter(expert=expert).exists()
    accepted = client.post(path, as_json(body), content_type="application/json", **csrf)
    assert accepted.status_code == 201, accepted.content

    client, csrf = csrf_client(volunteer)
    path, body = EXPECTED[("api-classification-list", "POST")].request(context, "volunteer")
    before = VolunteerClassification.objects.count()
    assert client.post(path, as_json(body), content_type="application/json").status_code == 403
    assert VolunteerClassification.objects.count() == before
    assert client.post(path, as_json(body), content_type="application/json", **csrf).status_code == 201


def test_every_unsafe_call_in_a_session_needs_the_csrf_token(context, subtests):
    """Each POST, PUT, PATCH and DELETE row, sent by a role it allows from a signed-in browser session."""
    clients = {role: csrf_client(context.user(role)) for role in ("volunteer", "expert", "admin")}
    unsafe = [(key, row) for key, row in EXPECTED.items() if key[1] in ("POST", "PUT", "PATCH", "DELETE")]
    assert len(unsafe) >= 10  # the table has them; an empty sweep would prove nothing
    for (name, method), row in unsafe:
        role = next(role for role in ("expert", "admin", "volunteer") if role in row.allowed)
        client, csrf = clients[role]
        with subtests.test(msg=f"{method} {name} as {role}"):
            answers = []
            for header in ({}, csrf):
                with transaction.atomic():  # both meet the same world
                    path, body = row.request(context, role)
                    answers.append(send(client, method, path, body, **header))
                    transaction.set_rollback(True)
            refused, accepted = answers
            assert refused.status_code == 403 and "CSRF" in refused.json()["detail"], refused.content[:200]
            assert accepted.status_code == row.ok, accepted.content[:200]


def test_head_and_options_follow_the_read_rule(context, volunteer, expert):
    for method in ("HEAD", "OPTIONS"):
        assert send(Client(), method, reverse("api-dataset-list"), None).status_code == 401
        assert send(client_for(volunteer), method, reverse("api-dataset-list"), None).status_code == 403
        assert send(client_for(expert), method, reverse("api-dataset-list"), None).status_code == 200
        assert send(client_for(volunteer), method, reverse("api-job-list"), None).status_code == 403
