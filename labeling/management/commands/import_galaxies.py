"""Import galaxy images: `python manage.py import_galaxies --dataset NAME --format FORMAT PATH [--labels CSV]
[--schema NAME] [--skip-bad]`."""

from pathlib import Path

from django.core.management.base import BaseCommand

from labeling.management.imports import import_progress
from labeling.services.imports.galaxies import FORMATS, galaxies_import


class Command(BaseCommand):
    help = ("Import galaxy images into a dataset (created when missing). Every image is decoded and checked "
            "before anything is written; bad input fails with a list of problems unless --skip-bad.")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the folder of images, or the HDF5 file")
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--format", dest="fmt", required=True, choices=sorted(FORMATS))
        parser.add_argument("--labels", type=Path, help="the CSV, when it is not PATH/labels.csv")
        parser.add_argument("--schema", help="the label schema (folder: default named after the dataset; "
                                             "galaxy10-h5: default galaxy10)")
        parser.add_argument("--skip-bad", action="store_true", help="import the good rows, list the bad ones")

    def handle(self, *args, path, dataset, fmt, labels, schema, skip_bad, **options):
        with import_progress("img", self.stderr) as bars:
            report = galaxies_import(dataset_name=dataset, fmt=fmt, path=path, labels_csv=labels,
                                     schema_name=schema, skip_bad=skip_bad, progress=bars)
        for line in report.skipped:
            self.stdout.write(f"skipped: {line}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
