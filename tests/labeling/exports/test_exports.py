"""Exports of labels with their provenance, cluster assignments and predictions, as CSV and JSON Lines."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from labeling.models import ExpertLabel, LabelClass, LabelResolution
from labeling.services.exports.streams import export_lines, export_rows
from labeling.services.labelling.labels import expert_label_set
from labeling.services.learning.classifier import classifier_fit
from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


def exported(dataset, what, fmt, tmp_path):
    out = tmp_path / f"{what}.{fmt}"
    call_command("export", "--dataset", dataset.name, "--what", what, "--format", fmt, "--out", str(out))
    text = out.read_text()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def test_labels_carry_who_when_and_where_they_came_from(dataset, expert, admin_user, tmp_path):
    galaxy = dataset.galaxies.order_by("pk").first()
    schema = ExpertLabel.objects.first().schema
    expert_label_set(galaxy=galaxy, schema=schema, expert=expert, note="faint bar",
                     label_class=LabelClass.objects.get(schema=schema, key="5"))
    LabelResolution.objects.create(galaxy=galaxy, schema=schema, resolved_by=admin_user,
                                   label_class=LabelClass.objects.get(schema=schema, key="5"))
    for fmt in ("csv", "jsonl"):
        rows = exported(dataset, "labels", fmt, tmp_path)
        mine = [r for r in rows if r["who"] == "edwin"]
        assert len(mine) == 1 and mine[0]["label"] == "5" and mine[0]["note"] == "faint bar"
        assert mine[0]["kind"] == "expert" and mine[0]["when"]
        imported = [r for r in rows if r["kind"] == "expert" and r["who"] == ""]
        assert len(imported) == 18 and all(r["source"].startswith("imported from") for r in imported)
        resolution = [r for r in rows if r["kind"] == "resolution"]
        assert len(resolution) == 1 and resolution[0]["who"] == "ada"


def test_clusters_and_predictions_name_their_model(dataset, tmp_path):
    feature_set = extracted(dataset)
    clustering = clustered(feature_set, k=3)
    classifier_fit(feature_set=feature_set, schema=ExpertLabel.objects.first().schema)
    clusters = exported(dataset, "clusters", "csv", tmp_path)
    assert len(clusters) == 18 and {r["clustering"] for r in clusters} == {str(clustering.pk)}
    assert {r["model_version"] for r in clusters} == {feature_set.model_version.name}
    predictions = exported(dataset, "predictions", "jsonl", tmp_path)
    assert len(predictions) == 18
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert predictions[0]["label"] == max(predictions[0]["probabilities"], key=predictions[0]["probabilities"].get)


def test_an_export_is_streamed_one_row_at_a_time(dataset):
    rows, columns = export_rows(dataset=dataset, what="labels")
    lines = export_lines(rows=rows, columns=columns, fmt="csv")
    first = next(lines)
    assert first.startswith("galaxy_id,external_id,schema,kind") and first.count("\n") == 2  # header + one row
    assert sum(1 for _ in lines) == 35  # 18 expert labels, then the final label of each of the 18 galaxies


def test_bad_requests_are_refused_with_the_reason(dataset, tmp_path):
    with pytest.raises(CommandError, match="no dataset 'Nope'"):
        call_command("export", "--dataset", "Nope", "--what", "labels", "--format", "csv")
    with pytest.raises(CommandError, match="is a folder"):
        call_command("export", "--dataset", dataset.name, "--what", "labels", "--format", "csv", "--out",
                     str(tmp_path))
    with pytest.raises(ValueError, match="unknown export"):
        export_rows(dataset=dataset, what="everything")


def test_an_empty_export_is_just_the_header(dataset):
    rows, columns = export_rows(dataset=dataset, what="predictions")
    assert list(export_lines(rows=rows, columns=columns, fmt="csv")) == [",".join(columns) + "\n"]
    rows, columns = export_rows(dataset=dataset, what="predictions")
    assert list(export_lines(rows=rows, columns=columns, fmt="jsonl")) == []
