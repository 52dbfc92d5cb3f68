"""The machine-learning pages: neighbours on a galaxy's page, search by similarity, clusters, maps and Jobs, with
who may see and start what."""

import pytest
from django.urls import reverse

from labeling.models import Job
from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset, indexed, mapped

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


@pytest.fixture
def feature_set(dataset):
    return indexed(extracted(dataset))


@pytest.fixture
def as_expert(client, expert):
    client.force_login(expert)
    return client


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def test_a_galaxys_page_shows_its_eight_nearest_neighbours_with_links_and_scores(as_expert, dataset, feature_set):
    galaxy = dataset.galaxies.order_by("pk").first()
    response = as_expert.get(reverse("galaxy-detail", args=[galaxy.pk]))
    neighbours = response.context["neighbours"]
    assert len(neighbours) == 8 and galaxy not in [n.galaxy for n in neighbours]
    html = response.content.decode()
    for neighbour in neighbours:
        assert reverse("galaxy-detail", args=[neighbour.galaxy.pk]) in html
    assert f"{reverse('galaxy-similar', args=[galaxy.pk])}?features={feature_set.pk}" in html


def test_neighbours_show_their_rank_and_a_similarity_read_against_random_pairs(as_expert, dataset, feature_set):
    """Cosines of close features all read 1.00; the figure shown is 100 for identical features, 0 for a typical
    random pair of the feature set, and falls from the 1st neighbour to the last and differs between galaxies."""
    shown = []
    for galaxy in dataset.galaxies.order_by("pk")[:2]:
        response = as_expert.get(reverse("galaxy-detail", args=[galaxy.pk]))
        neighbours = response.context["neighbours"]
        assert [n.rank for n in neighbours] == list(range(1, 9))
        likeness = [n.likeness for n in neighbours]
        assert all(0 <= value <= 1 for value in likeness) and likeness == sorted(likeness, reverse=True)
        assert likeness[0] - likeness[-1] > 0.02
        closer_than = [n.closer_than for n in neighbours]
        assert all(0 <= value <= 1 for value in closer_than) and closer_than == sorted(closer_than, reverse=True)
        html = response.content.decode()
        first, last = neighbours[0], neighbours[-1]
        assert (f'data-score="{first.score:.4f}" data-rank="1" data-likeness="{first.likeness:.4f}"' in html
                and f'data-rank="8" data-likeness="{last.likeness:.4f}"' in html)
        assert (f'<span class="rank">#1</span> · <span class="likeness">{round(100 * first.likeness)}</span>' in
                html)
        assert "0 as far apart as two galaxies picked at random" in html
        shown.append([n.likeness_percent for n in neighbours])
    assert shown[0] != shown[1]


def test_without_an_index_the_galaxy_page_says_how_to_make_one(as_expert, dataset):
    response = as_expert.get(reverse("galaxy-detail", args=[dataset.galaxies.first().pk]))
    assert response.context["neighbours"] == [] and "No neighbour index for this dataset yet" in \
        response.content.decode()


def test_search_by_similarity_shows_k_galaxies_whose_links_search_from_them(as_expert, dataset, feature_set):
    galaxy = dataset.galaxies.order_by("pk").first()
    response = as_expert.get(reverse("galaxy-similar", args=[galaxy.pk]), {"k": 12, "features": feature_set.pk})
    assert response.status_code == 200 and len(response.context["neighbours"]) == 12
    first = response.context["neighbours"][0].galaxy
    assert f"{reverse('galaxy-similar', args=[first.pk])}?features={feature_set.pk}&amp;k=12" in \
        response.content.decode()
    scores = [n.score for n in response.context["neighbours"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("k, shown", [("0", 1), ("10000", 17), ("many", 17)])
def test_search_by_similarity_clamps_k(as_expert, dataset, feature_set, k, shown):
    response = as_expert.get(reverse("galaxy-similar", args=[dataset.galaxies.first().pk]), {"k": k})
    assert len(response.context["neighbours"]) == shown


def test_a_thumbnail_link_redirects_to_the_image_and_a_galaxy_without_one_is_404(as_expert, dataset):
    from labeling.models import Galaxy

    galaxy = dataset.galaxies.first()
    response = as_expert.get(reverse("galaxy-thumbnail", args=[galaxy.pk]))
    assert response.status_code == 302 and response["Location"] == galaxy.thumbnail.url
    bare = Galaxy.objects.create(dataset=dataset, external_id="no-image")
    assert as_expert.get(reverse("galaxy-thumbnail", args=[bare.pk])).status_code == 404


def test_the_cluster_gallery_shows_each_cluster_with_samples_and_label_make_up(as_expert, dataset, feature_set):
    clustering = clustered(feature_set, k=3)
    response = as_expert.get(reverse("clustering-detail", args=[clustering.pk]))
    cards = response.context["cards"]
    assert [card.size for card in cards] == clustering.sizes and sum(clustering.sizes) == 18
    assert all(len(card.samples) == min(8, card.size) for card in cards)
    for card in cards:
        name, labelled, classes = card.compositions[0]
        assert name == "expert: Galaxy10 DECaLS" and labelled == card.size
        assert sum(count for _, count, _ in classes) == card.size
    metrics = response.context["metrics"]
    assert metrics[0]["n"] == 18 and -1 <= metrics[0]["ari"] <= 1
    link = f"clustering={clustering.pk}&amp;cluster=0"
    assert link in response.content.decode()


def test_the_galaxy_grid_filters_by_cluster(as_expert, dataset, feature_set):
    clustering = clustered(feature_set, k=3)
    members = set(clustering.assignments.filter(cluster=1).values_list("galaxy__external_id", flat=True))
    response = as_expert.get(reverse("galaxy-list"), {"clustering": clustering.pk, "cluster": 1})
    assert {g.external_id for g in response.context["page"].object_list} == members
    half = as_expert.get(reverse("galaxy-list"), {"clustering": clustering.pk})
    assert half.context["page"].paginator.count == 0
    assert "needs both the clustering and the cluster number" in half.content.decode()


def test_the_cluster_gallery_costs_the_same_queries_for_3_or_9_clusters(as_expert, dataset, feature_set,
                                                                         django_assert_max_num_queries):
    for k in (3, 9):
        clustering = clustered(feature_set, k=k)
        with django_assert_max_num_queries(16):
            assert as_expert.get(reverse("clustering-detail", args=[clustering.pk])).status_code == 200


def test_the_map_points_carry_every_galaxy_and_a_colouring_per_clustering_and_label_set(as_expert, dataset,
                                                                                       feature_set):
    clustering = clustered(feature_set, k=3)
    embedding = mapped(feature_set, "pca")
    page = as_expert.get(reverse("map-detail", args=[embedding.pk]))
    assert page.status_code == 200 and "vendor/echarts/echarts.min.js" in page.content.decode()
    points = as_expert.get(reverse("map-points", args=[embedding.pk])).json()
    assert len(points["ids"]) == len(points["x"]) == len(points["y"]) == 18
    keys = [c["key"] for c in points["colourings"]]
    assert keys == [f"clustering-{clustering.pk}", "expert:galaxy10"]
    labels = points["colourings"][1]
    assert labels["classes"] == ["Round Smooth", "Barred Spiral", "Edge-on without Bulge"]
    assert sorted(set(labels["values"])) == [0, 1, 2]


def test_the_jobs_page_offers_admins_the_forms_and_shows_experts_the_jobs_only(client, expert, admin_user,
                                                                               dataset, feature_set):
    client.force_login(admin_user)
    page = client.get(reverse("job-list")).content.decode()
    assert 'id="start-extract_features"' in page and 'id="start-cluster"' in page
    client.force_login(expert)
    page = client.get(reverse("job-list")).content.decode()
    assert "start-extract_features" not in page and "Only admins start jobs" in page
    assert f"#{feature_set.pk}" in page


@pytest.mark.parametrize("url", ["job-start", "job-cancel", "job-rerun"])
def test_experts_may_not_start_cancel_or_rerun_jobs_and_anonymous_visitors_must_log_in(client, expert, url):
    args = ["extract_features"] if url == "job-start" else [1]
    assert client.post(reverse(url, args=args)).status_code == 302
    client.force_login(expert)
    assert client.post(reverse(url, args=args)).status_code == 403
    assert not Job.objects.exists()


def test_an_admin_starts_an_extraction_from_the_jobs_page_and_the_worker_runs_it(
        as_admin, dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(reverse("job-start", args=["extract_features"]), {
            "dataset": dataset.pk, "backbone": "resnet18", "weights": "random", "image_size": 32, "seed": 0})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.status == Job.Status.SUCCEEDED and job.result["count"] == 18  # tasks run inline in the tests
    status = as_admin.get(reverse("job-status"), {"ids": str(job.pk)}).json()["jobs"]
    assert status == [{"id": job.pk, "status": "succeeded", "status_display": "succeeded", "progress": 100.0,
                       "message": "done", "finished": True, "link": None}]


def test_an_admin_extracts_with_a_checkpoint_registered_from_the_command_line(
        as_admin, dataset, tmp_path, django_capture_on_commit_callbacks):
    from labeling.services.learning.model_versions import model_version_get_or_create
    from mlcore.features.backbone import build_backbone, save_backbone

    path = tmp_path / "galaxy-backbone.pt"
    save_backbone(build_backbone("resnet18", "random", seed=5), path, name="resnet18", image_size=32)
    version = model_version_get_or_create(weights=str(path))
    with django_capture_on_commit_callbacks(execute=True):
        as_admin.post(reverse("job-start", args=["extract_features"]), {
            "dataset": dataset.pk, "backbone": "resnet50", "weights": "random", "image_size": 224, "seed": 0,
            "model_version": version.pk})
    job = Job.objects.get()
    assert job.arguments["model_version"] == version.pk and job.status == Job.Status.SUCCEEDED


def test_a_bad_start_request_shows_the_form_errors_and_queues_nothing(as_admin, dataset, feature_set):
    response = as_admin.post(reverse("job-start", args=["cluster"]), {
        "feature_set": feature_set.pk, "method": "kmeans", "k": 40, "pca_components": 50})
    assert response.status_code == 200
    assert "40 clusters for 18 galaxies" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.CLUSTER).exists()


def test_an_admin_cancels_a_queued_job_and_runs_a_finished_one_again(as_admin, dataset, feature_set):
    from labeling.services.learning.jobs import index_start

    queued = index_start(feature_set=feature_set, enqueue=False)
    as_admin.post(reverse("job-cancel", args=[queued.pk]))
    queued.refresh_from_db()
    assert queued.status == Job.Status.CANCELLED
    as_admin.post(reverse("job-rerun", args=[queued.pk]))
    assert Job.objects.filter(rerun_of=queued).count() == 1


def test_an_admin_starts_extraction_from_the_dataset_admin_and_a_dataset_without_features_is_told_why(
        as_admin, dataset, tmp_path, django_capture_on_commit_callbacks):
    from labeling.models import Dataset

    empty = Dataset.objects.create(name="Catalogue only", slug="catalogue-only")
    changelist = reverse("admin:labeling_dataset_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        as_admin.post(changelist, {"action": "extract_features_default", "_selected_action": [dataset.pk]})
    job = Job.objects.get()
    assert job.kind == Job.Kind.EXTRACT_FEATURES and job.status == Job.Status.SUCCEEDED
    assert job.arguments["model_version"] and job.result["count"] == 18

    response = as_admin.post(changelist, {"action": "build_index_latest", "_selected_action": [empty.pk]},
                             follow=True)
    assert "Catalogue only: no features yet: extract features first" in response.content.decode()


def test_the_clustering_and_map_lists_cost_the_same_queries_for_one_or_three_rows(
        as_expert, dataset, feature_set, django_assert_max_num_queries):
    for _ in range(3):
        clustered(feature_set, k=3)
        mapped(feature_set, "pca")
        # One of them is the header's check whether the user may label (the experts group).
        with django_assert_max_num_queries(5):
            assert as_expert.get(reverse("clustering-list")).status_code == 200
        with django_assert_max_num_queries(4):
            response = as_expert.get(reverse("map-list"))
        assert [m.n_points for m in response.context["maps"]] == [18] * len(response.context["maps"])


def test_a_missing_index_file_means_no_neighbours_rather_than_an_error(as_expert, dataset, feature_set):
    feature_set.index_file.unlink()
    response = as_expert.get(reverse("galaxy-detail", args=[dataset.galaxies.first().pk]))
    assert response.status_code == 200 and response.context["feature_set"] is None


def test_the_jobs_page_marks_the_feature_sets_of_each_datasets_own_active_version(as_expert, dataset, feature_set,
                                                                                  tmp_path):
    from labeling.services.learning.model_versions import model_version_activate

    other = galaxy10_subset(tmp_path / "other", name="Other survey")
    other_set = indexed(extracted(other))  # the same model version, not active on the other survey
    model_version_activate(version=feature_set.model_version, dataset=dataset)

    page = as_expert.get(reverse("job-list")).content.decode()

    rows = {key: page.split(f'data-feature-set="{key}"', 1)[1].split("</tr>", 1)[0]
            for key in (feature_set.pk, other_set.pk)}
    assert ">active</span>" in rows[feature_set.pk] and ">active</span>" not in rows[other_set.pk]
