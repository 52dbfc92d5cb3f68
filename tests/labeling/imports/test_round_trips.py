"""What goes out to other tools comes back in: a Zooniverse subject set exported here, classified on Zooniverse,
imported from its Panoptes export onto the same galaxies; an outside model's predictions imported, exported and
imported again unchanged."""

import csv
import json

import pytest

from labeling.models import Classifier, Prediction, VolunteerClassification
from labeling.services.exports.streams import export_rows
from labeling.services.imports.predictions import predictions_import
from tests.labeling.exports.subject_helpers import manifest, modelled, subjects
from tests.labeling.panoptes_helpers import GZD5, read_rows, run, write_rows

pytestmark = pytest.mark.django_db


def test_a_subject_set_sent_to_zooniverse_comes_back_as_classifications_of_the_same_galaxies(tmp_path):
    model = modelled(tmp_path / "import")
    subjects(model.dataset, tmp_path / "subjects", "--least-sure", "5", "--schema", model.schema.name)
    _, sent = manifest(tmp_path / "subjects")
    # Zooniverse keeps the manifest's columns in each subject's subject_data; a real GZD-5 row gives the rest.
    header, (template, *_) = read_rows(GZD5)
    rows = []
    for number, subject in enumerate(sent, start=1):
        subject_id = str(90_000_000 + number)
        rows.append({**template, "classification_id": str(500_000_000 + number), "subject_ids": subject_id,
                     "subject_data": json.dumps({subject_id: {"retired": None, **subject}})})
    export = write_rows(tmp_path / "panoptes.csv", header, rows)

    out = run(export, model.dataset.name, "--mapping", "gz_decals")

    assert "5 classifications imported" in out
    classified = dict(VolunteerClassification.objects.filter(external_id__startswith="5000000").values_list(
        "galaxy__external_id", "external_id"))
    assert sorted(classified) == sorted(subject["#external_id"] for subject in sent)
    assert {str(g) for g in VolunteerClassification.objects.values_list("galaxy_id", flat=True)} == {
        subject["#galaxy_pk"] for subject in sent}


def test_imported_predictions_export_and_import_again_unchanged(tmp_path):
    model = modelled(tmp_path / "import")
    keys = sorted(model.schema.classes.values_list("key", flat=True))
    lines = [",".join(["id", *keys])]
    for i, external_id in enumerate(model.dataset.galaxies.order_by("pk").values_list("external_id", flat=True)):
        shares = [1.0 + ((i + j) % 4) for j in range(len(keys))]
        lines.append(",".join([external_id, *(f"{s / sum(shares):.5f}" for s in shares)]))
    (tmp_path / "outside.csv").write_text("\n".join(lines) + "\n")
    predictions_import(dataset_name=model.dataset.name, schema_name=model.schema.name, name="zoobot",
                       path=tmp_path / "outside.csv")
    before = {p.galaxy_id: p.probabilities for p in Prediction.objects.filter(classifier__name="zoobot")}

    rows, _ = export_rows(dataset=model.dataset, what="predictions")
    exported = [row for row in rows if row["model_version"] == "zoobot"]
    assert len(exported) == len(before)  # the outside model's rows, named by the model
    with open(tmp_path / "again.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *keys])
        for row in exported:
            writer.writerow([row["external_id"], *(row["probabilities"][key] for key in keys)])
    predictions_import(dataset_name=model.dataset.name, schema_name=model.schema.name, name="zoobot",
                       path=tmp_path / "again.csv")

    after = {p.galaxy_id: p.probabilities for p in Prediction.objects.filter(classifier__name="zoobot")}
    assert Classifier.objects.filter(name="zoobot").count() == 1
    assert after.keys() == before.keys()
    assert all(after[g][key] == pytest.approx(before[g][key], abs=1e-5) for g in before for key in keys)
