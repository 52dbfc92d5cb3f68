"""Background tasks: run inline as the tests' settings ask (sync), and through real brokers (the database, Redis)
with django-q2's own pusher -> worker -> monitor, the path a `manage.py qcluster` worker takes."""

import os
import uuid
from multiprocessing import Event, Value

import pytest
import redis
from django.db import transaction
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.monitor import monitor
from django_q.pusher import pusher
from django_q.queues import Queue
from django_q.tasks import async_task, fetch, result
from django_q.worker import worker

from labeling import tasks
from labeling.models import ConsensusLabel, Galaxy, VoteSummary
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.votes.aggregation import classification_create
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

SMOOTH = {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a16_completely_round", "t06_odd": "a15_no"}
SPIRAL = {
    "t01_smooth_or_features": "a02_features_or_disk",
    "t02_edgeon": "a05_no",
    "t03_bar": "a07_no_bar",
    "t04_spiral": "a08_spiral",
    "t10_arms_winding": "a29_medium",
    "t11_arms_number": "a32_2",
    "t05_bulge_prominence": "a11_just_noticeable",
    "t06_odd": "a15_no",
}


def _galaxy(external_id: str, dataset_name: str = "tasks") -> Galaxy:
    return Galaxy.objects.create(dataset=dataset_get_or_create(name=dataset_name), external_id=external_id)


def _classify(galaxy: Galaxy, tree, walks: list[dict]) -> None:
    # aggregate=False leaves the counting to the task under test.
    for n, answers in enumerate(walks):
        classification_create(galaxy=galaxy, tree=tree, answers=answers, volunteer_id=f"v{n}", aggregate=False)


def _summary(galaxy: Galaxy, question_key: str) -> VoteSummary:
    return VoteSummary.objects.get(galaxy=galaxy, question__key=question_key, source=VoteSummary.Source.AGGREGATED)


@pytest.fixture
def gz2(db):
    return tree_get_or_load_shipped(name="gz2")


def test_aggregate_votes_counts_the_classifications_of_a_tree(gz2):
    galaxy = _galaxy("587722981736120347")
    _classify(galaxy, gz2, [SMOOTH] * 3 + [SPIRAL] * 2)

    task_id = async_task("labeling.tasks.aggregate_votes", gz2.id)

    assert result(task_id) == {"tree": "gz2", "galaxies": 1}
    root = _summary(galaxy, "t01_smooth_or_features")
    assert root.counts == {"a01_smooth": 3, "a02_features_or_disk": 2, "a03_star_or_artifact": 0}
    assert root.total == 5
    assert root.fractions["a01_smooth"] == pytest.approx(0.6)
    assert _summary(galaxy, "t04_spiral").counts["a08_spiral"] == 2
    assert _summary(galaxy, "t04_spiral").reach == pytest.approx(0.4)


def test_aggregate_votes_touches_only_the_listed_galaxies(gz2):
    listed, other = _galaxy("listed"), _galaxy("other")
    _classify(listed, gz2, [SMOOTH])
    _classify(other, gz2, [SMOOTH])

    summary = tasks.aggregate_votes(gz2.id, [listed.id])

    assert summary == {"tree": "gz2", "galaxies": 1}
    assert VoteSummary.objects.filter(galaxy=listed).exists()
    assert not VoteSummary.objects.filter(galaxy=other).exists()


def test_a_task_for_a_deleted_tree_fails_loudly(gz2):
    missing_id = gz2.id + 1000
    with pytest.raises(type(gz2).DoesNotExist):
        async_task("labeling.tasks.aggregate_votes", missing_id)


def test_compute_consensus_labels_each_galaxy_by_the_rule(gz2):
    schema = schema_get_or_load_shipped(name="broad-morphology")
    rule = schema.rules.get(name="gz2-thresholds")
    elliptical, spiral, sparse = _galaxy("round"), _galaxy("arms"), _galaxy("few-votes")
    _classify(elliptical, gz2, [SMOOTH] * 11 + [SPIRAL])
    _classify(spiral, gz2, [SPIRAL] * 10 + [SMOOTH] * 2)
    _classify(sparse, gz2, [SMOOTH] * 3)
    tasks.aggregate_votes(gz2.id)

    task_id = async_task("labeling.tasks.compute_consensus", rule.id)

    assert result(task_id) == {
        "schema": "broad-morphology",
        "rule": "gz2-thresholds",
        "counts": {"elliptical": 1, "spiral": 1, "too_few_votes": 1},
    }
    labels = dict(ConsensusLabel.objects.filter(schema=schema).values_list("galaxy_id", "label_class__key"))
    assert labels == {elliptical.id: "elliptical", spiral.id: "spiral"}


def test_compute_consensus_for_one_dataset_leaves_other_datasets_alone(gz2):
    rule = schema_get_or_load_shipped(name="broad-morphology").rules.get(name="gz2-thresholds")
    inside, outside = _galaxy("in", "first"), _galaxy("out", "second")
    _classify(inside, gz2, [SMOOTH] * 10)
    _classify(outside, gz2, [SMOOTH] * 10)
    tasks.aggregate_votes(gz2.id)

    summary = tasks.compute_consensus(rule.id, inside.dataset_id)

    assert summary["counts"] == {"elliptical": 1}
    assert list(ConsensusLabel.objects.values_list("galaxy_id", flat=True)) == [inside.id]


def test_enqueue_waits_for_the_transaction_to_commit(gz2, django_capture_on_commit_callbacks):
    galaxy = _galaxy("committed")
    _classify(galaxy, gz2, [SMOOTH, SMOOTH])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.enqueue_aggregate_votes(tree_id=gz2.id, galaxy_ids=[galaxy.id])
        assert not VoteSummary.objects.filter(galaxy=galaxy).exists()

    assert len(callbacks) == 1
    assert _summary(galaxy, "t01_smooth_or_features").counts["a01_smooth"] == 2
    saved = Task.objects.get(group="aggregate-votes")
    assert saved.success and saved.result == {"tree": "gz2", "galaxies": 1}


def test_enqueue_in_a_rolled_back_transaction_queues_nothing(gz2, django_capture_on_commit_callbacks):
    rule = schema_get_or_load_shipped(name="broad-morphology").rules.get(name="gz2-thresholds")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            tasks.enqueue_compute_consensus(rule_id=rule.id)
            raise RuntimeError("the request failed")

    assert callbacks == []
    assert not Task.objects.exists()


# --- Through real brokers -------------------------------------------------------------------------------------


@pytest.fixture
def cluster_name(monkeypatch):
    """A queue of our own with tasks really queued (not run inline), so nothing collides with a running worker."""
    name = f"galaxy-labeling-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    return name


@pytest.fixture
def redis_broker(cluster_name, monkeypatch):
    connection = redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}); start one with `redis-server --daemonize yes "
                    f"--bind 127.0.0.1 --port 6379 --save '' --appendonly no` or set TEST_REDIS_URL")
    # get_broker() picks the ORM broker when "orm" is configured, and Redis otherwise.
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    broker = get_broker()
    assert type(broker).__name__ == "Redis"
    yield broker
    keys = connection.keys(f"django_q:{cluster_name}*")
    if keys:
        connection.delete(*keys)
    connection.close()


def _run_cluster_once(broker, *, expected_tasks: int) -> None:
    """One pass of django-q2's cluster in this process: pusher -> worker -> monitor, as its own test-suite does."""
    task_queue, result_queue = Queue(), Queue()
    stop = Event()
    stop.set()  # the pusher dequeues once and returns
    for _ in range(expected_tasks):
        pusher(task_queue, stop, broker=broker)
    assert task_queue.qsize() == expected_tasks
    task_queue.put("STOP")
    worker(task_queue, result_queue, Value("f", -1))
    result_queue.put("STOP")
    monitor(result_queue, broker=broker)


# transaction=True: a real worker closes stale connections between tasks, which a test transaction cannot survive.
@pytest.mark.django_db(transaction=True)
def test_a_task_goes_through_the_redis_broker_and_its_result_is_saved(redis_broker, cluster_name):
    gz2 = tree_get_or_load_shipped(name="gz2")
    galaxy = _galaxy("via-redis")
    _classify(galaxy, gz2, [SPIRAL] * 3)

    tasks.enqueue_aggregate_votes(tree_id=gz2.id, galaxy_ids=[galaxy.id])  # no transaction open: queued at once

    assert redis_broker.queue_size() == 1
    assert not VoteSummary.objects.filter(galaxy=galaxy).exists()
    _run_cluster_once(redis_broker, expected_tasks=1)
    assert redis_broker.queue_size() == 0
    saved = Task.objects.get(group="aggregate-votes")
    assert saved.success is True
    assert saved.cluster == cluster_name
    assert fetch(saved.id).result == {"tree": "gz2", "galaxies": 1}
    assert _summary(galaxy, "t04_spiral").counts["a08_spiral"] == 3


@pytest.mark.django_db(transaction=True)
def test_a_task_goes_through_the_database_broker_and_is_acknowledged(cluster_name):
    gz2 = tree_get_or_load_shipped(name="gz2")
    rule = schema_get_or_load_shipped(name="broad-morphology").rules.get(name="gz2-thresholds")
    galaxy = _galaxy("via-orm")
    _classify(galaxy, gz2, [SMOOTH] * 12)
    tasks.aggregate_votes(gz2.id)
    broker = get_broker()
    assert type(broker).__name__ == "ORM"

    task_id = async_task("labeling.tasks.compute_consensus", rule.id, broker=broker)

    assert OrmQ.objects.filter(key=cluster_name).count() == 1
    _run_cluster_once(broker, expected_tasks=1)
    assert not OrmQ.objects.filter(key=cluster_name).exists()  # acknowledged: a second worker will not redo it
    assert fetch(task_id).success is True
    assert result(task_id)["counts"] == {"elliptical": 1}
    assert ConsensusLabel.objects.get(galaxy=galaxy).label_class.key == "elliptical"
