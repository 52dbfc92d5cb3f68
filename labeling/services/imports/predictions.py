"""Class probabilities computed elsewhere (an outside model's predictions for a label schema) imported as a named
model's predictions: a Classifier row with the model's name and the file (no feature set, no head file here) and a
Prediction per galaxy, shown beside our own probability model's on the labelling and galaxy pages. With ``use`` the
dataset's queue policy points at them, and the uncertainty strategies (margin, entropy, least confidence,
cluster-margin, combined) read their probabilities instead of the probability model's.

The file is a CSV: an id column (the galaxies' catalogue ids) and one column per class key of the schema, each row
summing to 1 within SUM_TOLERANCE. Rows are checked and written in one transaction: any bad row (unknown id, id met
twice, a value that is not a probability, a row not summing to 1) rolls everything back, and the problems name
their row and column. Importing again under the same name replaces that model's predictions.

Predicted vote fractions of a decision tree (columns ``<question>_<answer>``) are refused: a prediction here is a
probability per class of a label schema, and vote summaries hold only the volunteers' own votes, which the consensus
and the disagreement strategy read; storing a model's fractions there would pass them off as votes.
"""

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from labeling.models import Answer, Classifier, LabelSchema, Prediction
from labeling.services.imports.common import csv_rows, problem
from labeling.services.imports.features import dataset_for_import, galaxy_keys, model_name_checked
from labeling.services.imports.reports import ImportFailed, Progress, imports_take_turns, no_progress
from labeling.services.learning.classifier import queue_policy

SUM_TOLERANCE = 0.01  # published probabilities come rounded to two or three decimals per class
MAX_PROBLEMS = 1000
WRITE_BATCH = 5000
ROW = re.compile(r", row (\d+)")


@dataclass
class PredictionImportReport:
    dataset: str
    schema: str
    name: str
    classifier: int
    rows: int
    used: bool

    def summary(self) -> str:
        used = "; the dataset's queues read them" if self.used else ""
        return (f"dataset {self.dataset!r}: {self.rows:,} predictions of {self.name!r} for schema {self.schema!r} "
                f"imported (model #{self.classifier}){used}")


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [column.strip() for column in next(csv.reader(handle), [])]
    except FileNotFoundError:
        raise ImportFailed([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportFailed([f"{path.name}: not a readable CSV file ({exc})"]) from None


def _class_columns(path: Path, header: list[str], id_column: str, schema: LabelSchema) -> list[str]:
    """The class keys the file has columns for, in the schema's order. Raises ImportFailed for a column that is no
    class of the schema (and says so when the columns are a decision tree's answers)."""
    keys = list(schema.classes.order_by("order", "pk").values_list("key", flat=True))
    columns = [column for column in header if column != id_column]
    unknown = [column for column in columns if column not in keys]
    where = f"{path.name}, row 1"
    if id_column not in header:
        raise ImportFailed([problem(where, id_column, "required column is missing")])
    if unknown:
        answers = {f"{question}_{answer}" for question, answer in Answer.objects.values_list("question__key", "key")}
        if all(column in answers for column in unknown):
            raise ImportFailed([f"{where}: columns such as {unknown[0]!r} are a decision tree's <question>_<answer> "
                                "vote fractions; predicted vote fractions cannot be stored (vote summaries hold "
                                f"volunteers' votes only): import class probabilities of schema {schema.name!r} "
                                f"instead, one column per class ({', '.join(keys)})"])
        raise ImportFailed([problem(where, column, f"not a class of schema {schema.name!r} (classes: "
                                                   f"{', '.join(keys)})") for column in unknown])
    if len(columns) < 2:
        raise ImportFailed([f"{where}: {len(columns)} class column(s); probabilities of at least two classes of "
                            f"schema {schema.name!r} are needed ({', '.join(keys)})"])
    return [key for key in keys if key in columns]


def _probabilities(values: dict[str, str], classes: list[str], where: str, found: list[str]) -> dict[str, float]:
    """The row's probabilities, or {} after adding a problem per bad value (or for a row not summing to 1)."""
    row, bad = {}, False
    for key in classes:
        text = values[key]
        try:
            value = float(text)
        except ValueError:
            found.append(problem(where, key, f"{text!r} is not a number" if text else "empty"))
            bad = True
            continue
        if not math.isfinite(value) or value < 0 or value > 1 + SUM_TOLERANCE:
            why = "NaN" if math.isnan(value) else "negative" if value < 0 else "infinite" \
                if math.isinf(value) else "above 1"
            found.append(problem(where, key, f"{text} is not a probability ({why})"))
            bad = True
        row[key] = value
    if bad:
        return {}
    total = sum(row.values())
    if abs(total - 1) > SUM_TOLERANCE:
        found.append(problem(where, None, f"the probabilities sum to {total:.4f}, not 1 (within {SUM_TOLERANCE})"))
        return {}
    return row


def predictions_import(*, dataset_name: str, schema_name: str, name: str, path: Path, id_column: str = "id",
                       use: bool = False, progress: Progress = no_progress) -> PredictionImportReport:
    """Import the class probabilities of ``path`` as the predictions of the outside model ``name`` for the
    dataset's galaxies under ``schema_name``.

    Raises:
        ImportFailed: naming every problem by file, row and column; nothing is written.
    """
    path = Path(path)
    dataset = dataset_for_import(dataset_name)
    schema = LabelSchema.objects.filter(name=schema_name).first()
    if schema is None:
        known = ", ".join(LabelSchema.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise ImportFailed([f"no label schema {schema_name!r} (schemas: {known})"])
    name = model_name_checked(name)
    classes = _class_columns(path, _header(path), id_column, schema)
    class_ids = dict(schema.classes.values_list("key", "pk"))
    found: list[str] = []
    with transaction.atomic():
        imports_take_turns()
        classifier, _ = Classifier.objects.update_or_create(
            dataset=dataset, schema=schema, name=name,
            defaults={"feature_set": None, "path": "", "classes": classes, "source": path.name[:300],
                      "created_at": timezone.now()})
        Prediction.objects.filter(classifier=classifier).delete()
        seen: dict[int, int] = {}
        batch: list[tuple[int, str, str, dict]] = []
        rows = 0
        progress(0, 0, "checking and writing predictions")
        for number, values, fault in csv_rows(path, required=[id_column]):
            where = f"{path.name}, row {number}"
            if fault:
                found.append(fault)
                continue
            probabilities = _probabilities(values, classes, where, found)
            if probabilities:
                batch.append((number, values[id_column], where, probabilities))
            if len(batch) == WRITE_BATCH:
                rows += _write(classifier, dataset, batch, class_ids, seen, id_column, found)
                batch = []
                progress(number, 0, "checking and writing predictions")
            if len(found) >= MAX_PROBLEMS:
                found.append(f"{where}: stopped reading after {MAX_PROBLEMS} problems")
                break
        rows += _write(classifier, dataset, batch, class_ids, seen, id_column, found)
        if not found and rows == 0:
            found.append(f"{path.name}: holds no predictions")
        if found:
            raise ImportFailed(sorted(found, key=_row_of))  # rolls back the classifier and its predictions
        Classifier.objects.filter(pk=classifier.pk).update(metrics={"rows": rows})
        if use:
            policy = queue_policy(dataset=dataset)
            policy.predictions = classifier
            policy.save(update_fields=["predictions"])
    return PredictionImportReport(dataset=dataset.name, schema=schema.name, name=name, classifier=classifier.pk,
                                  rows=rows, used=use)


def _row_of(line: str) -> int:
    match = ROW.search(line)
    return int(match.group(1)) if match else 0


def _write(classifier, dataset, batch, class_ids, seen: dict[int, int], id_column: str, found: list[str]) -> int:
    """Check the batch's ids and write its predictions (none once a problem was found: all will be rolled back)."""
    keys = galaxy_keys(dataset, [external_id for _, external_id, _, _ in batch])
    predictions = []
    for number, external_id, where, probabilities in batch:
        pk = keys.get(external_id)
        if pk is None:
            found.append(problem(where, id_column, f"no galaxy {external_id!r} in dataset {dataset.name!r}"
                                 if external_id else "empty id"))
            continue
        if pk in seen:
            found.append(problem(where, id_column, f"{external_id!r} again (first in row {seen[pk]})"))
            continue
        seen[pk] = number
        top = max(probabilities, key=probabilities.get)
        predictions.append(Prediction(classifier=classifier, galaxy_id=pk, label_class_id=class_ids[top],
                                      probability=probabilities[top],
                                      probabilities={key: round(p, 5) for key, p in probabilities.items()}))
    if not found:
        Prediction.objects.bulk_create(predictions, batch_size=WRITE_BATCH)
    return len(predictions)
