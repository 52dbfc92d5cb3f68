"""Background tasks run by the django-q2 cluster (`manage.py qcluster`).

Each task takes plain ids (a task's arguments are pickled into the broker, and a row may change before a worker gets
to it), loads the rows, calls one service and returns a small JSON-friendly summary that django-q2 stores as the
task's result. The logic lives in the services, so a task is only an interface.

Enqueue through the ``enqueue_*`` helpers: they wait for the current transaction to commit, so a worker never looks
for rows that are not visible yet, and a rolled-back request enqueues nothing. Tasks are grouped by name (not given
a fixed task name: django-q2 looks results up by name, which must then be unique).
"""

from django.db import transaction
from django_q.tasks import async_task

from labeling.models import ConsensusRule, Dataset, DecisionTree
from labeling.services.consensus import consensus_compute
from labeling.services.votes import votes_aggregate


def aggregate_votes(tree_id: int, galaxy_ids: list[int] | None = None) -> dict:
    """Recount the volunteer classifications of one decision tree into vote summaries.

    Args:
        tree_id: the DecisionTree whose classifications are counted.
        galaxy_ids: only these galaxies; every galaxy with classifications of the tree when None.

    Returns:
        ``{"tree": name, "galaxies": number of galaxies whose summaries were written}``.

    Raises:
        DecisionTree.DoesNotExist: when the tree was deleted after the task was enqueued.
    """
    tree = DecisionTree.objects.get(id=tree_id)
    galaxies = votes_aggregate(tree=tree, galaxy_ids=galaxy_ids)
    return {"tree": tree.name, "galaxies": galaxies}


def compute_consensus(rule_id: int, dataset_id: int | None = None) -> dict:
    """Recompute the consensus labels of one consensus rule.

    Args:
        rule_id: the ConsensusRule to apply.
        dataset_id: only galaxies of this dataset; every galaxy with votes on the rule's tree when None.

    Returns:
        ``{"schema": name, "rule": name, "counts": {class key or "too_few_votes": galaxies}}``.

    Raises:
        ConsensusRule.DoesNotExist, Dataset.DoesNotExist: when a row was deleted after the task was enqueued.
    """
    rule = ConsensusRule.objects.select_related("schema", "tree").get(id=rule_id)
    dataset = Dataset.objects.get(id=dataset_id) if dataset_id is not None else None
    counts = consensus_compute(rule=rule, dataset=dataset)
    return {"schema": rule.schema.name, "rule": rule.name, "counts": counts}


def enqueue_aggregate_votes(*, tree_id: int, galaxy_ids: list[int] | None = None) -> None:
    """Queue :func:`aggregate_votes` once the current transaction commits (at once outside a transaction)."""
    ids = list(galaxy_ids) if galaxy_ids is not None else None
    transaction.on_commit(
        lambda: async_task("labeling.tasks.aggregate_votes", tree_id, ids, group="aggregate-votes")
    )


def enqueue_compute_consensus(*, rule_id: int, dataset_id: int | None = None) -> None:
    """Queue :func:`compute_consensus` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(
        lambda: async_task("labeling.tasks.compute_consensus", rule_id, dataset_id, group="compute-consensus")
    )
