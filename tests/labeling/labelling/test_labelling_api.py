"""The endpoints of the labelling page: next galaxies, label, undo, skip and bulk label; who may call them; bad
input named in a 400; a constant number of queries per request."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import Classifier, ExpertLabel, Job, QueueEntry
from labeling.services.labelling.queue import queue_build
from tests.labeling.queue_helpers import partly_labelled, policy, with_features

pytestmark = pytest.mark.django_db

NEXT, LABELS, UNDO, BULK = (reverse(name) for name in ("api-queue-next", "api-labels", "api-labels-undo",
                                                       "api-labels-bulk"))


@pytest.fixture
def labelled(tmp_path):
    return partly_labelled(tmp_path / "import")


@pytest.fixture
def queued(labelled, expert):
    dataset, schema = labelled
    policy(dataset, batch_size=10, double_label_share=0, refit_every=1000)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    return dataset, schema


@pytest.fixture
def as_expert(client, expert):
    client.force_login(expert)
    return client


def next_entries(client, dataset, schema, **params):
    response = client.get(NEXT, {"dataset": dataset.pk, "schema": schema.name, **params})
    assert response.status_code == 200, response.content
    return response.json()


def give(client, entry, schema, key="5", **extra):
    return client.post(LABELS, {"galaxy": entry["galaxy"]["id"], "schema": schema.name, "label_class": key,
                                "queue_entry": entry["id"], **extra}, content_type="application/json")


def test_next_returns_the_head_of_the_queue_with_what_the_page_shows(as_expert, queued, expert):
    dataset, schema = queued
    body = next_entries(as_expert, dataset, schema, count=2)
    first, second = body["entries"]
    ranks = list(QueueEntry.objects.filter(expert=expert, status="pending").order_by("rank")
                 .values_list("pk", flat=True)[:2])
    assert [first["id"], second["id"]] == ranks
    assert first["galaxy"]["image_url"].startswith("/media/")
    assert first["why"]["strategy"] == "random" and first["prediction"] is None and first["your_label"] is None
    assert body["remaining"] == 10 and body["labelled_today"] == 0 and body["building"] is False
    # The entries the page already holds are not handed out again.
    again = next_entries(as_expert, dataset, schema, count=1, exclude=f"{first['id']},{second['id']}")
    assert again["entries"][0]["id"] not in (first["id"], second["id"])


def test_next_shows_the_models_prediction_and_eight_labelled_neighbours(as_expert, labelled, expert):
    dataset, schema = labelled
    feature_set = with_features(dataset)
    from labeling.services.learning.classifier import classifier_fit

    classifier_fit(feature_set=feature_set, schema=schema)
    policy(dataset, batch_size=3, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="entropy")
    entry = next_entries(as_expert, dataset, schema, count=1)["entries"][0]
    prediction = entry["prediction"]
    assert prediction["classifier_id"] == Classifier.objects.get().pk
    assert abs(sum(p["p"] for p in prediction["probabilities"]) - 1) < 0.01
    assert prediction["label_class"] == prediction["probabilities"][0]["key"]
    assert len(entry["neighbours"]) == 8
    labelled_ids = set(ExpertLabel.objects.values_list("galaxy_id", flat=True))
    for neighbour in entry["neighbours"]:
        assert (neighbour["label_source"] == "expert") == (neighbour["id"] in labelled_ids)
    # A figure a person can read: ranks 1..8 and a 0-100 similarity that falls along the list and is not flat.
    assert [n["rank"] for n in entry["neighbours"]] == list(range(1, 9))
    likeness = [n["likeness"] for n in entry["neighbours"]]
    assert all(0 <= value <= 100 for value in likeness) and likeness == sorted(likeness, reverse=True)
    assert likeness[0] > likeness[-1]


def test_a_label_is_saved_closes_the_entry_and_counts_today(as_expert, queued, expert):
    dataset, schema = queued
    entry = next_entries(as_expert, dataset, schema, count=1)["entries"][0]
    response = give(as_expert, entry, schema, "5", note="bar is faint")
    assert response.status_code == 201, response.content
    assert response.json()["labelled_today"] == 1
    label = ExpertLabel.objects.get(expert=expert)
    assert (label.galaxy_id, label.label_class.key, label.note) == (entry["galaxy"]["id"], "5", "bar is faint")
    assert QueueEntry.objects.get(pk=entry["id"]).status == "done"
    assert next_entries(as_expert, dataset, schema, count=1)["entries"][0]["id"] != entry["id"]


def test_sending_the_same_label_twice_stores_it_once(as_expert, queued, expert):
    dataset, schema = queued
    entry = next_entries(as_expert, dataset, schema, count=1)["entries"][0]
    assert give(as_expert, entry, schema).status_code == 201
    assert give(as_expert, entry, schema).status_code == 201
    assert ExpertLabel.objects.filter(expert=expert).count() == 1


@pytest.mark.parametrize("field, value, message", [
    ("label_class", "99", "'99' is not a class of schema 'galaxy10'"),
    ("galaxy", 999999, "object does not exist"),
    ("schema", "nonesuch", "does not exist"),
])
def test_bad_input_gets_a_400_naming_the_field(as_expert, queued, field, value, message):
    dataset, schema = queued
    entry = next_entries(as_expert, dataset, schema, count=1)["entries"][0]
    body = {"galaxy": entry["galaxy"]["id"], "schema": schema.name, "label_class": "5", field: value}
    response = as_expert.post(LABELS, body, content_type="application/json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not ExpertLabel.objects.filter(expert__isnull=False).exists()


def test_next_without_a_dataset_is_a_400_naming_it(as_expert, queued):
    response = as_expert.get(NEXT, {"schema": queued[1].name})
    assert response.status_code == 400 and "dataset" in response.json()


def test_undo_takes_back_the_last_label_and_puts_the_galaxy_first_again(as_expert, queued, expert):
    dataset, schema = queued
    first, second = next_entries(as_expert, dataset, schema, count=2)["entries"]
    give(as_expert, first, schema, "2")
    give(as_expert, second, schema, "8")
    response = as_expert.post(UNDO, {"dataset": dataset.pk, "schema": schema.name}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["undone"] == {"galaxy": second["galaxy"]["id"], "label_class": "8"}
    assert body["entry"]["galaxy"]["id"] == second["galaxy"]["id"] and body["labelled_today"] == 1
    assert list(ExpertLabel.objects.filter(expert=expert).values_list("galaxy_id", flat=True)) == [
        first["galaxy"]["id"]]
    assert next_entries(as_expert, dataset, schema, count=1)["entries"][0]["galaxy"]["id"] == second["galaxy"]["id"]


def test_undoing_a_changed_label_brings_back_the_one_it_replaced(as_expert, queued, expert):
    dataset, schema = queued
    entry = next_entries(as_expert, dataset, schema, count=1)["entries"][0]
    give(as_expert, entry, schema, "2")
    give(as_expert, entry, schema, "8")
    as_expert.post(UNDO, {"dataset": dataset.pk, "schema": schema.name}, content_type="application/json")
    current = ExpertLabel.objects.get(expert=expert, superseded_at__isnull=True)
    assert current.label_class.key == "2" and ExpertLabel.objects.filter(expert=expert).count() == 1


def test_undo_with_nothing_to_undo_is_a_404(as_expert, queued):
    dataset, schema = queued
    response = as_expert.post(UNDO, {"dataset": dataset.pk, "schema": schema.name}, content_type="application/json")
    assert response.status_code == 404 and response.json()["detail"] == "nothing to undo"


def test_skip_closes_ones_own_entry_but_not_another_experts(client, queued, expert, second_expert):
    dataset, schema = queued
    entry = QueueEntry.objects.filter(expert=expert).order_by("rank").first()
    client.force_login(second_expert)
    assert client.post(reverse("api-queue-skip", args=[entry.pk])).status_code == 403
    client.force_login(expert)
    assert client.post(reverse("api-queue-skip", args=[entry.pk])).status_code == 200
    entry.refresh_from_db()
    assert entry.status == "skipped"


def test_an_expert_cannot_change_another_experts_label(client, queued, expert, second_expert):
    dataset, schema = queued
    client.force_login(expert)
    entry = next_entries(client, dataset, schema, count=1)["entries"][0]
    give(client, entry, schema, "2")
    client.force_login(second_expert)
    assert give(client, entry, schema, "8").status_code == 201
    assert ExpertLabel.objects.get(expert=expert).label_class.key == "2"
    assert ExpertLabel.objects.get(expert=second_expert).label_class.key == "8"
    # Undo only ever takes back one's own label.
    client.post(UNDO, {"dataset": dataset.pk, "schema": schema.name}, content_type="application/json")
    assert ExpertLabel.objects.filter(expert=expert).count() == 1
    assert not ExpertLabel.objects.filter(expert=second_expert).exists()


def test_bulk_labelling_gives_one_class_to_every_selected_galaxy(as_expert, queued, expert):
    dataset, schema = queued
    ids = list(dataset.galaxies.order_by("pk").values_list("pk", flat=True)[:4])
    response = as_expert.post(BULK, {"schema": schema.name, "label_class": "8", "galaxies": ids},
                              content_type="application/json")
    assert response.status_code == 201 and response.json() == {"labelled": 4, "unchanged": 0}
    assert sorted(ExpertLabel.objects.filter(expert=expert, label_class__key="8").values_list(
        "galaxy_id", flat=True)) == ids
    again = as_expert.post(BULK, {"schema": schema.name, "label_class": "8", "galaxies": ids},
                           content_type="application/json")
    assert again.json() == {"labelled": 0, "unchanged": 4}


def test_bulk_labelling_with_an_unknown_galaxy_writes_nothing(as_expert, queued, expert):
    dataset, schema = queued
    ids = [*dataset.galaxies.values_list("pk", flat=True)[:2], 999999]
    response = as_expert.post(BULK, {"schema": schema.name, "label_class": "8", "galaxies": ids},
                              content_type="application/json")
    assert response.status_code == 400 and "999999" in str(response.json()["galaxies"])
    assert not ExpertLabel.objects.filter(expert=expert).exists()


@pytest.mark.parametrize("who", ["anonymous", "volunteer", "outsider"])
def test_only_experts_and_admins_may_call_the_labelling_endpoints(client, queued, who, request):
    dataset, schema = queued
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    galaxy = dataset.galaxies.first()
    entry = QueueEntry.objects.first()
    calls = [
        client.get(NEXT, {"dataset": dataset.pk, "schema": schema.name}),
        client.post(LABELS, {"galaxy": galaxy.pk, "schema": schema.name, "label_class": "5"},
                    content_type="application/json"),
        client.post(UNDO, {"dataset": dataset.pk, "schema": schema.name}, content_type="application/json"),
        client.post(reverse("api-queue-skip", args=[entry.pk])),
        client.post(BULK, {"schema": schema.name, "label_class": "5", "galaxies": [galaxy.pk]},
                    content_type="application/json"),
    ]
    # Without credentials: 401 (sign in or send a token); signed in without the role: 403.
    assert [response.status_code for response in calls] == [401 if who == "anonymous" else 403] * 5
    assert not ExpertLabel.objects.filter(expert__isnull=False).exists()
    assert QueueEntry.objects.get(pk=entry.pk).status == "pending"


def test_an_admin_may_label(client, queued, admin_user):
    dataset, schema = queued
    client.force_login(admin_user)
    galaxy = dataset.galaxies.first()
    response = client.post(LABELS, {"galaxy": galaxy.pk, "schema": schema.name, "label_class": "5"},
                           content_type="application/json")
    assert response.status_code == 201


def test_the_session_api_checks_the_csrf_token(queued, expert):
    from django.test import Client

    dataset, schema = queued
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(expert)
    galaxy = dataset.galaxies.first()
    response = strict.post(LABELS, {"galaxy": galaxy.pk, "schema": schema.name, "label_class": "5"},
                           content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_an_empty_queue_is_built_for_the_expert_on_first_request(as_expert, labelled, expert,
                                                                 django_capture_on_commit_callbacks):
    dataset, schema = labelled
    policy(dataset, batch_size=4)
    with django_capture_on_commit_callbacks(execute=True):
        body = next_entries(as_expert, dataset, schema, count=2)
    if not body["entries"]:  # the build ran when the request's transaction committed
        body = next_entries(as_expert, dataset, schema, count=2)
    assert len(body["entries"]) == 2 and body["remaining"] == 4


def test_enough_new_labels_refit_the_model_and_rebuild_the_queue(as_expert, labelled, expert,
                                                                  django_capture_on_commit_callbacks):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=5, refit_every=3, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    entries = next_entries(as_expert, dataset, schema, count=4)["entries"]
    with django_capture_on_commit_callbacks(execute=True):
        for entry, key in zip(entries[:2], ["2", "5"], strict=True):
            assert give(as_expert, entry, schema, key).status_code == 201
        assert not Classifier.objects.exists()
        assert give(as_expert, entries[2], schema, "8").status_code == 201
    classifier = Classifier.objects.get()
    assert classifier.n_labels == 9
    assert QueueEntry.objects.filter(expert=expert, status="pending", classifier=classifier).exists()
    # The count starts again: the next label does not start another refit.
    following = QueueEntry.objects.filter(expert=expert, status="pending").first()
    give(as_expert, {"id": following.pk, "galaxy": {"id": following.galaxy_id}}, schema, "2")
    assert Job.objects.filter(kind=Job.Kind.FIT_CLASSIFIER).count() == 1


def count_queries(callable_) -> int:
    with CaptureQueriesContext(connection) as queries:
        callable_()
    return len(queries)


def test_next_and_label_cost_the_same_queries_for_a_small_and_a_larger_dataset(client, tmp_path, expert):
    """No N+1: the number of queries does not grow with the dataset or the labels around the galaxy."""
    costs = []
    client.force_login(expert)
    for n, per_class in enumerate((3, 8)):
        dataset, schema = partly_labelled(tmp_path / f"import{n}", per_class=per_class, keep_per_class=per_class - 2,
                                          name=f"subset {n}")
        with_features(dataset)
        policy(dataset, batch_size=4, double_label_share=0, refit_every=1000)
        queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
        entries = next_entries(client, dataset, schema, count=2)["entries"]
        next_cost = count_queries(lambda d=dataset, s=schema: next_entries(client, d, s, count=2))
        label_cost = count_queries(lambda e=entries[0], s=schema: give(client, e, s, "5"))
        costs.append((next_cost, label_cost))
    assert costs[0] == costs[1], costs
    assert costs[0][0] <= 40 and costs[0][1] <= 20, costs
