"""Exports of a dataset's labels, volunteer votes, clusters and predictions as CSV or JSON Lines, streamed: rows are
read from the database in chunks (QuerySet.iterator) and written one by one, so memory stays flat however large the
dataset. export_rows and export_lines are what the export command and the REST API call.

Every row names its provenance: who gave an expert label and when (or which file it was imported from), which rule
a consensus label came from, which admin resolved a disagreement, and which of them made a galaxy's final label
(labeling/services/exports/labels.py); which model version and probability model made a prediction. Votes come in
the Galaxy Zoo layout they were imported in, ready for import_votes (labeling/services/exports/votes.py), or as the
catalogue Zoobot fine-tunes on (layout "zoobot", labeling/services/exports/zoobot.py).
"""

import csv
import json
from collections.abc import Iterable, Iterator
from operator import itemgetter

from labeling.models import ClusterAssignment, Clustering, Dataset, Prediction
from labeling.services.exports.labels import LABEL_COLUMNS, label_rows
from labeling.services.exports.votes import LAYOUTS, vote_rows
from labeling.services.exports.zoobot import LAYOUT as ZOOBOT
from labeling.services.exports.zoobot import ZoobotOptionError, zoobot_rows

WHAT = ("labels", "votes", "clusters", "predictions")
FORMATS = ("csv", "jsonl")
VOTE_LAYOUTS = (*LAYOUTS, ZOOBOT)
CHUNK = 2000

CLUSTER_COLUMNS = ["galaxy_id", "external_id", "clustering", "method", "k", "model_version", "cluster", "distance"]
PREDICTION_COLUMNS = ["galaxy_id", "external_id", "schema", "model_version", "classifier", "label", "probability",
                      "probabilities"]


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
                         "classifier__feature_set__model_version__name", "classifier__name", "classifier_id",
                         "label_class__key", "probability", "probabilities"))
    for galaxy_id, external_id, schema, version, outside, classifier, key, probability, probabilities in \
            rows.iterator(CHUNK):
        # An outside model's imported predictions have no feature set here: they are named by the model.
        yield {"galaxy_id": galaxy_id, "external_id": external_id, "schema": schema,
               "model_version": version or outside, "classifier": classifier, "label": key,
               "probability": round(probability, 5), "probabilities": probabilities}


# The exports whose columns are the same for every dataset.
FIXED = {"labels": (label_rows, LABEL_COLUMNS), "clusters": (_cluster_rows, CLUSTER_COLUMNS),
         "predictions": (_prediction_rows, PREDICTION_COLUMNS)}


def export_rows(*, dataset: Dataset, what: str, layout: str | None = None, schema: str | None = None,
                tree: str | None = None, suffix: str = "", copy_images=None) -> tuple[Iterable[dict], list[str]]:
    """(rows, columns) of one export; rows is a generator that reads the database as it is consumed.

    Args:
        dataset: the dataset to export.
        what: one of WHAT.
        layout: for "votes" only: the Galaxy Zoo layout (one of VOTE_LAYOUTS), needed when the dataset holds votes
            in more than one; "zoobot" for Zoobot's fine-tuning catalogue.
        schema, tree, suffix, copy_images: for the zoobot layout only (labeling.services.exports.zoobot.zoobot_rows).

    Raises:
        ValueError: for an unknown ``what`` or layout, a layout given for another export, zoobot options without
            the zoobot layout, or votes that cannot be exported as asked (none, or several layouts and none chosen);
            raised here, before any row is read, so a caller can still answer with an error instead of a broken
            stream.
    """
    if what not in WHAT:
        raise ValueError(f"unknown export {what!r}; one of {', '.join(WHAT)}")
    if layout is not None and layout not in VOTE_LAYOUTS:
        raise ValueError(f"unknown vote layout {layout!r}; one of {', '.join(VOTE_LAYOUTS)}")
    if layout is not None and what != "votes":
        raise ValueError(f"a layout applies to the votes export only, not to {what!r}")
    zoobot_options = {"schema": schema, "tree": tree, "suffix": suffix or "", "copy_images": copy_images}
    if layout == ZOOBOT:
        return zoobot_rows(dataset=dataset, **zoobot_options)
    given = [{"suffix": "zoobot_suffix"}.get(name, name) for name, value in zoobot_options.items() if value]
    if given:
        shown = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in given)
        raise ZoobotOptionError(given[0], f"{shown}: for the votes export's zoobot layout only")
    if what == "votes":
        return vote_rows(dataset=dataset, layout=layout)
    rows, columns = FIXED[what]
    return rows(dataset), columns


def export_lines(*, rows: Iterable[dict], columns: list[str], fmt: str) -> Iterator[str]:
    """The export as text, one line at a time (the CSV header goes out with the first row): what a streaming
    response or a file gets. CSV cells holding a dict or list (a prediction's probabilities) are JSON text.

    Raises:
        ValueError: for an unknown format, here rather than at the first line.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return _jsonl_lines(rows) if fmt == "jsonl" else _csv_lines(rows, columns)


def _jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode  # json.dumps builds one per call
    for row in rows:
        yield encode(row) + "\n"


class _Echo:
    """A file whose write returns what it is given, so that csv.writer.writerow returns the line (the streaming
    CSV recipe of Django's documentation): no buffer to fill, read and empty for every row."""

    def write(self, line: str) -> str:
        return line


_JSON_TYPES = frozenset((dict, list))


def _csv_lines(rows: Iterable[dict], columns: list[str]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\n")
    header = writer.writerow(columns)
    # itemgetter picks a row's cells in C; a row lacking a column (a caller's own rows) leaves that cell empty.
    pick = itemgetter(*columns) if len(columns) > 1 else (lambda row: tuple(row[c] for c in columns))
    for row in rows:
        try:
            values = pick(row)
        except KeyError:
            values = [row.get(column, "") for column in columns]
        if not _JSON_TYPES.isdisjoint(map(type, values)):
            values = [json.dumps(value) if isinstance(value, dict | list) else value for value in values]
        line = writer.writerow(values)
        if header:
            line, header = header + line, ""
        yield line
    if header:  # no rows: the header alone
        yield header
