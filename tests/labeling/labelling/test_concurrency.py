"""People acting at the same instant, on PostgreSQL: threads released together by a barrier, each with its own
database connection, call the API as browsers do (two experts on one galaxy, a double submit, a change racing a
withdrawal, an undo racing a label, a volunteer's double click), and a retrain snapshot is read while experts
label. Whatever the interleaving: no 500, no lost or duplicated label, a clear 409 where one request must lose.
Each race is run several rounds to make the bad interleavings likely. Imports side by side: test_import_races.py."""

import functools
import threading

import pytest
from django.db import connection
from django.test import Client

from labeling.models import (
    ClassifyPolicy,
    ExpertLabel,
    LabelSchema,
    QueueEntry,
    Subject,
    VolunteerClassification,
    VoteSummary,
)
from labeling.selectors.labels import EXPERT, galaxy_labels
from labeling.services.learning.training_data import cycle_data
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped
from mlcore.training.evaluate import held_out_mask
from tests.labeling.factories import make_galaxies
from tests.labeling.ml_helpers import galaxy10_subset_for_training

# transaction=True: every thread must see what the others committed, which one test transaction would hide.
pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 6
ROUND_ANSWERS = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time and has no row locks: these races need PostgreSQL")


def at_once(*calls):
    """Run each call in a thread of its own, all released by one barrier; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            results[index] = exc
        finally:
            connection.close()  # the thread's own connection

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung (a deadlock?)"
    return results


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client, url, body):
    return functools.partial(client.post, url, body, content_type="application/json")


def label(client, galaxy, key, schema="galaxy10"):
    return post(client, "/api/labels/", {"galaxy": galaxy.pk, "schema": schema, "label_class": key})


def statuses(responses) -> list:
    return sorted(getattr(response, "status_code", repr(response)) for response in responses)


def current(galaxy, user):
    return list(ExpertLabel.objects.filter(galaxy=galaxy, expert=user, superseded_at__isnull=True))


@pytest.fixture
def galaxies():
    schema_get_or_load_shipped(name="galaxy10")
    return make_galaxies(ROUNDS, dataset_name="races")


def test_two_experts_labelling_one_galaxy_at_once_both_keep_their_label(galaxies, expert, second_expert):
    edwin, vera = signed_in(expert), signed_in(second_expert)
    for galaxy in galaxies:
        responses = at_once(label(edwin, galaxy, "2"), label(vera, galaxy, "5"))
        assert statuses(responses) == [201, 201], responses
        assert [row.label_class.key for row in current(galaxy, expert)] == ["2"]
        assert [row.label_class.key for row in current(galaxy, second_expert)] == ["5"]
        assert ExpertLabel.objects.filter(galaxy=galaxy).count() == 2


def test_one_expert_sending_the_same_label_twice_at_once_stores_it_once(galaxies, expert):
    tab_one, tab_two = signed_in(expert), signed_in(expert)
    for galaxy in galaxies:
        QueueEntry.objects.create(expert=expert, dataset=galaxy.dataset, schema=LabelSchema.objects.get(
            name="galaxy10"), galaxy=galaxy, rank=1, strategy="random", requested_strategy="random", score=0.0)
        responses = at_once(label(tab_one, galaxy, "2"), label(tab_two, galaxy, "2"))
        assert statuses(responses) == [201, 201], responses
        assert len({response.json()["id"] for response in responses}) == 1
        assert ExpertLabel.objects.filter(galaxy=galaxy, expert=expert).count() == 1
        assert list(QueueEntry.objects.filter(galaxy=galaxy).values_list("status", flat=True)) == ["done"]


def test_one_expert_sending_two_classes_at_once_keeps_one_in_force_and_the_other_as_history(galaxies, expert):
    tab_one, tab_two = signed_in(expert), signed_in(expert)
    for galaxy in galaxies:
        responses = at_once(label(tab_one, galaxy, "2"), label(tab_two, galaxy, "5"))
        assert statuses(responses) == [201, 201], responses
        [in_force] = current(galaxy, expert)
        superseded = ExpertLabel.objects.filter(galaxy=galaxy, expert=expert, superseded_at__isnull=False)
        assert in_force.pk in {response.json()["id"] for response in responses}
        assert [row.label_class.key for row in superseded] == [{"2": "5", "5": "2"}[in_force.label_class.key]]


def test_two_bulk_labellings_of_the_same_galaxies_at_once_neither_deadlocks_nor_doubles(galaxies, expert,
                                                                                      second_expert):
    ids = [galaxy.pk for galaxy in galaxies]
    edwin, vera = signed_in(expert), signed_in(second_expert)
    for _ in range(3):
        responses = at_once(post(edwin, "/api/labels/bulk/", {"schema": "galaxy10", "label_class": "2",
                                                              "galaxies": ids}),
                            post(vera, "/api/labels/bulk/", {"schema": "galaxy10", "label_class": "5",
                                                             "galaxies": ids[::-1]}),
                            post(signed_in(expert), "/api/labels/bulk/", {"schema": "galaxy10", "label_class": "8",
                                                                          "galaxies": ids[::-1]}))
        assert statuses(responses) == [201, 201, 201], responses
        for galaxy in galaxies:
            assert len(current(galaxy, expert)) == 1 and len(current(galaxy, second_expert)) == 1


def test_an_undo_racing_a_new_label_of_the_same_galaxy_leaves_one_label_in_force(galaxies, expert):
    page, other_tab = signed_in(expert), signed_in(expert)
    undo = {"dataset": galaxies[0].dataset_id, "schema": "galaxy10"}
    for galaxy in galaxies:
        for key in ("2", "5"):
            assert label(page, galaxy, key)().status_code == 201
        responses = at_once(post(page, "/api/labels/undo/", undo), label(other_tab, galaxy, "8"))
        assert statuses(responses) == [200, 201], responses
        [in_force] = current(galaxy, expert)
        # Undo first: "8" replaces the "2" the undo brought back. Label first: the undo takes the "8" back.
        assert in_force.label_class.key in ("8", "5")
    double_click = at_once(post(page, "/api/labels/undo/", undo), post(other_tab, "/api/labels/undo/", undo))
    assert set(statuses(double_click)) <= {200, 404} and 200 in statuses(double_click), double_click
    assert all(len(current(galaxy, expert)) <= 1 for galaxy in galaxies)


def test_a_change_racing_a_withdrawal_of_the_same_label_lets_exactly_one_win(galaxies, expert, admin_user):
    edwin, other_tab, ada = signed_in(expert), signed_in(expert), signed_in(admin_user)
    races = [
        (lambda url: functools.partial(edwin.patch, url, {"label_class": "8"}, content_type="application/json"),
         lambda url: functools.partial(ada.delete, url), [200, 409], [204, 409]),
        (lambda url: functools.partial(edwin.patch, url, {"label_class": "8"}, content_type="application/json"),
         lambda url: functools.partial(other_tab.patch, url, {"label_class": "5"}, content_type="application/json"),
         [200, 409], [200, 409]),
        (lambda url: functools.partial(edwin.delete, url), lambda url: functools.partial(ada.delete, url),
         [204, 409], [204, 409]),
    ]
    for galaxy in galaxies:
        for first, second, *outcomes in races:
            given = label(edwin, galaxy, "2")().json()["id"]
            url = f"/api/expert-labels/{given}/"
            responses = at_once(first(url), second(url))
            assert statuses(responses) in outcomes, (galaxy, responses)
            assert ExpertLabel.objects.get(pk=given).superseded_at is not None
            changed = 200 in statuses(responses)
            assert len(current(galaxy, expert)) == (1 if changed else 0)
            ExpertLabel.objects.filter(galaxy=galaxy).delete()


def test_a_volunteer_double_clicking_submit_stores_one_classification(galaxies, volunteer):
    tree = tree_get_or_load_shipped(name="gz_decals")
    policy = ClassifyPolicy.objects.create(dataset=galaxies[0].dataset, tree=tree, retire_after=5)
    valentina, again = signed_in(volunteer), signed_in(volunteer)
    for galaxy in galaxies:
        body = {"galaxy": galaxy.pk, "tree": tree.name, "answers": ROUND_ANSWERS}
        responses = at_once(post(valentina, "/api/classifications/", body), post(again, "/api/classifications/", body))
        assert statuses(responses) == [200, 201], responses
        assert VolunteerClassification.objects.filter(galaxy=galaxy, tree=tree).count() == 1
        assert Subject.objects.get(galaxy=galaxy, tree=policy.tree).n_classifications == 1
        assert VoteSummary.objects.get(galaxy=galaxy, question__key="smooth-or-featured").total == 1


def test_a_retrain_snapshot_is_one_moment_and_labels_given_meanwhile_go_to_the_next_cycle(tmp_path, expert,
                                                                                         second_expert):
    dataset = galaxy10_subset_for_training(tmp_path / "import", per_class=8)
    schema = schema_get_or_load_shipped(name="galaxy10")
    ids = sorted(dataset.galaxies.values_list("pk", flat=True))
    training = [galaxy for galaxy, held in zip(dataset.galaxies.order_by("pk"), held_out_mask(ids), strict=True)
                if not held]
    by_class: dict[int, list] = {}
    for galaxy in training:
        by_class.setdefault(galaxy.expert_labels.get(superseded_at__isnull=True).label_class_id, []).append(galaxy)
    # Four training galaxies wait for a label, and every class keeps one: a class left without training labels
    # would take its held-out galaxies out of the cycle (it cannot be predicted), which the ids' hash sometimes did.
    waiting = sorted((galaxy for members in by_class.values() for galaxy in members[1:]), key=lambda g: g.pk)[:4]
    assert len(waiting) == 4
    ExpertLabel.objects.filter(galaxy__in=waiting).delete()
    before = {str(galaxy_id) for galaxy_id in galaxy_labels(dataset=dataset, schema=schema, source=EXPERT)}
    clients = [signed_in(expert), signed_in(second_expert)]
    given: list = []

    def label_meanwhile(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not given and "labeling_galaxy" in sql:  # the snapshot's first read: experts label now, and commit
            given.extend(at_once(*[label(clients[n % 2], galaxy, "2") for n, galaxy in enumerate(waiting)]))
        return result

    def snapshot():  # in a thread of its own and outside any transaction, as a worker reads it
        with connection.execute_wrapper(label_meanwhile):
            return cycle_data(dataset=dataset, schema=schema, pseudo_threshold=0.95, pseudo_weight=0.5)

    [data] = at_once(snapshot)
    assert statuses(given) == [201] * len(waiting), given
    seen = set(data.trained_as["labels"]) | {str(galaxy_id) for galaxy_id in data.test_ids}
    assert seen == before and data.snapshot["expert_labels"] == len(data.trained_as["labels"])
    assert ExpertLabel.objects.filter(galaxy__in=waiting, superseded_at__isnull=True).count() == len(waiting)
    following = cycle_data(dataset=dataset, schema=schema, pseudo_threshold=0.95, pseudo_weight=0.5)
    new = set(following.trained_as["labels"]) - set(data.trained_as["labels"])
    assert new == {str(galaxy.pk) for galaxy in waiting}
