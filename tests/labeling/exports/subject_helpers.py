"""Helpers of the Zooniverse subject-set export tests: a dataset of real galaxies with features and a probability
model, the command run as an admin would run it, and the manifest it wrote read back."""

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.core.management import call_command

from labeling.models import Classifier, Dataset, FeatureSet, LabelSchema
from labeling.services.learning.classifier import classifier_fit
from tests.labeling.queue_helpers import partly_labelled, with_features


@dataclass
class Modelled:
    dataset: Dataset
    schema: LabelSchema
    feature_set: FeatureSet
    classifier: Classifier


def modelled(folder: Path) -> Modelled:
    """18 real Galaxy10 galaxies, 6 of them labelled, with features and a probability model of galaxy10."""
    dataset, schema = partly_labelled(folder)
    feature_set = with_features(dataset, index=False)
    return Modelled(dataset, schema, feature_set, classifier_fit(feature_set=feature_set, schema=schema))


def subjects(dataset: Dataset, out: Path, *options: str) -> str:
    """Run the subjects export; what it said on stderr."""
    said = io.StringIO()
    call_command("export", "--dataset", dataset.name, "--what", "subjects", "--format", "zooniverse", "--out",
                 str(out), *options, stderr=said)
    return said.getvalue()


def manifest(out: Path) -> tuple[list[str], list[dict]]:
    """(header, rows) of the manifest in a written folder or zip."""
    if out.suffix == ".zip":
        with zipfile.ZipFile(out) as archive:
            text = archive.read("manifest.csv").decode("utf-8")
    else:
        text = (out / "manifest.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    return reader.fieldnames, list(reader)
