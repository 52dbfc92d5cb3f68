"""Export a dataset: `python manage.py export --dataset NAME --what {labels,votes,clusters,predictions}
--format {csv,jsonl} [--layout {gz2-table,gz2-kaggle,gz-decals}] [--out FILE]` (standard output without --out).

labels: every current expert label, consensus label and admin resolution, and each galaxy's final label, with
provenance. votes: the volunteers' vote summaries in the Galaxy Zoo layout they came in, one row per galaxy, a file
import_votes reads back (--layout when the dataset holds votes in more than one)."""

import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named
from labeling.services.exports.streams import FORMATS, VOTE_LAYOUTS, WHAT, export_lines, export_rows


class Command(BaseCommand):
    help = ("Write a dataset's labels (expert, consensus, resolutions and each galaxy's final label, with "
            "provenance), volunteer votes (in the Galaxy Zoo layout they came in, ready for import_votes), cluster "
            "assignments or predictions as CSV or JSON Lines.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--what", required=True, choices=WHAT)
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--layout", choices=VOTE_LAYOUTS,
                            help="--what votes: the Galaxy Zoo layout, when the dataset holds votes in more than one")
        parser.add_argument("--out", type=Path, help="the file to write (default: standard output)")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        try:
            rows, columns = export_rows(dataset=dataset, what=options["what"], layout=options["layout"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        lines = export_lines(rows=rows, columns=columns, fmt=options["format"])
        out: Path | None = options["out"]
        if out is None:
            for line in lines:
                sys.stdout.write(line)
            return
        if out.is_dir():
            raise CommandError(f"--out {out}: is a folder; give a file name")
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed at the end: a failed export never leaves half a file.
        handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        written = 0
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as target:
                for line in lines:
                    target.write(line)
                    written += line.count("\n")
            os.replace(temporary, out)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        rows_written = written - 1 if options["format"] == "csv" else written
        self.stderr.write(f"{rows_written:,} {options['what']} rows of {dataset.name!r} written to {out}")
