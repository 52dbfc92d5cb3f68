"""The Training page (model versions, retrain cycles, activation and rollback per dataset), each dataset's learning
curve, the admin actions that start them, and who may do what."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling import tasks
from labeling.models import Activation, Dataset, ExpertLabel, FeatureSet, Job, LabelSchema, ModelVersion
from labeling.services.learning.model_versions import model_version_activate
from labeling.services.learning.retrain import retrain_start
from labeling.views import training as training_views
from mlcore.weights import GALAXY_WEIGHTS
from tests.labeling.ml_helpers import galaxy10_subset, galaxy10_subset_for_training

pytestmark = pytest.mark.django_db
TINY = {"image_size": 32, "epochs": 1}
START = {"backbone": "resnet18", "base": "", "schema": "", "image_size": 32, "epochs": 1, "lr": 0.001,
         "pseudo_threshold": 0.95, "soft_vote_weight": 0.3, "seed": 0}
PRETRAIN = {"pretrain-backbone": "resnet18", "pretrain-image_size": 32, "pretrain-epochs": 1, "pretrain-seed": 3}


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset_for_training(tmp_path / "import")


@pytest.fixture
def bare_dataset():
    return Dataset.objects.create(name="Bare survey", slug="bare-survey")


def metrics(accuracy=0.875, balanced=0.8125, previous=0.5, pixels=0.625, mistakes=(), history=(0.9, 0.7)):
    block = {"accuracy": accuracy, "balanced_accuracy": balanced, "classes": ["2", "5", "8"], "n": 8, "ece": 0.1,
             "confusion": [[3, 0, 0], [1, 2, 0], [0, 0, 2]], "per_class": {}}
    return {"held_out": block, "previous_version": "resnet18 random init",
            "baselines": {"previous version": {**block, "accuracy": previous, "balanced_accuracy": previous},
                          "pixels PCA(20) + LR": {**block, "accuracy": pixels, "balanced_accuracy": pixels},
                          "class head alone": {**block, "accuracy": 0.75, "balanced_accuracy": 0.7875},
                          "without the previous version": {**block, "accuracy": 0.8, "balanced_accuracy": 0.7625}},
            "mistakes": list(mistakes),
            "history": [{"epoch": i + 1, "loss": loss, "hard_loss": loss, "vote_loss": 0.0, "train_accuracy": 0.5,
                         "seconds": 1.0} for i, loss in enumerate(history)]}


def version(dataset, name, *, status="ready", method="finetune", expert_labels=16, user=None, parent=None, **fields):
    """A model version row as a finished cycle leaves it (no training: the pages only read rows)."""
    return ModelVersion.objects.create(
        name=name, image_size=32, status=status, method=method, trained_on=dataset, created_by=user, parent=parent,
        schema=LabelSchema.objects.filter(name="galaxy10").first(),
        training={"expert_labels": expert_labels, "pseudo_labels": 3, "with_votes": 5, "held_out": 8,
                  "classes": {"2": 6, "5": 5, "8": 5}},
        **{"metrics": metrics(), **fields})


def curve_points(response) -> list[dict]:
    found = re.search(r'<script id="training-curve-data" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert found, "the page has no chart data"
    return json.loads(found.group(1))["points"]


def test_training_pages_are_for_experts_and_admins(client, bare_dataset, expert, admin_user, volunteer, outsider):
    urls = [reverse("training"), reverse("training-curve", args=[bare_dataset.slug])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url
    for user in (volunteer, outsider):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [403, 403]
    for user in (expert, admin_user):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [200, 200]


def test_experts_may_look_but_not_start_nor_activate(client, dataset, expert):
    ready = version(dataset, "cycle 1")
    client.force_login(expert)
    page = client.get(reverse("training")).content.decode()
    assert "cycle 1" in page and 'id="start-retrain"' not in page and ">Activate<" not in page
    assert client.post(reverse("training-start"), {"dataset": dataset.pk, **START}).status_code == 403
    assert client.post(reverse("training-activate", args=[ready.pk])).status_code == 403
    assert client.post(reverse("training-pretrain"), {"pretrain-dataset": dataset.pk}).status_code == 403
    assert not Job.objects.exists()


def test_anonymous_posts_are_sent_to_sign_in(client, dataset):
    response = client.post(reverse("training-start"), {"dataset": dataset.pk, **START})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not Job.objects.exists()


def test_the_training_menu_shows_for_experts_and_admins_only(client, bare_dataset, expert, volunteer):
    client.force_login(volunteer)
    assert 'href="/training/"' not in client.get(reverse("dataset-list")).content.decode()
    client.force_login(expert)
    assert 'href="/training/"' in client.get(reverse("dataset-list")).content.decode()


def test_an_admin_starts_a_retrain_cycle(client, dataset, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("training-start"), {"dataset": dataset.pk, **START}, follow=True)
    job = Job.objects.get(kind=Job.Kind.RETRAIN)
    assert f"Started retrain cycle job #{job.pk}" in response.content.decode()
    assert job.status == Job.Status.QUEUED and job.dataset == dataset and job.created_by == admin_user
    assert len(callbacks) == 1  # queued for a worker once the transaction commits
    queued = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert (queued.status, queued.trained_on, queued.image_size, queued.method) == ("queued", dataset, 32, "finetune")
    assert queued.hyperparameters["epochs"] == 1 and queued.schema.name == "galaxy10"
    assert queued.rotation_invariant_features is False  # the box was left unticked
    # The queued job shows with a live progress bar, polled from the Jobs status endpoint.
    page = response.content.decode()
    assert f'data-job="{job.pk}"' in page and 'data-status-url="/jobs/status.json"' in page and "js/jobs.js" in page


def test_the_retrain_form_offers_the_documented_defaults(client, dataset, admin_user):
    client.force_login(admin_user)
    form = client.get(reverse("training")).context["retrain_form"]
    initial = {name: field.initial for name, field in form.fields.items() if field.initial is not None}
    assert initial == {"backbone": "resnet18", "epochs": 15, "lr": 3e-4, "pseudo_threshold": 0.95,
                       "soft_vote_weight": 1.0, "seed": 0, "rotation_invariant": True}
    assert form.fields["base"].empty_label == "random initialisation (seeded)"


def test_the_retrain_form_starts_from_the_galaxy_backbone_once_a_version_of_it_exists(client, dataset, admin_user):
    from labeling.services.learning.model_versions import model_version_get_or_create

    client.force_login(admin_user)
    model_version_get_or_create(weights="random", image_size=32)
    galaxy = model_version_get_or_create(weights="galaxy")

    form = client.get(reverse("training")).context["retrain_form"]

    assert form.fields["base"].initial == galaxy.pk and form.fields["image_size"].initial is None


def test_a_bad_form_shows_the_error_and_starts_nothing(client, dataset, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("training-start"), {"dataset": dataset.pk, **START, "epochs": 0})
    page = response.content.decode()
    assert response.status_code == 200 and "Could not start a retrain cycle" in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert not Job.objects.exists() and not ModelVersion.objects.exists()


def test_the_start_form_asks_for_rotation_invariant_features_by_default(client, dataset, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("training")).content.decode()
    box = re.search(r'<input[^>]*name="rotation_invariant"[^>]*>', page).group(0)
    assert 'type="checkbox"' in box and "checked" in box
    client.post(reverse("training-start"), {"dataset": dataset.pk, **START, "rotation_invariant": "on"})
    assert ModelVersion.objects.get(method="finetune").rotation_invariant_features


def test_a_second_start_while_one_is_queued_shows_the_conflict(client, dataset, admin_user):
    client.force_login(admin_user)
    client.post(reverse("training-start"), {"dataset": dataset.pk, **START})
    response = client.post(reverse("training-start"), {"dataset": dataset.pk, **START})
    page = response.content.decode()
    assert response.status_code == 200 and "already queued" in page and "one cycle at a time per dataset" in page
    assert Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 1 and ModelVersion.objects.count() == 1


def test_a_dataset_without_two_classes_shows_what_is_missing(client, dataset, admin_user):
    ExpertLabel.objects.exclude(label_class__key="2").delete()
    client.force_login(admin_user)
    response = client.post(reverse("training-start"), {"dataset": dataset.pk, **START})
    assert response.status_code == 200 and "a model needs at least two" in response.content.decode()
    assert not Job.objects.exists()


def test_the_versions_table_shows_held_out_figures_baselines_and_labels(client, dataset, admin_user):
    version(dataset, "resnet18 · cycle 1", user=admin_user)
    ModelVersion.objects.create(name="broken cycle", status="failed", method="finetune", trained_on=dataset,
                                error="RuntimeError: out of memory")
    client.force_login(admin_user)
    page = client.get(reverse("training")).content.decode()
    row = re.search(r'<tr data-version="\d+" data-status="ready">(.*?)</tr>', page, re.S).group(1)
    for shown in ("resnet18 · cycle 1", "fine-tune", dataset.name, "0.875", "0.813", "0.500", "0.625",
                  "class head alone 0.788", "without the previous version 0.763", "16 / 3 / 5", "ada", ">Activate<"):
        assert shown in row, shown
    assert "RuntimeError: out of memory" in page and "rollback" in page
    assert reverse("training-curve", args=[dataset.slug]) in page


def test_the_training_page_costs_the_same_queries_for_one_or_five_versions(client, bare_dataset, admin_user):
    client.force_login(admin_user)
    Job.objects.create(kind=Job.Kind.RETRAIN, dataset=bare_dataset, created_by=admin_user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("training")).status_code == 200
        return len(captured)

    first = version(bare_dataset, "cycle 1", user=admin_user)
    model_version_activate(version=first, dataset=bare_dataset, user=admin_user)
    one = queries()
    for n in range(2, 6):
        other = Dataset.objects.create(name=f"Other {n}", slug=f"other-{n}")
        model_version_activate(version=first, dataset=other)
        model_version_activate(version=version(other, f"cycle {n}", user=admin_user, parent=first), dataset=other,
                               user=admin_user)
    page = client.get(reverse("training")).content.decode()
    assert page.count("Roll back</button>") == 4 and page.count(">active on Other") == 4
    assert ModelVersion.objects.count() == 5 and queries() == one <= 13, one


def test_the_learning_curve_has_one_point_per_trained_version(client, dataset, expert):
    galaxy = dataset.galaxies.order_by("pk").first()
    version(dataset, "cycle 1", expert_labels=10, metrics=metrics(accuracy=0.5))
    active = version(dataset, "cycle 2", expert_labels=20, metrics=metrics(
        accuracy=0.75, mistakes=[{"index": 0, "true": "2", "predicted": "5", "probability": 0.93,
                                  "galaxy": galaxy.pk}]))
    version(dataset, "cycle 3", status="failed", metrics={})
    version(dataset, "cycle 4", status="queued", metrics={})
    version(dataset, "pretrained", method="simclr", metrics={})
    version(Dataset.objects.create(name="Elsewhere", slug="elsewhere"), "other dataset")
    model_version_activate(version=active, dataset=dataset)
    client.force_login(expert)
    response = client.get(reverse("training-curve", args=[dataset.slug]))
    points = curve_points(response)
    assert [(p["name"], p["expert_labels"], p["accuracy"]) for p in points] == [
        ("cycle 1", 10, 0.5), ("cycle 2", 20, 0.75)]
    assert points[1]["previous_accuracy"] == 0.5 and points[1]["pixel_accuracy"] == 0.625
    assert points[1]["loss"] == [0.9, 0.7] and points[1]["confusion"][1] == [1, 2, 0]
    assert points[1]["class_names"][0] != "2"  # the schema's names, not its keys
    page = response.content.decode()
    assert f'href="{reverse("galaxy-detail", args=[galaxy.pk])}"' in page and galaxy.thumbnail.url in page
    assert "p = 0.93" in page and "js/training_curve.js" in page and "vendor/echarts/echarts.min.js" in page
    assert re.search(rf'<tr data-version="{active.pk}">.*?status-succeeded">active<', page, re.S)


def test_a_dataset_without_cycles_explains_how_to_run_one(client, bare_dataset, expert):
    client.force_login(expert)
    page = client.get(reverse("training-curve", args=[bare_dataset.slug])).content.decode()
    assert "manage.py retrain --dataset" in page and 'id="training-curve-data"' not in page
    assert client.get(reverse("training-curve", args=["no-such-dataset"])).status_code == 404


def test_activating_a_version_without_its_checkpoint_shows_why_and_changes_nothing(client, dataset, admin_user):
    broken = version(dataset, "cycle 1", weights="file", checkpoint="/nowhere/backbone.pt")
    client.force_login(admin_user)
    response = client.post(reverse("training-activate", args=[broken.pk]) + f"?dataset={dataset.slug}", follow=True)
    assert "Could not activate cycle 1" in response.content.decode() and "cannot be activated" in \
        response.content.decode()
    broken.refresh_from_db()
    assert broken.status == "ready" and not Job.objects.exists() and not FeatureSet.objects.exists()
    dataset.refresh_from_db()
    assert dataset.active_version is None and not Activation.objects.exists()


def test_activating_a_ready_version_starts_the_chain(client, dataset, admin_user):
    ready = version(dataset, "cycle 1", weights="random")
    client.force_login(admin_user)
    response = client.post(reverse("training-activate", args=[ready.pk]) + f"?dataset={dataset.slug}", follow=True)
    job = Job.objects.get(kind=Job.Kind.EXTRACT_FEATURES)
    assert f"Activation started: extract → index → activate → cluster → queues (job #{job.pk})" in \
        response.content.decode()
    assert job.arguments["chain"]["activate"] == ready.pk and job.dataset == dataset


def test_a_version_trained_nowhere_is_activated_on_the_chosen_dataset(client, dataset, admin_user):
    registered = ModelVersion.objects.create(name="random 32 px", image_size=32)
    client.force_login(admin_user)
    page = client.get(reverse("training")).content.decode()
    assert f'<option value="{dataset.slug}">' in page
    client.post(reverse("training-activate", args=[registered.pk]), {"dataset": dataset.slug})
    assert Job.objects.get(kind=Job.Kind.EXTRACT_FEATURES).dataset == dataset


def test_the_pretraining_form_shows_only_when_pretraining_exists(client, dataset, admin_user, monkeypatch):
    calls = []

    def pretrain_start(**arguments):
        calls.append(arguments)
        return Job.objects.create(kind=Job.Kind.PRETRAIN, dataset=arguments["dataset"])

    client.force_login(admin_user)
    monkeypatch.setattr(training_views, "_pretrain_service", lambda: None)
    assert 'id="start-pretrain"' not in client.get(reverse("training")).content.decode()
    monkeypatch.setattr(training_views, "_pretrain_service", lambda: pretrain_start)
    page = client.get(reverse("training")).content.decode()
    assert 'id="start-pretrain"' in page and 'name="pretrain-image_size" value="64"' in page
    response = client.post(reverse("training-pretrain"), {**PRETRAIN, "pretrain-dataset": dataset.pk}, follow=True)
    assert calls == [{"dataset": dataset, "backbone": "resnet18", "image_size": 32, "epochs": 1, "seed": 3,
                      "user": admin_user}]
    assert "Started self-supervised pretraining job #" in response.content.decode()


def test_an_admin_starts_self_supervised_pretraining(client, dataset, admin_user):
    pytest.importorskip("labeling.services.learning.pretrain")
    client.force_login(admin_user)
    response = client.post(reverse("training-pretrain"), {**PRETRAIN, "pretrain-dataset": dataset.pk}, follow=True)
    job = Job.objects.get(kind=Job.Kind.PRETRAIN)
    assert f"Started self-supervised pretraining job #{job.pk}" in response.content.decode()
    queued = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert (queued.method, queued.status, queued.trained_on, queued.image_size) == ("simclr", "queued", dataset, 32)
    response = client.post(reverse("training-pretrain"), {**PRETRAIN, "pretrain-dataset": dataset.pk})
    assert response.status_code == 200 and "already queued" in response.content.decode()
    assert Job.objects.filter(kind=Job.Kind.PRETRAIN).count() == 1


def test_the_admin_actions_start_a_cycle_and_an_activation(client, dataset, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:labeling_dataset_changelist"), {
        "action": "start_retrain_cycle", "_selected_action": [dataset.pk]}, follow=True)
    job = Job.objects.get(kind=Job.Kind.RETRAIN)
    assert f"#{job.pk}" in response.content.decode()
    queued = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert (queued.backbone, queued.image_size, queued.hyperparameters["epochs"], queued.parent.checkpoint) == (
        "resnet18", 96, 15, str(GALAXY_WEIGHTS))
    response = client.post(reverse("admin:labeling_dataset_changelist"), {
        "action": "start_retrain_cycle", "_selected_action": [dataset.pk]}, follow=True)
    assert "already queued" in response.content.decode()

    ready = version(dataset, "cycle 0", weights="random")
    client.post(reverse("admin:labeling_modelversion_changelist"), {
        "action": "activate_on_training_dataset", "_selected_action": [ready.pk]})
    job = Job.objects.get(kind=Job.Kind.EXTRACT_FEATURES)
    assert job.arguments["chain"]["activate"] == ready.pk and job.dataset == dataset


def test_the_admin_activation_reports_a_missing_checkpoint(client, dataset, admin_user):
    broken = version(dataset, "cycle 1", weights="file", checkpoint="/nowhere/backbone.pt")
    client.force_login(admin_user)
    response = client.post(reverse("admin:labeling_modelversion_changelist"), {
        "action": "activate_on_training_dataset", "_selected_action": [broken.pk]}, follow=True)
    assert "cannot be activated" in response.content.decode() and not Job.objects.exists()


def test_the_admin_activates_versions_of_two_datasets_each_on_its_own(client, dataset, admin_user, tmp_path):
    elsewhere = galaxy10_subset(tmp_path / "elsewhere", name="Elsewhere")
    ours, theirs = version(dataset, "ours", weights="random"), version(elsewhere, "theirs", weights="random", seed=1)
    twin = version(dataset, "twin", weights="random", seed=2)
    client.force_login(admin_user)
    response = client.post(reverse("admin:labeling_modelversion_changelist"), {
        "action": "activate_on_training_dataset", "_selected_action": [ours.pk, twin.pk]}, follow=True)
    assert "trained on the same dataset" in response.content.decode() and not Job.objects.exists()
    client.post(reverse("admin:labeling_modelversion_changelist"), {
        "action": "activate_on_training_dataset", "_selected_action": [ours.pk, theirs.pk]})
    started = {job.dataset_id: job.arguments["chain"]["activate"] for job in Job.objects.all()}
    assert started == {dataset.pk: ours.pk, elsewhere.pk: theirs.pk}


def test_the_active_versions_show_per_dataset_and_an_admin_rolls_one_back(client, dataset, admin_user, expert):
    elsewhere = Dataset.objects.create(name="Elsewhere", slug="elsewhere")
    first, second = version(dataset, "cycle 1", weights="random"), version(dataset, "cycle 2", weights="random")
    model_version_activate(version=first, dataset=dataset)
    model_version_activate(version=second, dataset=dataset, user=admin_user)
    model_version_activate(version=first, dataset=elsewhere)
    client.force_login(expert)
    page = client.get(reverse("training")).content.decode()
    row = re.search(rf'<tr data-dataset="{dataset.slug}">(.*?)</tr>', page, re.S).group(1)
    assert "cycle 2" in row and "cycle 1" in row and "ada" in row and "Roll back" not in row
    assert "active on Elsewhere" in page and f"active on {dataset.name}" in page
    assert client.post(reverse("training-rollback", args=[dataset.slug])).status_code == 403

    client.force_login(admin_user)
    response = client.post(reverse("training-rollback", args=[dataset.slug]), follow=True)

    job = Job.objects.get()
    assert f"Rollback of {dataset.name} started" in response.content.decode() and f"job #{job.pk}" in \
        response.content.decode()
    assert job.dataset == dataset and job.arguments["chain"]["activate"] == first.pk
    response = client.post(reverse("training-rollback", args=[elsewhere.slug]), follow=True)
    assert "Could not roll back Elsewhere" in response.content.decode()
    assert "has no earlier active version to roll back to" in response.content.decode()
    assert Job.objects.count() == 1


def test_a_real_cycle_appears_on_its_learning_curve(client, dataset, expert):
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    tasks.retrain(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    trained = ModelVersion.objects.get(pk=job.result["model_version"])
    client.force_login(expert)
    points = curve_points(client.get(reverse("training-curve", args=[dataset.slug])))
    assert [(p["version"], p["expert_labels"]) for p in points] == [(trained.pk, trained.training["expert_labels"])]
    assert points[0]["accuracy"] == trained.metrics["held_out"]["accuracy"] and len(points[0]["loss"]) == 1


@pytest.mark.parametrize("balanced, previous, activated", [(0.80, 0.81, False), (0.82, 0.81, True)])
def test_a_cycle_is_activated_only_when_its_balanced_accuracy_beats_its_parent_and_the_page_says_when_not(
        client, dataset, admin_user, balanced, previous, activated):
    from labeling.services.learning.retrain import _activate_as_decided, _activation_decision

    # Plain accuracy is higher than the parent's in both cases: only balanced accuracy decides.
    figures = metrics(accuracy=0.95, balanced=balanced, previous=0.5)
    figures["baselines"]["previous version"]["balanced_accuracy"] = previous
    figures["activation"] = _activation_decision(figures)
    cycle = version(dataset, "cycle 2", metrics=figures)
    job = Job.objects.create(kind=Job.Kind.RETRAIN, dataset=dataset, created_by=admin_user)

    assert _activate_as_decided(cycle, job) is activated

    cycle.refresh_from_db()
    assert cycle.metrics["activation"] == {"activated": activated, "metric": "balanced_accuracy", "value": balanced,
                                           "previous": previous, "previous_version": "resnet18 random init"}
    assert Job.objects.filter(kind=Job.Kind.EXTRACT_FEATURES).exists() is activated
    client.force_login(admin_user)
    page = client.get(reverse("training")).content.decode()
    message = (f"not activated: held-out balanced accuracy {balanced:.3f} did not beat resnet18 random init's "
               f"{previous:.3f}")
    assert (message in page) is not activated
