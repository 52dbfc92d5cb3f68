"""Exports of a dataset's labels, clusters and predictions as CSV or JSON Lines, streamed: rows are read from the
database in chunks (QuerySet.iterator) and written one by one, so memory stays flat however large the dataset.

Every row names its provenance: who gave an expert label and when (or which file it was imported from), which rule
a consensus label came from, which admin resolved a disagreement, which model version and probability model made a
prediction."""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from labeling.models import (
    ClusterAssignment,
    Clustering,
    ConsensusLabel,
    Dataset,
    ExpertLabel,
    LabelResolution,
    Prediction,
)

WHAT = ("labels", "clusters", "predictions")
FORMATS = ("csv", "jsonl")
CHUNK = 2000

LABEL_COLUMNS = ["galaxy_id", "external_id", "schema", "kind", "label", "label_name", "source", "who", "when",
                 "rule", "agreement", "n_votes", "note"]
CLUSTER_COLUMNS = ["galaxy_id", "external_id", "clustering", "method", "k", "model_version", "cluster", "distance"]
PREDICTION_COLUMNS = ["galaxy_id", "external_id", "schema", "model_version", "classifier", "label", "probability",
                      "probabilities"]


def _label_rows(dataset: Dataset) -> Iterator[dict]:
    """Expert labels (current), consensus labels, resolutions, then the final label of each galaxy and schema."""
    experts = (ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True)
               .order_by("galaxy_id", "schema__name", "created_at")
               .values_list("galaxy_id", "galaxy__external_id", "schema__name", "label_class__key",
                            "label_class__name", "provenance", "expert__username", "created_at", "note"))
    for galaxy_id, external_id, schema, key, name, provenance, who, when, note in experts.iterator(CHUNK):
        yield {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema, "kind": "expert", "label": key,
               "label_name": name, "source": provenance, "who": who or "", "when": when.isoformat(), "rule": "",
               "agreement": "", "n_votes": "", "note": note}
    consensus = (ConsensusLabel.objects.filter(galaxy__dataset=dataset).order_by("galaxy_id", "schema__name")
                 .values_list("galaxy_id", "galaxy__external_id", "schema__name", "label_class__key",
                              "label_class__name", "rule__name", "rule__tree__name", "agreement", "n_votes",
                              "computed_at"))
    for galaxy_id, external_id, schema, key, name, rule, tree, agreement, n_votes, when in consensus.iterator(CHUNK):
        yield {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema, "kind": "consensus",
               "label": key, "label_name": name, "source": f"volunteers ({tree})", "who": "",
               "when": when.isoformat(), "rule": rule, "agreement": round(agreement, 4), "n_votes": n_votes,
               "note": ""}
    resolutions = (LabelResolution.objects.filter(galaxy__dataset=dataset).order_by("galaxy_id", "schema__name")
                   .values_list("galaxy_id", "galaxy__external_id", "schema__name", "label_class__key",
                                "label_class__name", "resolved_by__username", "resolved_at", "note"))
    for galaxy_id, external_id, schema, key, name, who, when, note in resolutions.iterator(CHUNK):
        yield {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema, "kind": "resolution",
               "label": key, "label_name": name, "source": "admin resolution", "who": who, "when": when.isoformat(),
               "rule": "", "agreement": "", "n_votes": "", "note": note}


def _cluster_rows(dataset: Dataset) -> Iterator[dict]:
    for clustering in Clustering.objects.filter(feature_set__dataset=dataset).select_related(
            "feature_set__model_version").order_by("pk"):
        rows = (ClusterAssignment.objects.filter(clustering=clustering).order_by("galaxy_id")
                .values_list("galaxy_id", "galaxy__external_id", "cluster", "distance"))
        for galaxy_id, external_id, cluster, distance in rows.iterator(CHUNK):
            yield {"galaxy_id": galaxy_id, "external_id": external_id, "clustering": clustering.pk,
                   "method": clustering.method, "k": clustering.k,
                   "model_version": clustering.feature_set.model_version.name, "cluster": cluster,
                   "distance": "" if distance is None else round(distance, 6)}


def _prediction_rows(dataset: Dataset) -> Iterator[dict]:
    rows = (Prediction.objects.filter(galaxy__dataset=dataset).order_by("classifier_id", "galaxy_id")
            .values_list("galaxy_id", "galaxy__external_id", "classifier__schema__name",
                         "classifier__feature_set__model_version__name", "classifier_id", "label_class__key",
                         "probability", "probabilities"))
    for galaxy_id, external_id, schema, version, classifier, key, probability, probabilities in rows.iterator(CHUNK):
        yield {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema, "model_version": version,
               "classifier": classifier, "label": key, "probability": round(probability, 5),
               "probabilities": probabilities}


SOURCES = {"labels": (_label_rows, LABEL_COLUMNS), "clusters": (_cluster_rows, CLUSTER_COLUMNS),
           "predictions": (_prediction_rows, PREDICTION_COLUMNS)}


def export_rows(*, dataset: Dataset, what: str) -> tuple[Iterator[dict], list[str]]:
    """(rows, columns) of one export.

    Raises:
        ValueError: for an unknown ``what``.
    """
    if what not in SOURCES:
        raise ValueError(f"unknown export {what!r}; one of {', '.join(SOURCES)}")
    rows, columns = SOURCES[what]
    return rows(dataset), columns


def export_lines(*, rows: Iterable[dict], columns: list[str], fmt: str) -> Iterator[str]:
    """The export as text, one line (or the CSV header) at a time: what a streaming response or a file gets.

    Raises:
        ValueError: for an unknown format.
    """
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
        return
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()  # goes out with the first row, or alone when there is none
    for row in rows:
        row = {key: json.dumps(value) if isinstance(value, dict | list) else value for key, value in row.items()}
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
