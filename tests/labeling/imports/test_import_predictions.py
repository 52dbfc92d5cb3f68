"""Importing an outside model's class probabilities: stored as that model's predictions, shown beside ours on the
labelling and galaxy pages, read by the margin queue when the policy says so; bad input is named by row and column
and nothing is written."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Classifier, Galaxy, LabelClass, LabelSchema, Prediction, QueueEntry, QueuePolicy
from labeling.selectors.queue import entries_json
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.imports.predictions import predictions_import
from labeling.services.imports.reports import ImportFailed
from labeling.services.labelling.queue import queue_build
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.conftest import REPO_ROOT
from tests.labeling.factories import make_galaxies
from tests.labeling.queue_helpers import partly_labelled, policy

pytestmark = pytest.mark.django_db


def write(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture
def labelled(tmp_path):
    return partly_labelled(tmp_path / "import")


def probabilities_csv(path, dataset, uncertain: set[str]):
    """Every unlabelled galaxy confidently class 2, except ``uncertain`` ones, split between 5 and 8."""
    lines = ["id,2,5,8"]
    for external_id in dataset.galaxies.order_by("pk").values_list("external_id", flat=True):
        lines.append(f"{external_id},0.05,0.48,0.47" if external_id in uncertain else f"{external_id},0.9,0.05,0.05")
    return write(path, "\n".join(lines) + "\n")


def test_imported_predictions_feed_a_margin_queue_when_the_policy_uses_them(labelled, expert, tmp_path):
    dataset, schema = labelled
    unlabelled = list(Galaxy.objects.filter(dataset=dataset, expert_labels__isnull=True).order_by("pk")
                      .values_list("external_id", flat=True))
    uncertain = set(unlabelled[3:6])
    path = probabilities_csv(tmp_path / "zoobot.csv", dataset, uncertain)
    report = predictions_import(dataset_name=dataset.name, schema_name="galaxy10", name="zoobot", path=path,
                                use=True)
    assert report.rows == dataset.galaxies.count() and report.used
    classifier = Classifier.objects.get(pk=report.classifier)
    assert (classifier.name, classifier.source, classifier.classes, classifier.feature_set) == (
        "zoobot", "zoobot.csv", ["2", "5", "8"], None)
    assert QueuePolicy.objects.get(dataset=dataset).predictions == classifier

    policy(dataset, batch_size=3, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    entries = list(QueueEntry.objects.filter(expert=expert, status="pending").order_by("rank"))
    assert {entry.galaxy.external_id for entry in entries} == uncertain
    assert {entry.strategy for entry in entries} == {"margin"} and {entry.classifier for entry in entries} == {
        classifier}


def test_without_the_policy_the_queue_ignores_imported_predictions(labelled, expert, tmp_path):
    dataset, schema = labelled
    path = probabilities_csv(tmp_path / "zoobot.csv", dataset, set())
    predictions_import(dataset_name=dataset.name, schema_name="galaxy10", name="zoobot", path=path)
    policy(dataset, batch_size=3, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    assert {entry.classifier for entry in QueueEntry.objects.filter(expert=expert)} == {None}


def test_the_labelling_page_and_the_galaxy_page_show_them_beside_ours(labelled, expert, client, tmp_path):
    dataset, schema = labelled
    galaxy = Galaxy.objects.filter(dataset=dataset, expert_labels__isnull=True).order_by("pk").first()
    predictions_import(dataset_name=dataset.name, schema_name="galaxy10", name="zoobot",
                       path=probabilities_csv(tmp_path / "zoobot.csv", dataset, {galaxy.external_id}), use=True)
    policy(dataset, batch_size=1, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    entry = QueueEntry.objects.get(expert=expert)
    shown = entries_json(entries=[entry], expert=expert, dataset=dataset, schema=schema)[0]
    assert shown["prediction"] is None
    [imported] = shown["imported_predictions"]
    assert (imported["model"], imported["label_class"], imported["probability"]) == ("zoobot", "5", 0.48)
    assert shown["why"]["classifier"] == "zoobot (imported)"

    client.force_login(expert)
    page = client.get(reverse("galaxy-detail", args=[galaxy.pk])).content.decode()
    assert 'data-model="zoobot"' in page and "(imported)" in page and "48%" in page


def test_the_command_imports_and_summarises(labelled, tmp_path, capsys):
    dataset, _ = labelled
    path = probabilities_csv(tmp_path / "zoobot.csv", dataset, set())
    call_command("import_predictions", str(path), "--dataset", dataset.name, "--schema", "galaxy10",
                 "--name", "zoobot")
    assert f"{dataset.galaxies.count()} predictions of 'zoobot' for schema 'galaxy10' imported" in \
        capsys.readouterr().out


@pytest.fixture
def shapes():
    make_galaxies(4, dataset_name="outside")
    schema = LabelSchema.objects.create(name="shape")
    for n, key in enumerate(["round", "disc", "edge"]):
        LabelClass.objects.create(schema=schema, key=key, name=key.title(), order=n)
    return schema


def refused(path) -> list[str]:
    with pytest.raises(ImportFailed) as failure:
        predictions_import(dataset_name="outside", schema_name="shape", name="zoobot", path=path)
    assert not Classifier.objects.exists() and not Prediction.objects.exists()
    return failure.value.problems


def test_bad_rows_are_named_by_row_and_column_and_nothing_is_written(shapes, tmp_path):
    path = write(tmp_path / "p.csv", "id,round,disc,edge\n"
                                     "g0,0.2,0.3,0.5\n"
                                     "nobody,0.2,0.3,0.5\n"
                                     "g1,-0.1,0.6,0.5\n"
                                     "g2,nan,0.5,0.5\n"
                                     "g3,0.5,0.3,0.3\n"
                                     "g0,0.2,0.3,0.5\n")
    assert refused(path) == [
        "p.csv, row 3, column 'id': no galaxy 'nobody' in dataset 'outside'",
        "p.csv, row 4, column 'round': -0.1 is not a probability (negative)",
        "p.csv, row 5, column 'round': nan is not a probability (NaN)",
        "p.csv, row 6: the probabilities sum to 1.1000, not 1 (within 0.01)",
        "p.csv, row 7, column 'id': 'g0' again (first in row 2)"]


def test_a_column_that_is_no_class_of_the_schema_is_named(shapes, tmp_path):
    path = write(tmp_path / "p.csv", "id,round,disc,spiral\ng0,0.2,0.3,0.5\n")
    assert refused(path) == ["p.csv, row 1, column 'spiral': not a class of schema 'shape' (classes: round, disc, "
                             "edge)"]


def test_tree_vote_fractions_are_refused_saying_why(shapes, tmp_path):
    call_command("load_tree")
    path = write(tmp_path / "p.csv", "id,smooth-or-featured_smooth,smooth-or-featured_featured-or-disk\n"
                                     "g0,0.2,0.8\n")
    [problem] = refused(path)
    assert "decision tree's <question>_<answer> vote fractions" in problem and "round, disc, edge" in problem


def test_importing_again_replaces_that_models_predictions(shapes, tmp_path):
    first = write(tmp_path / "a.csv", "id,round,disc\ng0,0.9,0.1\ng1,0.8,0.2\n")
    predictions_import(dataset_name="outside", schema_name="shape", name="zoobot", path=first)
    second = write(tmp_path / "b.csv", "id,round,disc\ng2,0.3,0.7\n")
    report = predictions_import(dataset_name="outside", schema_name="shape", name="zoobot", path=second)
    classifier = Classifier.objects.get()
    assert report.classifier == classifier.pk and classifier.source == "b.csv"
    assert list(classifier.predictions.values_list("galaxy__external_id", "label_class__key")) == [("g2", "disc")]


def test_the_command_fails_listing_the_problems(shapes, tmp_path):
    path = write(tmp_path / "p.csv", "id,round,disc\ng0,0.5,0.6\n")
    with pytest.raises(CommandError, match=r"row 2: the probabilities sum to 1\.1000.*\n1 problem\(s\), nothing"):
        call_command("import_predictions", str(path), "--dataset", "outside", "--schema", "shape", "--name", "m")



def test_the_documented_example_file_imports():
    example = REPO_ROOT / "docs" / "examples" / "outside_predictions.csv"
    schema_get_or_load_shipped(name="broad-morphology")
    dataset = dataset_get_or_create(name="outside")
    for line in example.read_text().splitlines()[1:]:
        Galaxy.objects.create(dataset=dataset, external_id=line.split(",")[0])
    report = predictions_import(dataset_name="outside", schema_name="broad-morphology", name="example", path=example)
    assert report.rows == 3
