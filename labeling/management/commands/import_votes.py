"""Import published volunteer votes: `python manage.py import_votes --dataset NAME
--format {gz2-table,gz2-kaggle,gz-decals} PATH [--skip-bad]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.progress import PhaseBars
from labeling.services.imports.reports import ImportFailed
from labeling.services.imports.votes import FORMATS, votes_import


class Command(BaseCommand):
    help = ("Import a volunteer vote catalogue into a dataset (created when missing): a published GZ2 table, "
            "Kaggle's Galaxy Zoo solutions, or a GZ DECaLS catalogue (.csv or .csv.gz). Every row is checked before "
            "anything is written; bad input fails with a list of problems unless --skip-bad.")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the CSV file (.csv or .csv.gz)")
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--format", dest="fmt", required=True, choices=list(FORMATS))
        parser.add_argument("--skip-bad", action="store_true", help="import the good rows, list the bad ones")

    def handle(self, *args, path, dataset, fmt, skip_bad, **options):
        try:
            with PhaseBars(unit="row", stream=self.stderr) as bars:
                report = votes_import(dataset_name=dataset, fmt=fmt, path=path, skip_bad=skip_bad, progress=bars)
        except ImportFailed as exc:
            lines = [*exc.problems, f"{len(exc.problems)} problem(s), nothing was imported"]
            raise CommandError("\n".join(lines)) from None
        for line in report.skipped:
            self.stdout.write(f"skipped: {line}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
