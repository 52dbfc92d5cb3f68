"""Import an outside model's class probabilities: `python manage.py import_predictions --dataset NAME --schema NAME
--name MODEL FILE.csv [--id-column id] [--use]`."""

from pathlib import Path

from django.core.management.base import BaseCommand

from labeling.management.imports import import_progress
from labeling.services.imports.predictions import predictions_import


class Command(BaseCommand):
    help = ("Import per-galaxy class probabilities of a label schema computed elsewhere, as the predictions of the "
            "model --name: a CSV with an id column (the galaxies' catalogue ids) and one column per class key, each "
            "row summing to 1. Every row is checked; bad input writes nothing. --use makes the dataset's queues "
            "read them instead of the probability model's.")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the CSV file")
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--schema", required=True, help="the label schema whose classes the columns are")
        parser.add_argument("--name", required=True, help="the outside model's name")
        parser.add_argument("--id-column", default="id", help="the id column (default id)")
        parser.add_argument("--use", action="store_true",
                            help="the uncertainty strategies of the dataset's queues read these probabilities")

    def handle(self, *args, path, dataset, schema, name, id_column, use, **options):
        with import_progress("row", self.stderr) as bars:
            report = predictions_import(dataset_name=dataset, schema_name=schema, name=name, path=path,
                                        id_column=id_column, use=use, progress=bars)
        self.stdout.write(self.style.SUCCESS(report.summary()))
