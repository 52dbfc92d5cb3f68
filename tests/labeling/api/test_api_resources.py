"""The REST API's resources as a script sees them: lists with filters and pages, expert labels changed and
withdrawn with their history kept, classifications that update the vote summaries, clusterings with their
centroids, neighbours, jobs, tokens, streamed exports, and a 400 naming the field for bad input."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from labeling.models import ClusterAssignment, ExpertLabel, Job, VoteSummary
from mlcore.features.store import FeatureStore
from tests.labeling.api_helpers import SMOOTH_ROUND, api_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path):
    return api_world(tmp_path / "import")


@pytest.fixture
def as_expert(client, expert):
    client.force_login(expert)
    return client


def results(client, url, params=None, status=200):
    response = client.get(url, params or {})
    assert response.status_code == status, response.content
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def test_galaxies_filter_by_expert_class_consensus_cluster_and_label_presence(as_expert, world):
    labelled = set(ExpertLabel.objects.filter(galaxy__dataset=world.dataset, label_class__key="5")
                   .values_list("galaxy_id", flat=True))
    found = results(as_expert, "/api/galaxies/", {"dataset": world.dataset.pk, "schema": "galaxy10", "label": "5"})
    assert {row["id"] for row in found} == labelled and len(labelled) == 2
    unlabelled = results(as_expert, "/api/galaxies/", {"schema": "galaxy10", "has_expert_label": "false"})
    assert len(unlabelled) == 18 - 6
    elliptical = results(as_expert, "/api/galaxies/", {"schema": "broad-morphology", "consensus": "elliptical"})
    assert [row["id"] for row in elliptical] == sorted(world.dataset.galaxies.values_list("pk", flat=True))[:3]
    members = set(ClusterAssignment.objects.filter(clustering=world.clustering, cluster=1)
                  .values_list("galaxy_id", flat=True))
    in_cluster = results(as_expert, "/api/galaxies/", {"clustering": world.clustering.pk, "cluster": 1})
    assert {row["id"] for row in in_cluster} == members
    assert in_cluster[0]["thumbnail"].startswith("http://testserver/media/thumbnails/")


def test_lists_come_in_pages_of_the_size_asked(as_expert, world):
    first = as_expert.get("/api/galaxies/", {"page_size": 5}).json()
    second = as_expert.get(first["next"]).json()
    assert first["count"] == 18 and len(first["results"]) == 5
    assert {row["id"] for row in first["results"]}.isdisjoint(row["id"] for row in second["results"])


@pytest.mark.parametrize("params, field", [
    ({"dataset": 999999}, "dataset"),
    ({"label": "5"}, "label"),
    ({"cluster": 1}, "cluster"),
    ({"schema": "no-such-schema"}, "schema"),
    ({"updated_since": "yesterday"}, "updated_since"),
    ({"has_expert_label": "perhaps"}, "has_expert_label"),
    ({"page": 99}, "detail"),
])
def test_a_bad_filter_is_a_client_error_naming_the_parameter(as_expert, world, params, field):
    response = as_expert.get("/api/galaxies/", params)
    assert response.status_code in (400, 404), response.content
    assert field in response.json()


def test_an_expert_changes_a_label_and_the_old_one_stays_in_the_history(as_expert, world, expert):
    galaxy = world.dataset.galaxies.order_by("pk").last()
    created = as_expert.post("/api/expert-labels/", {"galaxy": galaxy.pk, "schema": "galaxy10", "label_class": "2"},
                             content_type="application/json")
    assert created.status_code == 201, created.content
    first = created.json()
    assert (first["expert"], first["label_class"], first["current"]) == ("edwin", "2", True)
    changed = as_expert.patch(f"/api/expert-labels/{first['id']}/", {"label_class": "8", "note": "edge-on"},
                              content_type="application/json")
    assert changed.status_code == 200, changed.content
    second = changed.json()
    assert second["id"] != first["id"] and second["label_class"] == "8" and second["note"] == "edge-on"
    history = results(as_expert, f"/api/expert-labels/{second['id']}/history/")
    assert [(row["id"], row["current"]) for row in history] == [(second["id"], True), (first["id"], False)]
    # Changing a label that was replaced is a conflict, not a silent second change.
    stale = as_expert.patch(f"/api/expert-labels/{first['id']}/", {"label_class": "5"},
                            content_type="application/json")
    assert stale.status_code == 409
    assert ExpertLabel.objects.get(galaxy=galaxy, expert=expert, superseded_at__isnull=True).label_class.key == "8"


def test_withdrawing_a_label_keeps_it_as_history_and_a_second_withdrawal_conflicts(as_expert, world, expert):
    galaxy = world.dataset.galaxies.order_by("pk").last()
    label = as_expert.post("/api/expert-labels/", {"galaxy": galaxy.pk, "schema": "galaxy10", "label_class": "5"},
                           content_type="application/json").json()
    assert as_expert.delete(f"/api/expert-labels/{label['id']}/").status_code == 204
    row = ExpertLabel.objects.get(pk=label["id"])
    assert row.superseded_at is not None
    assert not ExpertLabel.objects.filter(galaxy=galaxy, expert=expert, superseded_at__isnull=True).exists()
    assert as_expert.delete(f"/api/expert-labels/{label['id']}/").status_code == 409
    withdrawn = results(as_expert, "/api/expert-labels/", {"expert": "edwin", "current": "false"})
    assert [item["id"] for item in withdrawn] == [label["id"]]


def test_another_experts_label_cannot_be_changed_or_withdrawn(client, world, expert, second_expert):
    galaxy = world.dataset.galaxies.order_by("pk").last()
    client.force_login(expert)
    label = client.post("/api/expert-labels/", {"galaxy": galaxy.pk, "schema": "galaxy10", "label_class": "5"},
                        content_type="application/json").json()
    client.force_login(second_expert)
    assert client.patch(f"/api/expert-labels/{label['id']}/", {"label_class": "2"},
                        content_type="application/json").status_code == 403
    assert client.delete(f"/api/expert-labels/{label['id']}/").status_code == 403
    assert client.get(f"/api/expert-labels/{label['id']}/history/").status_code == 200
    assert ExpertLabel.objects.get(pk=label["id"]).is_current


def test_a_label_of_a_class_outside_the_schema_is_refused_naming_the_field(as_expert, world):
    galaxy = world.dataset.galaxies.first()
    response = as_expert.post("/api/expert-labels/", {"galaxy": galaxy.pk, "schema": "galaxy10",
                                                      "label_class": "spiral"}, content_type="application/json")
    assert response.status_code == 400 and "label_class" in response.json()
    missing = as_expert.post("/api/expert-labels/", {"schema": "galaxy10", "label_class": "2"},
                             content_type="application/json")
    assert missing.status_code == 400 and "galaxy" in missing.json()


def test_labels_changed_since_a_time_include_withdrawals(as_expert, world):
    since = timezone.now()
    galaxy = world.dataset.galaxies.order_by("pk").last()
    label = as_expert.post("/api/expert-labels/", {"galaxy": galaxy.pk, "schema": "galaxy10", "label_class": "5"},
                           content_type="application/json").json()
    assert [row["id"] for row in results(as_expert, "/api/expert-labels/",
                                         {"updated_since": since.isoformat()})] == [label["id"]]
    imported = ExpertLabel.objects.filter(expert__isnull=True).first()
    ExpertLabel.objects.filter(pk=imported.pk).update(superseded_at=timezone.now())
    changed = {row["id"] for row in results(as_expert, "/api/expert-labels/", {"updated_since": since.isoformat()})}
    assert changed == {label["id"], imported.pk}


def test_a_classification_is_stored_and_updates_the_vote_summary_at_once(client, world, volunteer):
    client.force_login(volunteer)
    galaxy = world.dataset.galaxies.order_by("pk").last()
    response = client.post("/api/classifications/", {"galaxy": galaxy.pk, "tree": "gz2", "answers": SMOOTH_ROUND},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    summary = VoteSummary.objects.get(galaxy=galaxy, question__key="t01_smooth_or_features")
    assert summary.counts["a01_smooth"] == 1 and summary.total == 1


@pytest.mark.parametrize("answers, says", [
    ({"t01_smooth_or_features": "a99_nothing"}, "a99_nothing"),
    ({"t01_smooth_or_features": 3}, "t01_smooth_or_features"),
    ({"t01_smooth_or_features": [{"a": 1}]}, "t01_smooth_or_features"),
    ({}, "first question"),
    ({"t01_smooth_or_features": "a01_smooth", "t03_bar": "a06_bar"}, "t03_bar"),
])
def test_a_classification_that_breaks_the_tree_is_a_400_naming_the_answers(client, world, volunteer, answers, says):
    client.force_login(volunteer)
    galaxy = world.dataset.galaxies.first()
    response = client.post("/api/classifications/", {"galaxy": galaxy.pk, "tree": "gz2", "answers": answers},
                           content_type="application/json")
    assert response.status_code == 400, response.content
    assert says in str(response.json()["answers"])


def test_vote_summaries_and_consensus_labels_filter_by_tree_question_and_agreement(as_expert, world):
    rows = results(as_expert, "/api/vote-summaries/", {"tree": "gz2", "question": "t01_smooth_or_features"})
    assert len(rows) == 3 and all(row["counts"] == {"a01_smooth": 3, "a02_features_or_disk": 1,
                                                    "a03_star_or_artifact": 0} for row in rows)
    assert len(results(as_expert, "/api/consensus-labels/", {"min_agreement": 0.7})) == 3
    assert results(as_expert, "/api/consensus-labels/", {"min_agreement": 0.8}) == []


def test_centroids_are_the_mean_feature_vector_of_each_clusters_members(as_expert, world):
    body = results(as_expert, f"/api/clusterings/{world.clustering.pk}/centroids/")
    store = FeatureStore.open(world.feature_set.store_dir)
    assert body["sizes"] == world.clustering.sizes and body["dimension"] == store.dim
    for cluster, centroid in enumerate(body["centroids"]):
        members = list(ClusterAssignment.objects.filter(clustering=world.clustering, cluster=cluster)
                       .values_list("galaxy_id", flat=True))
        np.testing.assert_allclose(centroid, store.get(members).mean(axis=0), rtol=1e-4, atol=1e-5)
    assignments = results(as_expert, f"/api/clusterings/{world.clustering.pk}/assignments/", {"cluster": 0})
    assert len(assignments) == world.clustering.sizes[0]
    assert [row["distance"] for row in assignments] == sorted(row["distance"] for row in assignments)


def test_predictions_filter_by_confidence_range_and_model_version(as_expert, world):
    everything = results(as_expert, "/api/predictions/", {"page_size": 100})
    confident = results(as_expert, "/api/predictions/", {"min_confidence": 0.9, "page_size": 100})
    doubtful = results(as_expert, "/api/predictions/", {"max_confidence": 0.9, "page_size": 100})
    assert len(everything) == 18 and all(row["probability"] >= 0.9 for row in confident)
    assert {row["id"] for row in confident} | {row["id"] for row in doubtful} == {row["id"] for row in everything}
    other_version = world.feature_set.model_version.pk + 1000
    assert as_expert.get("/api/predictions/", {"model_version": other_version}).status_code == 400


def test_neighbours_are_the_most_similar_galaxies_first(as_expert, world):
    galaxy = world.dataset.galaxies.first()
    found = results(as_expert, f"/api/galaxies/{galaxy.pk}/neighbours/", {"k": 4})
    assert len(found) == 4 and galaxy.pk not in [row["galaxy"] for row in found]
    assert [row["similarity"] for row in found] == sorted((row["similarity"] for row in found), reverse=True)
    assert as_expert.get(f"/api/galaxies/{galaxy.pk}/neighbours/", {"k": 0}).json().keys() == {"k"}


def test_an_admin_starts_a_clustering_job_a_twin_conflicts_and_cancel_stops_it(client, world, admin_user):
    client.force_login(admin_user)
    start = {"kind": "cluster", "dataset": world.dataset.pk, "k": 4}
    response = client.post("/api/jobs/", start, content_type="application/json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["kind"], job["status"], job["arguments"]["k"]) == ("cluster", "queued", 4)
    assert client.post("/api/jobs/", start, content_type="application/json").status_code == 409
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled" and Job.objects.get(pk=job["id"]).status == "cancelled"
    too_many = client.post("/api/jobs/", {**start, "k": 500}, content_type="application/json")
    assert too_many.status_code == 400 and "k=500" in str(too_many.json())
    no_schema = client.post("/api/jobs/", {"kind": "build_queue", "dataset": world.dataset.pk},
                            content_type="application/json")
    assert no_schema.status_code == 400 and "schema" in no_schema.json()


def test_a_script_starts_a_retrain_cycle_from_the_galaxy_backbone_with_the_cycle_defaults(client, world,
                                                                                           admin_user):
    from labeling.models import ModelVersion
    from mlcore.weights import GALAXY_WEIGHTS

    client.force_login(admin_user)
    response = client.post("/api/jobs/", {"kind": "retrain", "dataset": world.dataset.pk, "schema": "galaxy10"},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    version = ModelVersion.objects.get(pk=response.json()["arguments"]["model_version"])
    assert (version.parent.checkpoint, version.image_size, version.hyperparameters["epochs"],
            version.hyperparameters["lr"]) == (str(GALAXY_WEIGHTS), 96, 15, 3e-4)


def test_a_token_authenticates_a_script_until_it_is_revoked(client, world, expert):
    response = client.post("/api/auth/token/", {"username": "edwin", "password": "pw-edwin"})
    assert response.status_code == 200
    key = response.json()["token"]
    assert key == Token.objects.get(user=expert).key
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/datasets/", **headers).status_code == 200
    assert client.delete("/api/auth/token/", **headers).status_code == 204
    assert client.get("/api/datasets/", **headers).status_code == 401
    assert client.post("/api/auth/token/", {"username": "edwin", "password": "wrong"}).status_code == 400


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_streams_the_labels_with_their_provenance(as_expert, world, fmt):
    response = as_expert.get(f"/api/datasets/{world.dataset.pk}/export/", {"what": "labels", "format": fmt})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="galaxy10-subset-labels.{fmt}"'
    text = b"".join(response.streaming_content).decode()
    assert "imported from labels.csv" in text and "gz2-thresholds" in text
    assert as_expert.get(f"/api/datasets/{world.dataset.pk}/export/", {"what": "secrets"}).json().keys() == {"what"}


def test_the_schema_documents_every_resource_and_its_pages_load_nothing_from_elsewhere(as_expert, world):
    schema = as_expert.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ["/api/galaxies/", "/api/expert-labels/{id}/history/", "/api/clusterings/{id}/centroids/",
                 "/api/galaxies/{id}/neighbours/", "/api/jobs/{id}/cancel/", "/api/datasets/{id}/export/",
                 "/api/classifications/", "/api/predictions/", "/api/model-versions/", "/api/vote-summaries/"]:
        assert path in schema["paths"], path
    filters = {p["name"] for p in schema["paths"]["/api/galaxies/"]["get"]["parameters"]}
    assert {"dataset", "schema", "label", "consensus", "has_expert_label", "cluster", "updated_since"} <= filters
    for page in ("/api/docs/", "/api/redoc/"):
        html = as_expert.get(page).content.decode()
        assert "/static/vendor/" in html and "https://" not in html and "http://" not in html


@pytest.mark.parametrize("url", ["/api/datasets/", "/api/galaxies/", "/api/trees/", "/api/vote-summaries/",
                                 "/api/schemas/", "/api/expert-labels/", "/api/consensus-labels/",
                                 "/api/model-versions/", "/api/clusterings/", "/api/predictions/"])
def test_a_page_of_a_list_costs_the_same_queries_however_many_rows_it_holds(as_expert, world, url):
    def queries(page_size):
        with CaptureQueriesContext(connection) as captured:
            assert as_expert.get(url, {"page_size": page_size}).status_code == 200
        return len(captured)

    assert queries(1) == queries(50)


def test_the_votes_export_comes_in_the_trees_galaxy_zoo_layout(as_expert, world):
    response = as_expert.get(f"/api/datasets/{world.dataset.pk}/export/", {"what": "votes"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert "t01_smooth_or_features_a01_smooth_count" in lines[0].split(",") and len(lines) == 1 + 3
    wrong = as_expert.get(f"/api/datasets/{world.dataset.pk}/export/", {"what": "votes", "layout": "gz9"})
    assert wrong.status_code == 400 and "layout" in wrong.json()


@pytest.mark.parametrize("since, status", [("0458-08-06T20:52:57.5+20:47", 200), ("2026-01-01T00:00:00-15:59", 200),
                                           ("0001-01-01T00:00:00+05:00", 400)])
def test_a_changed_since_time_with_any_offset_is_compared_in_utc_or_refused(as_expert, world, since, status):
    # Found by schemathesis: PostgreSQL refuses offsets beyond ±15:59, which Python parses; a 500 before.
    for url in ["/api/consensus-labels/", "/api/expert-labels/", "/api/vote-summaries/", "/api/galaxies/"]:
        response = as_expert.get(url, {"updated_since": since})
        assert response.status_code == status, (url, response.content)
        if status == 400:
            assert "updated_since" in response.json()
