"""The admin's control of the queues: the policy per dataset, and refits and rebuilds started from the Django
admin and the Jobs page."""

import pytest
from django.urls import reverse

from labeling.models import Classifier, Job, QueueEntry, QueuePolicy
from tests.labeling.queue_helpers import partly_labelled, policy, with_features

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(tmp_path):
    return partly_labelled(tmp_path / "import")


def test_an_admin_sets_the_strategy_of_a_dataset_in_the_admin(client, labelled, admin_user):
    dataset, _ = labelled
    client.force_login(admin_user)
    response = client.post(reverse("admin:labeling_queuepolicy_add"), {
        "dataset": dataset.pk, "strategy": "cluster_margin", "weights": "{}", "batch_size": 30,
        "double_label_share": 0.2, "refit_every": 10, "min_labels": 15, "consensus_min_agreement": 0.8, "seed": 0})
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = QueuePolicy.objects.get(dataset=dataset)
    assert (saved.strategy, saved.double_label_share, saved.updated_by) == ("cluster_margin", 0.2, admin_user)


def test_a_share_outside_zero_to_one_is_refused(labelled):
    from django.db import IntegrityError, transaction

    dataset, _ = labelled
    with pytest.raises(IntegrityError), transaction.atomic():
        QueuePolicy.objects.create(dataset=dataset, double_label_share=1.5)


def test_the_admin_action_refits_the_model_and_rebuilds_the_queues(client, labelled, admin_user, expert,
                                                                   django_capture_on_commit_callbacks):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=3)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:labeling_dataset_changelist"), {
            "action": "refit_probability_model", "_selected_action": [dataset.pk]})
    assert Classifier.objects.filter(schema=schema).count() == 1
    assert QueueEntry.objects.filter(expert=expert, status="pending").count() == 3


def test_the_jobs_page_rebuilds_the_queues_with_a_chosen_strategy(client, labelled, admin_user, expert,
                                                                  django_capture_on_commit_callbacks):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=2)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("job-start", args=["build_queue"]), {
            "dataset": dataset.pk, "schema": schema.pk, "strategy": "kcenter"})
    job = Job.objects.get(kind=Job.Kind.BUILD_QUEUE)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert set(QueueEntry.objects.filter(expert=expert).values_list("strategy", flat=True)) == {"kcenter"}


def test_experts_may_not_start_a_refit_from_the_jobs_page(client, labelled, expert):
    dataset, schema = labelled
    client.force_login(expert)
    response = client.post(reverse("job-start", args=["fit_classifier"]), {"dataset": dataset.pk,
                                                                           "schema": schema.pk})
    assert response.status_code == 403 and not Job.objects.exists()
