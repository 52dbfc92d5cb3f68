"""Import published volunteer votes: `python manage.py import_votes --dataset NAME
--format {gz2-table,gz2-kaggle,gz-decals} PATH [--skip-bad]`; or a Panoptes classification export:
`--format panoptes --mapping {gz_decals,gz2,FILE} [--workflow-id N] [--workflow-version V ...]
[--subject-key K ...]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.imports import import_progress
from labeling.services.imports.panoptes import panoptes_import
from labeling.services.imports.votes import FORMATS, votes_import

PANOPTES = "panoptes"


class Command(BaseCommand):
    help = ("Import a volunteer vote catalogue into a dataset (created when missing): a published GZ2 table, "
            "Kaggle's Galaxy Zoo solutions, or a GZ DECaLS catalogue (.csv or .csv.gz); or a Panoptes classification "
            "export as volunteer classifications of the dataset's galaxies. Every row is checked before anything is "
            "written; bad input fails with a list of problems unless --skip-bad.")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the CSV file (.csv or .csv.gz)")
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--format", dest="fmt", required=True, choices=[*FORMATS, PANOPTES])
        parser.add_argument("--skip-bad", action="store_true", help="import the good rows, list the bad ones")
        panoptes = parser.add_argument_group("panoptes", "a Zooniverse classification export, matched to the "
                                                         "dataset's galaxies (docs/formats.md)")
        panoptes.add_argument("--mapping", help="gz_decals, gz2, or a mapping file: which task and answer is which "
                                                "question and answer of a tree")
        panoptes.add_argument("--workflow-id", type=int, help="the workflow to import (default: the mapping's)")
        panoptes.add_argument("--workflow-version", action="append", default=[], dest="versions",
                              help="66 for every 66.x, or 66.425; repeat for more (default: the mapping's)")
        panoptes.add_argument("--subject-key", action="append", default=[], dest="subject_keys",
                              help="a subject_data key holding the galaxy's id (\"subject_id\": the subject's own); "
                                   "repeat for more (default: the mapping's, else external_id, id_str, iauname...)")

    def handle(self, *args, path, dataset, fmt, skip_bad, mapping, workflow_id, versions, subject_keys, **options):
        given = [name for name, value in (("--mapping", mapping), ("--workflow-id", workflow_id),
                                          ("--workflow-version", versions), ("--subject-key", subject_keys)) if value]
        if fmt != PANOPTES and given:
            raise CommandError(f"{', '.join(given)}: only for --format {PANOPTES}")
        if fmt == PANOPTES and not mapping:
            raise CommandError(f"--format {PANOPTES} needs --mapping: gz_decals, gz2 or a mapping file")
        with import_progress("row", self.stderr) as bars:
            if fmt == PANOPTES:
                report = panoptes_import(dataset_name=dataset, path=path, mapping=mapping, workflow_id=workflow_id,
                                         workflow_versions=tuple(versions), subject_keys=tuple(subject_keys),
                                         skip_bad=skip_bad, progress=bars)
            else:
                report = votes_import(dataset_name=dataset, fmt=fmt, path=path, skip_bad=skip_bad, progress=bars)
        for line in report.skipped:
            self.stdout.write(f"skipped: {line}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
