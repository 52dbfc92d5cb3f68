"""Import an outside model's class probabilities: `python manage.py import_predictions --dataset NAME --schema NAME
--name MODEL FILE.csv [--id-column id] [--use]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.progress import PhaseBars
from labeling.services.imports.predictions import predictions_import
from labeling.services.imports.reports import ImportFailed


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
        bars = PhaseBars(unit="row")
        try:
            report = predictions_import(dataset_name=dataset, schema_name=schema, name=name, path=path,
                                        id_column=id_column, use=use, progress=bars)
        except ImportFailed as exc:
            lines = [*exc.problems, f"{len(exc.problems)} problem(s), nothing was imported"]
            raise CommandError("\n".join(lines)) from None
        finally:
            bars.close()
        self.stdout.write(self.style.SUCCESS(report.summary()))
