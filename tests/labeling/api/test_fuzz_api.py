"""Hypothesis against every API operation that takes a body, with bodies the OpenAPI schema does not allow (the
schema-conformant side is tests/labeling/api/test_api_schemathesis.py): arbitrary JSON (nested, null, huge integers,
long unicode, lists where objects are expected), a valid body with one field made wrong (another type, an unknown
id, another dataset's object, missing), and bytes that are not JSON at all, sent as an expert (session) and as an
admin (token). Then the list endpoints' query strings, with every documented filter and some made up.

The operations come from the URL configuration (test_api_permissions.api_endpoints); the valid body of each from its
row in test_api_permissions.EXPECTED, which that file requires for every endpoint: a new endpoint is fuzzed here as
soon as it has its row. The world is built once per test; each request runs in a savepoint rolled back afterwards.

The property: never a 5xx; a 4xx is JSON saying what is wrong (a 400 names the fields at fault, or says
"non_field_errors"/"detail"), and writes nothing (labels, classifications, jobs, queue entries, tokens).
"""

import json
from collections.abc import Callable
from functools import partial

import pytest
from django.db import transaction
from django.db.models import Count
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from labeling.models import ExpertLabel, Job, QueueEntry, VolunteerClassification
from tests.labeling.api.test_api_permissions import EXPECTED, api_endpoints
from tests.labeling.api_helpers import api_world
from tests.labeling.factories import make_galaxies
from tests.labeling.fuzz_tables import FUZZ
from tests.labeling.permission_helpers import client_for, context_for

pytestmark = pytest.mark.django_db

API_FUZZ = settings(FUZZ, max_examples=15)
BODY_METHODS = {"POST", "PUT", "PATCH"}
TOO_LARGE = 2**70

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([TOO_LARGE, -TOO_LARGE, 2**63, -1, 0]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["x" * 20_000, "é😀\u202e\x00", "", "galaxy10", "null", "[]"]),
)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def fingerprint() -> dict:
    """What a refused request must leave as it was."""
    return {
        "labels": ExpertLabel.objects.count(),
        "current labels": ExpertLabel.objects.filter(superseded_at__isnull=True).count(),
        "classifications": VolunteerClassification.objects.count(),
        "jobs": dict(Job.objects.values_list("status").annotate(n=Count("pk"))),
        "queue": dict(QueueEntry.objects.values_list("status").annotate(n=Count("pk"))),
        "tokens": Token.objects.count(),
    }


def fuzzed(strategy: st.SearchStrategy, send: Callable) -> None:
    """``send(value)`` for each value the strategy draws (bounded and reproducible, see fuzz_tables.FUZZ)."""

    @API_FUZZ
    @given(value=strategy)
    def check(value):
        send(value)

    check()


def sent(client: Client, method: str, path: str, headers: dict, body: bytes):
    """The response to ``body`` sent as JSON, in a rolled-back savepoint, checked against the property."""
    with transaction.atomic():
        before = fingerprint()
        response = client.generic(method, path, data=body, content_type="application/json", **headers)
        after = fingerprint()
        transaction.set_rollback(True)
    where = f"{method} {path} {body[:300]!r}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.content[:500]!r}"
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), where
        answer = response.json()
        assert answer and isinstance(answer, dict), f"{where}: {answer}"
        if response.status_code != 400:
            assert answer.get("detail"), f"{where}: {answer}"
        assert after == before, f"{where}: a refused request wrote {before} -> {after}"
    return response


@pytest.fixture
def world(tmp_path, volunteer, outsider, expert, second_expert, admin_user):
    """The API world with queues and a job; plus a second dataset, whose objects a body may wrongly name."""
    context = context_for(api_world(tmp_path / "import"), volunteer=volunteer, outsider=outsider, expert=expert,
                          second_expert=second_expert, admin_user=admin_user)
    other = make_galaxies(2, dataset_name="other set")
    return context, other


def clients(context, expert, admin_user) -> dict[str, tuple[Client, dict]]:
    """The expert signs in with a session, the admin sends a token."""
    token = Token.objects.create(user=admin_user).key
    return {"expert": (client_for(expert), {}), "admin": (Client(), {"HTTP_AUTHORIZATION": f"Token {token}"})}


def wrong_values(context, other) -> list:
    world = context.world
    return [None, True, -1, 0, TOO_LARGE, 1.5, "", "x" * 5000, [], {}, [None], {"id": 1}, 10**9, str(10**9),
            other[0].pk, other[0].dataset_id, "broad-morphology", "no-such-schema", world.broad.pk,
            [other[0].pk, TOO_LARGE], [context.galaxy(0).pk] * 3, "\x00"]


@st.composite
def one_field_wrong(draw, body: dict, values: list) -> dict:
    body = dict(body)
    keys = [*body, "unexpected"]
    key = draw(st.sampled_from(keys))
    if key in body and draw(st.integers(0, 4)) == 0:
        del body[key]
    else:
        body[key] = draw(st.one_of(st.sampled_from(values), SCALARS))
    return body


def bodies(valid: dict | None, values: list) -> st.SearchStrategy[bytes]:
    as_bytes = st.builds(lambda value: json.dumps(value).encode(), ANY_JSON)
    strategies = [as_bytes, st.binary(max_size=200), st.sampled_from([b"", b"{", b"NaN", b'{"a": NaN}', b"\xff\xfe",
                                                                    b'{"galaxy": 1e999}', b"[" * 5000])]
    if isinstance(valid, dict) and valid:
        mutated = st.builds(lambda body: json.dumps(body).encode(), one_field_wrong(valid, values))
        strategies += [mutated, mutated]
    return st.one_of(*strategies)


def test_no_malformed_body_is_a_server_error_and_a_refused_one_writes_nothing(world, expert, admin_user, subtests):
    context, other = world
    callers = clients(context, expert, admin_user)
    values = wrong_values(context, other)
    operations = sorted(operation for operation in api_endpoints() if operation[1] in BODY_METHODS)
    assert len(operations) >= 10, operations
    for name, method in operations:
        for role, (client, headers) in callers.items():
            with subtests.test(msg=f"{role} {method} {name}"):
                with transaction.atomic():  # the valid request's own set-up (a label to change) is rolled back too
                    path, valid = EXPECTED[name, method].request(context, role)
                    fuzzed(bodies(valid, values), partial(sent, client, method, path, headers))
                    transaction.set_rollback(True)


def list_endpoints(client: Client, headers: dict) -> dict[str, list[str]]:
    """Every GET path without a path parameter in the live OpenAPI schema, with its query parameters' names."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json", **headers).json()
    return {path: [parameter["name"] for parameter in operation["get"].get("parameters", [])
                   if parameter["in"] == "query"]
            for path, operation in schema["paths"].items() if "get" in operation and "{" not in path}


QUERY_VALUES = st.one_of(st.text(max_size=30), st.sampled_from(
    ["", "-1", "0", str(TOO_LARGE), "1.5", "nan", "true", "1,2,x", "x" * 3000, "%00", "\x00", "galaxy10", "[]"]))


def test_no_query_string_on_a_list_endpoint_is_a_server_error(world, expert, admin_user, subtests):
    context, other = world
    client, headers = clients(context, expert, admin_user)["admin"]
    endpoints = list_endpoints(client, headers)
    assert "/api/galaxies/" in endpoints and "dataset" in endpoints["/api/galaxies/"]
    for path, parameters in sorted(endpoints.items()):
        with subtests.test(msg=path):
            names = st.sampled_from([*parameters, "page", "page_size", "ordering", "unknown"])
            queries = st.lists(st.tuples(names, QUERY_VALUES), max_size=4)
            fuzzed(queries, partial(asked, client, path, headers))


def asked(client: Client, path: str, headers: dict, query: list[tuple[str, str]]) -> None:
    """GET ``path`` with the query (a name may come several times), in a rolled-back savepoint: never a 5xx."""
    with transaction.atomic():
        response = client.get(path, {name: [v for n, v in query if n == name] for name, _ in query}, **headers)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # an export fails while it streams, not before
        transaction.set_rollback(True)
    assert response.status_code < 500, f"{path}?{query}: {response.status_code}"
    if response.status_code == 400:
        assert response.json(), f"{path}?{query}"


@pytest.mark.parametrize("url, parameter", [
    ("/api/expert-labels/?current=100%25", "current"),
    ("/api/galaxies/?has_expert_label=%25s", "has_expert_label"),
])
def test_a_filter_value_holding_a_percent_sign_is_a_400_naming_the_filter(url, parameter, expert):
    # Found by the fuzzing above: the value went into the error message, which django-filter formats with %.
    response = client_for(expert).get(url)
    assert response.status_code == 400 and parameter in response.json(), response.content
