"""Property-based tests of the whole API with Schemathesis, driven by the live OpenAPI schema at /api/schema/.

The schema is fetched from the running application (Django's WSGI handler, called in-process, so the requests run in
this test's database transaction and see its rows), and every operation in it, none excluded, gets generated
requests (each operation is reported as a subtest): the "coverage" phase (boundary and deliberately invalid values,
undocumented methods) and the "fuzzing" phase (Hypothesis, positive and negative data, at most 20 examples per
operation, derandomised). Path ids, filters and body fields are often drawn from the rows of a real small world
(tests/labeling/api_helpers.py, plus labels of the callers' own, their queues and a queued job), so requests reach
the services, not only the serializers.

Who sends what:

- an admin (a DRF token), every operation: no request may be answered with a 5xx;
- an expert (a DRF token), every read, fuzzing phase only and at most 10 examples per operation (the admin's run
  already sends the coverage phase's boundary values to the same reads): no 5xx, and no refusal (401/403): experts
  read everything, jobs included.

Checks, and why only these:

- ``not_a_server_error``: bad input must give a 400 naming the field, never a 500 (the issue's rule).
- ``content_type_conformance``: what a documented status says it returns (JSON, CSV, JSON Lines) is what comes back.
- ``response_schema_conformance``: a documented 2xx body matches its documented schema (the serializers and the
  schema do not drift apart).
- ``unsupported_method``: an undocumented method (the coverage phase sends POST, PUT, PATCH and DELETE to every
  path) is refused.

Left out on purpose: ``status_code_conformance`` (the views' 400, 404 and 409 are deliberate and undocumented in the
schema, so it fails on correct answers); ``positive_data_acceptance`` (a schema-valid id of a row that does not exist
is rightly a 404, and a class filter without ``schema`` rightly a 400); ``negative_data_rejection`` (it fails on
DRF's and django-filter's documented leniency: an unusable ``page_size`` falls back to the default page size, an
empty filter value means no filter); ``use_after_free`` and ``ensure_resource_availability`` (every request is
rolled back, see below, so there is no created resource to look for); ``response_headers_conformance`` and
``missing_required_header`` (the schema documents no response headers and requires no request header, so they
would check nothing); ``ignored_auth`` (it passes, but its probes, successful requests sent again without the token
and with a wrong one, cost about 7 s for what tests/labeling/api/test_api_permissions.py asserts already: every endpoint
answers a caller without credentials with 401, and a wrong token is refused).

Every request runs in a savepoint that is rolled back, so writes never pile up across cases and a failed statement on
PostgreSQL cannot poison the next request. Jobs created through POST /api/jobs/ never run, although the test settings
run django-q tasks inline (``Q_CLUSTER["sync"]``): a job is enqueued with ``transaction.on_commit``, and nothing here
commits, so POST /api/jobs/ is fuzzed like the rest.

Django's handler closes "unusable" database connections at the start and end of each request; inside a test
transaction that would close the test's own connection, so ``in_process`` disconnects it, as Django's test client
does.

Below the generated tests: inputs found by hand that the generation does not send (integers past 64 bits), and the
schema's own content.
"""

import traceback

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from labeling.models import (
    Classifier,
    Clustering,
    ConsensusLabel,
    Dataset,
    DecisionTree,
    ExpertLabel,
    FeatureSet,
    Galaxy,
    Job,
    LabelClass,
    LabelSchema,
    ModelVersion,
    Prediction,
    QueueEntry,
    VoteSummary,
)
from labeling.services.labelling.labels import expert_label_set
from labeling.services.labelling.queue import queue_build, queue_build_start
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.labeling.api_helpers import api_world
from tests.labeling.queue_helpers import policy

pytestmark = pytest.mark.django_db

APP = get_wsgi_application()
SCHEMA_PATH = "/api/schema/"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.unsupported_method,
]


def real_values(users) -> dict[str, list]:
    """Dictionaries of real ids and names, by what they name; every list has at least one value."""
    values = {
        "datasets": Dataset.objects.values_list("pk", flat=True),
        "galaxies": Galaxy.objects.values_list("pk", flat=True),
        "vote-summaries": VoteSummary.objects.values_list("pk", flat=True),
        "expert-labels": ExpertLabel.objects.values_list("pk", flat=True),
        "consensus-labels": ConsensusLabel.objects.values_list("pk", flat=True),
        "model-versions": ModelVersion.objects.values_list("pk", flat=True),
        "clusterings": Clustering.objects.values_list("pk", flat=True),
        "predictions": Prediction.objects.values_list("pk", flat=True),
        "jobs": Job.objects.values_list("pk", flat=True),
        "queue": QueueEntry.objects.values_list("pk", flat=True),
        "trees": DecisionTree.objects.values_list("name", flat=True),
        "schemas": LabelSchema.objects.values_list("name", flat=True),
        "label-schema": ["galaxy10"],
        "feature-sets": FeatureSet.objects.values_list("pk", flat=True),
        "classifiers": Classifier.objects.values_list("pk", flat=True),
        "classes": LabelClass.objects.filter(schema__name="galaxy10").values_list("key", flat=True),
        "usernames": [user.username for user in users],
        "passwords": [f"pw-{user.username}" for user in users],
    }
    values = {name: sorted(set(found)) for name, found in values.items()}
    empty = [name for name, found in values.items() if not found]
    assert not empty, f"the world has no {empty}: the fuzzing would never reach a real row"
    return values


# Path ids by the resource (the path's first segment) they name.
PATH_IDS = {"datasets": "path.id", "galaxies": "path.id", "vote-summaries": "path.id", "expert-labels": "path.id",
            "consensus-labels": "path.id", "model-versions": "path.id", "clusterings": "path.id",
            "predictions": "path.id", "jobs": "path.id", "queue": "path.entry_id", "trees": "path.name",
            "schemas": "path.name"}

# Query parameters and body fields, by name, and the dictionary their real values come from. A body's schema is
# galaxy10's, whose classes "label_class" draws from, so that a label's schema and class often agree.
FIELDS = {"dataset": "datasets", "galaxy": "galaxies", "clustering": "clusterings", "model_version": "model-versions",
          "feature_set": "feature-sets", "classifier": "classifiers", "schema": "schemas", "tree": "trees",
          "label": "classes"}
BODY_FIELDS = {**FIELDS, "schema": "label-schema", "label_class": "classes", "galaxies[*]": "galaxies",
               "username": "usernames", "password": "passwords"}


def fuzz_config(*, token: str, values: dict[str, list], coverage: bool, max_examples: int) -> schemathesis.Config:
    """Bounded, reproducible generation that sends ``token`` and often draws ids and names from ``values``: path ids
    three times in four, query filters half the time, body fields nine times in ten (a body with one made-up field
    stops at the serializer, so the services are only reached when all of them are real)."""
    parameters = {f"query.{name}": {"dictionary": source, "probability": 0.5} for name, source in FIELDS.items()}
    parameters |= {f"body.{name}": {"dictionary": source, "probability": 0.9} for name, source in BODY_FIELDS.items()}
    operations = [{"include-path-regex": f"^/api/{resource}/",
                   "parameters": {**parameters, parameter: {"dictionary": resource, "probability": 0.75}}}
                  for resource, parameter in PATH_IDS.items()]
    return schemathesis.Config.from_dict({
        "seed": 1,
        "auth": {"openapi": {"tokenAuth": {"api_key": f"Token {token}"}}},
        "generation": {"max-examples": max_examples, "deterministic": True, "database": "none",
                       # The token above is the credential; generated Authorization headers would only replace it.
                       "with-security-parameters": False},
        # One request at a time, each rolled back: there is no state for the stateful phase to walk.
        "phases": {"stateful": {"enabled": False}, "coverage": {
            "enabled": coverage,
            # Undocumented methods: the writes (a read-only endpoint must refuse them); GET, OPTIONS, TRACE and
            # QUERY add time and no risk.
            "unexpected-methods": ["post", "put", "patch", "delete"]}},
        "dictionaries": {name: {"values": found} for name, found in values.items()},
        "parameters": parameters,
        "operations": operations,
    })


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request):
    """schemathesis 4.32.5's from_fixture reads and rewrites ``Node._nodeid``, which pytest 9.2 no longer has (it
    keeps ``_id``); give it one, which changes nothing else (pytest reports from ``_id``)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def in_process():
    """Requests through the WSGI handler on the test's own connection; yields the tracebacks of server errors."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    tracebacks = []

    def record(**kwargs):
        tracebacks.append(traceback.format_exc())

    signals.got_request_exception.connect(record)
    yield tracebacks
    signals.got_request_exception.disconnect(record)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(tmp_path, expert, admin_user):
    """The API world, with labels of the expert's and the admin's own (one replaced, so history and the 409 of
    changing a replaced label are reachable), their queues and one queued job, so every id has a real row."""
    world = api_world(tmp_path / "import")
    first, second = world.dataset.galaxies.order_by("pk")[:2]
    classes = list(world.schema.classes.order_by("order")[:2])
    for user in (expert, admin_user):
        for galaxy in (first, second):
            expert_label_set(galaxy=galaxy, schema=world.schema, label_class=classes[0], expert=user)
    expert_label_set(galaxy=second, schema=world.schema, label_class=classes[1], expert=admin_user)
    policy(world.dataset, batch_size=4, double_label_share=0)
    queue_build(dataset=world.dataset, schema=world.schema, experts=[expert, admin_user], strategy="random")
    queue_build_start(dataset=world.dataset, schema=world.schema, user=admin_user)
    return world


def live_schema(user, users, **generation):
    """The schema /api/schema/ serves to ``user`` (any signed-in user may read it), set up to send their token."""
    token = Token.objects.create(user=user).key
    config = fuzz_config(token=token, values=real_values(users), **generation)
    return schemathesis.openapi.from_wsgi(SCHEMA_PATH, APP, config=config, headers={
        "Authorization": f"Token {token}", "Accept": "application/vnd.oai.openapi+json"})


@pytest.fixture
def schema_as_admin(world, in_process, admin_user, expert):
    return live_schema(admin_user, [admin_user, expert], coverage=True, max_examples=20)


@pytest.fixture
def schema_as_expert(world, in_process, expert, admin_user):
    return live_schema(expert, [expert, admin_user], coverage=False, max_examples=10)


def sent(case, tracebacks, checks):
    """Send ``case`` in a savepoint that is always rolled back; run ``checks``; a server error shows its traceback."""
    tracebacks.clear()
    try:
        with transaction.atomic():
            try:
                return case.call_and_validate(checks=checks)
            finally:
                transaction.set_rollback(True)
    finally:
        for text in tracebacks:
            print(f"Server error on {case.method} {case.formatted_path}:\n{text}")


as_admin = schemathesis.pytest.from_fixture("schema_as_admin")
as_expert = schemathesis.pytest.from_fixture("schema_as_expert")


@as_admin.parametrize()
def test_no_request_an_admin_sends_is_answered_with_a_server_error(case, in_process):
    sent(case, in_process, CHECKS)


@as_expert.include(method="GET").parametrize()
def test_an_expert_reads_everything_without_a_refusal_or_a_server_error(case, in_process):
    response = sent(case, in_process, [schemathesis.checks.not_a_server_error])
    assert response.status_code not in (401, 403), response.text


# --- Integers too large for the database -------------------------------------------------------------------------
# Beyond what the generation above sends (it draws small integers): an id past 2**63 - 1 once reached SQLite, whose
# driver raised OverflowError, a 500. Each case must be a 400 naming the parameter or an answer that finds nothing.

TOO_LARGE = 2**63


@pytest.fixture
def expert_client(expert):
    client = Client()
    client.force_login(expert)
    return client


@pytest.mark.parametrize("url, parameter", [
    pytest.param(f"/api/expert-labels/?galaxy={TOO_LARGE}", "galaxy"),
    pytest.param(f"/api/vote-summaries/?galaxy={TOO_LARGE}", "galaxy"),
    pytest.param(f"/api/consensus-labels/?galaxy={TOO_LARGE}", "galaxy"),
    pytest.param(f"/api/predictions/?galaxy={TOO_LARGE}", "galaxy"),
    pytest.param(f"/api/predictions/?classifier={TOO_LARGE}", "classifier"),
    pytest.param(f"/api/galaxies/?dataset={TOO_LARGE}", "dataset"),
    pytest.param(f"/api/jobs/?dataset={TOO_LARGE}", "dataset"),
])
def test_a_filter_by_an_id_too_large_for_the_database_is_not_a_server_error(admin_user, url, parameter):
    client = Client()
    client.force_login(admin_user)
    response = client.get(url)
    if response.status_code == 400:
        assert parameter in response.json()
    else:
        assert response.status_code == 200 and response.json()["count"] == 0, response.content


def test_queue_next_excluding_an_entry_id_too_large_for_the_database_is_not_a_server_error(expert_client):
    dataset = Dataset.objects.create(name="Empty", slug="empty")
    schema_get_or_load_shipped(name="galaxy10")
    response = expert_client.get("/api/queue/next/", {"dataset": dataset.pk, "schema": "galaxy10",
                                                      "exclude": f"1,{TOO_LARGE}"})
    if response.status_code == 400:
        assert "exclude" in response.json()
    else:
        assert response.status_code == 200 and response.json()["entries"] == [], response.content


def test_bulk_labelling_a_galaxy_id_too_large_for_the_database_is_a_400_naming_the_galaxies(expert_client):
    schema_get_or_load_shipped(name="galaxy10")
    response = expert_client.post("/api/labels/bulk/", {"schema": "galaxy10", "label_class": "5",
                                                        "galaxies": [TOO_LARGE]}, content_type="application/json")
    assert response.status_code == 400 and "galaxies" in response.json(), response.content
    assert not ExpertLabel.objects.exists()


def test_the_schema_documents_the_api_and_not_its_own_pages(expert_client):
    response = expert_client.get(SCHEMA_PATH, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert "/api/expert-labels/{id}/history/" in paths
    assert not paths & {"/api/schema/", "/api/docs/", "/api/redoc/"}
