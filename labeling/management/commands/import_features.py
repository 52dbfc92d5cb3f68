"""Import feature vectors computed elsewhere: `python manage.py import_features --dataset NAME --name TEXT FILE
[--ids IDS.txt|IDS.csv] [--id-column id] [--use]`."""

import shlex
from pathlib import Path

from django.core.management.base import BaseCommand

from labeling.management.imports import import_progress
from labeling.services.imports.features import features_import


class Command(BaseCommand):
    help = ("Import an outside model's feature vectors for a dataset's galaxies as a feature set named --name: an "
            ".npy array with --ids (one id per row), or a CSV or Parquet file with an id column; ids are the "
            "galaxies' catalogue ids. Every row is checked before anything is written. --use makes them the "
            "features the dataset's queues and probability model use (its active version).")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the vectors: .npy, .csv, .csv.gz, .parquet")
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--name", required=True, help="the outside model's name, e.g. 'zoobot convnext_nano'")
        parser.add_argument("--ids", type=Path, help="an .npy array's ids: a .txt file (one per line) or a .csv")
        parser.add_argument("--id-column", default="id", help="the id column of a CSV or Parquet file (default id)")
        parser.add_argument("--use", action="store_true",
                            help="make the imported model the dataset's active version (then run build_index)")

    def handle(self, *args, path, dataset, name, ids, id_column, use, **options):
        with import_progress("row", self.stderr) as bars:
            report = features_import(dataset_name=dataset, name=name, path=path, ids=ids, id_column=id_column,
                                     use=use, progress=bars)
        self.stdout.write(self.style.SUCCESS(report.summary()))
        self.stdout.write(f"next: python manage.py build_index --dataset {shlex.quote(report.dataset)} "
                          f"--feature-set {report.feature_set}")
