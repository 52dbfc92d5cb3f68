"""The final label of the labels export: an admin's resolution, else the experts' majority (the rule galaxy_labels
uses), else the volunteers' consensus unless uncertain; one row per galaxy and schema, saying which and why."""

import pytest

from labeling.models import ConsensusLabel, ExpertLabel, LabelClass, LabelResolution
from labeling.selectors.expert_majority import majority_class
from labeling.selectors.labels import CONSENSUS, EXPERT, galaxy_labels
from labeling.services.exports.labels import EXPERT_RULE
from labeling.services.exports.streams import export_rows
from labeling.services.labelling.labels import expert_label_set
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db


@pytest.fixture
def galaxy10():
    return schema_get_or_load_shipped(name="galaxy10")


@pytest.fixture
def broad():
    return schema_get_or_load_shipped(name="broad-morphology")


def label(galaxy, schema, key, expert=None, provenance="web"):
    return expert_label_set(galaxy=galaxy, schema=schema, expert=expert, provenance=provenance,
                            label_class=LabelClass.objects.get(schema=schema, key=key))


def consensus(galaxy, schema, key, *, agreement=0.8123456, n_votes=40):
    return ConsensusLabel.objects.create(galaxy=galaxy, schema=schema, rule=schema.rules.first(), agreement=agreement,
                                         n_votes=n_votes, label_class=LabelClass.objects.get(schema=schema, key=key))


def finals(dataset) -> list[dict]:
    rows, _ = export_rows(dataset=dataset, what="labels")
    return [row for row in rows if row["kind"] == "final"]


def test_each_galaxy_gets_one_final_label_from_the_most_trusted_source(galaxy10, expert, second_expert, admin_user):
    g = make_galaxies(7, dataset_name="final")
    label(g[0], galaxy10, "5", provenance="imported from labels.csv")
    label(g[0], galaxy10, "5", expert)
    label(g[0], galaxy10, "3", second_expert)
    label(g[1], galaxy10, "2", expert)
    label(g[1], galaxy10, "7", second_expert)  # as many votes as "2", and later: it wins the tie
    label(g[2], galaxy10, "2", expert)
    label(g[2], galaxy10, "7", second_expert)
    LabelResolution.objects.create(galaxy=g[2], schema=galaxy10, resolved_by=admin_user, note="clear bar",
                                   label_class=LabelClass.objects.get(schema=galaxy10, key="4"))
    consensus(g[3], galaxy10, "6")
    consensus(g[4], galaxy10, "uncertain")
    consensus(g[5], galaxy10, "6")
    label(g[5], galaxy10, "1", expert)
    label(g[6], galaxy10, "1", expert)
    label(g[6], galaxy10, "2", expert)  # replaces the "1", which is history now

    rows = {row["external_id"]: row for row in finals(g[0].dataset)}

    assert sorted(rows) == ["g0", "g1", "g2", "g3", "g5", "g6"]  # g4's volunteers reached no class
    current = ExpertLabel.objects.filter(superseded_at__isnull=True)
    assert rows["g0"] | {"when": None} == {
        "galaxy_id": g[0].pk, "external_id": "g0", "schema": "galaxy10", "kind": "final", "label": "5",
        "label_name": "Barred Spiral", "source": "experts", "who": "imported from labels.csv, edwin", "when": None,
        "rule": EXPERT_RULE, "agreement": 0.6667, "n_votes": 3, "note": "", "fractions": ""}
    assert rows["g0"]["when"] == current.get(galaxy=g[0], expert=expert).created_at.isoformat()
    assert (rows["g1"]["label"], rows["g1"]["who"], rows["g1"]["agreement"]) == ("7", "vera", 0.5)
    assert {key: rows["g2"][key] for key in ("label", "source", "who", "rule", "note")} == {
        "label": "4", "source": "admin resolution", "who": "ada", "rule": "admin resolution", "note": "clear bar"}
    assert {key: rows["g3"][key] for key in ("label", "source", "who", "rule", "agreement", "n_votes")} == {
        "label": "6", "source": "volunteers (gz_decals)", "who": "", "rule": "gz-decals-thresholds",
        "agreement": 0.8123, "n_votes": 40}
    assert (rows["g5"]["label"], rows["g5"]["source"]) == ("1", "experts")  # experts before volunteers
    assert (rows["g6"]["label"], rows["g6"]["n_votes"]) == ("2", 1)


def test_the_final_label_agrees_with_the_labels_clusterings_and_training_read(galaxy10, expert, second_expert,
                                                                               admin_user):
    g = make_galaxies(30, dataset_name="agree")
    keys = ["0", "1", "2", "5"]
    for i, galaxy in enumerate(g):
        if i % 5 != 4:
            label(galaxy, galaxy10, keys[i % 4], expert)
        if i % 3 == 0:
            label(galaxy, galaxy10, keys[(i // 3) % 4], second_expert)
        if i % 2 == 0:
            consensus(galaxy, galaxy10, ["6", "uncertain"][i % 4 // 2])
        if i % 7 == 0:
            LabelResolution.objects.create(galaxy=galaxy, schema=galaxy10, resolved_by=admin_user,
                                           label_class=LabelClass.objects.get(schema=galaxy10, key="9"))
    dataset = g[0].dataset

    final = {row["galaxy_id"]: row["label"] for row in finals(dataset)}

    experts = galaxy_labels(dataset=dataset, schema=galaxy10, source=EXPERT)
    volunteers = galaxy_labels(dataset=dataset, schema=galaxy10, source=CONSENSUS)
    assert experts and volunteers.keys() - experts.keys()  # both sources decide some galaxies
    assert final == volunteers | experts


def test_each_galaxys_rows_come_together_galaxy_by_galaxy_and_schema_by_schema(galaxy10, broad, expert,
                                                                                second_expert, admin_user):
    g = make_galaxies(3, dataset_name="two schemas")
    for galaxy in reversed(g):  # labelled last to first: the order of the rows is not the order of the labels
        label(galaxy, broad, "spiral", expert)
        label(galaxy, galaxy10, "5", expert)
    label(g[1], galaxy10, "6", second_expert)
    consensus(g[1], galaxy10, "6")
    LabelResolution.objects.create(galaxy=g[1], schema=galaxy10, resolved_by=admin_user,
                                   label_class=LabelClass.objects.get(schema=galaxy10, key="6"))
    consensus(g[2], broad, "elliptical")

    rows, _ = export_rows(dataset=g[0].dataset, what="labels")

    first, second = sorted([galaxy10, broad], key=lambda schema: schema.pk)
    kinds = {(1, galaxy10.name): ["expert", "expert", "consensus", "resolution", "final"],
             (2, broad.name): ["expert", "consensus", "final"]}
    assert [(row["external_id"], row["schema"], row["kind"]) for row in rows] == [
        (galaxy.external_id, schema.name, kind) for i, galaxy in enumerate(g) for schema in (first, second)
        for kind in kinds.get((i, schema.name), ["expert", "final"])]


def test_the_majority_rule_counts_then_takes_the_latest_of_equals():
    assert majority_class(["a", "b", "b"]) == "b"
    assert majority_class(["b", "a"]) == "a"
    assert majority_class(["a", "b", "a", "b"]) == "b"
    assert majority_class(["a", "a", "b"]) == "a"
    with pytest.raises(ValueError, match="no expert label"):
        majority_class([])
