"""Export a dataset: `python manage.py export --dataset NAME --what {labels,votes,clusters,predictions}
--format {csv,jsonl} [--layout {gz2-table,gz2-kaggle,gz-decals,zoobot}] [--out FILE]` (standard output without
--out), or a Zooniverse subject set: `--what subjects --format zooniverse --out DIR|FILE.zip` with a choice of
galaxies (--least-sure N, --clustering ID --cluster K, or the galaxy list's filters).

labels: every current expert label, consensus label and admin resolution, and each galaxy's final label, with
provenance. votes: the volunteers' vote summaries in the Galaxy Zoo layout they came in, one row per galaxy, a file
import_votes reads back (--layout when the dataset holds votes in more than one); --layout zoobot: the catalogue
Zoobot fine-tunes on (id_str, file_loc, vote counts), from the volunteers' votes or a schema's expert labels."""

import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.management.jobs import dataset_named
from labeling.services.exports import subject_choice
from labeling.services.exports.streams import FORMATS, VOTE_LAYOUTS, WHAT, export_lines, export_rows
from labeling.services.exports.zooniverse import subject_set_write

SUBJECTS, ZOONIVERSE = "subjects", "zooniverse"
FILTERS = ("labelled", "expert_class", "consensus_class", "search")
SUBJECT_OPTIONS = ("least_sure", "clustering", "cluster", "limit", *FILTERS)
ZOOBOT_OPTIONS = ("layout", "tree", "zoobot_suffix", "copy_images")


class Command(BaseCommand):
    help = ("Write a dataset's labels (expert, consensus, resolutions and each galaxy's final label, with "
            "provenance), volunteer votes (in the Galaxy Zoo layout they came in, ready for import_votes, or as a "
            "Zoobot catalogue), cluster assignments or predictions as CSV or JSON Lines; or a Zooniverse subject set "
            "(images and manifest) of the galaxies the model is least sure of, a cluster, or a filter.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--what", required=True, choices=(*WHAT, SUBJECTS))
        parser.add_argument("--format", required=True, choices=(*FORMATS, ZOONIVERSE),
                            help="zooniverse: for --what subjects, a folder (or .zip) the Zooniverse uploader takes")
        parser.add_argument("--layout", choices=VOTE_LAYOUTS,
                            help="--what votes: the Galaxy Zoo layout, when the dataset holds votes in more than "
                                 "one; zoobot: Zoobot's fine-tuning catalogue")
        parser.add_argument("--out", type=Path, help="the file to write (default: standard output); for subjects "
                                                     "a new or empty folder, or a file name ending .zip")
        zoobot = parser.add_argument_group("--layout zoobot")
        zoobot.add_argument("--tree", help="gz_decals or gz2, when the dataset has vote counts of both")
        zoobot.add_argument("--zoobot-suffix", default="",
                            help="appended to each question after a hyphen, e.g. dr5 or gz2 to match Zoobot's "
                                 "shipped schemas (smooth-or-featured-dr5_smooth)")
        zoobot.add_argument("--copy-images", type=Path, metavar="DIR",
                            help="copy the images into DIR; file_loc then points to the copies")
        subjects = parser.add_argument_group("--what subjects (and --schema for --layout zoobot)")
        subjects.add_argument("--schema", help="a label schema: zoobot: export its expert labels; subjects: the "
                                               "schema of --least-sure and of the label filters")
        subjects.add_argument("--least-sure", type=int, metavar="N",
                              help="the N galaxies the latest probability model is least sure of")
        subjects.add_argument("--clustering", type=int, metavar="ID", help="with --cluster: one cluster's galaxies")
        subjects.add_argument("--cluster", type=int, metavar="K")
        subjects.add_argument("--labelled", help="filter: expert, consensus or none (within --schema)")
        subjects.add_argument("--expert-class", help="filter: a class key an expert gave (within --schema)")
        subjects.add_argument("--consensus-class", help="filter: the volunteers' consensus class (within --schema)")
        subjects.add_argument("--search", default="", help="filter: part of the galaxy's external id")
        subjects.add_argument("--limit", type=int, metavar="N", help="cluster or filter: a random N of them")
        subjects.add_argument("--seed", type=int, default=0, help="of --limit's sample and the file names' shuffle")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        if (options["what"] == SUBJECTS) != (options["format"] == ZOONIVERSE):
            raise CommandError("--what subjects goes with --format zooniverse, and only with it")
        subjects = options["what"] == SUBJECTS
        stray = [name for name in (ZOOBOT_OPTIONS if subjects else SUBJECT_OPTIONS) if options[name] not in (None, "")]
        if stray:
            given = ", ".join("--" + name.replace("_", "-") for name in stray)
            raise CommandError(f"{given}: not an option of --what {options['what']}")
        try:
            if subjects:
                return self._subjects(dataset, options)
            rows, columns = export_rows(
                dataset=dataset, what=options["what"], layout=options["layout"], tree=options["tree"],
                suffix=options["zoobot_suffix"], copy_images=options["copy_images"], schema=options["schema"])
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
        left_out = getattr(rows, "left_out", 0)
        missing = f" ({left_out:,} galaxies without an image file left out)" if left_out else ""
        self.stderr.write(f"{rows_written:,} {options['what']} rows of {dataset.name!r} written to {out}{missing}")

    def _subjects(self, dataset, options) -> None:
        if options["out"] is None:
            raise CommandError("--what subjects needs --out: a new or empty folder, or a file name ending .zip")
        filters = {name: options[name] for name in FILTERS if options[name]}
        cluster = options["clustering"] is not None or options["cluster"] is not None
        if options["least_sure"] is not None and (cluster or filters or options["limit"] is not None):
            raise CommandError("--least-sure takes no --clustering, --cluster, filter or --limit: it chooses the N "
                               "least sure of the galaxies not labelled yet")
        if cluster and filters:
            raise CommandError(f"--clustering and --cluster take no filter ({', '.join(filters)}): choose one")
        if options["least_sure"] is not None:
            chosen = subject_choice.least_sure(dataset=dataset, n=options["least_sure"], schema=options["schema"])
        elif cluster:
            if options["clustering"] is None or options["cluster"] is None:
                raise CommandError("--clustering ID and --cluster K go together: a cluster is a number within one "
                                   "clustering")
            chosen = subject_choice.in_cluster(dataset=dataset, clustering=options["clustering"],
                                               cluster=options["cluster"], limit=options["limit"],
                                               seed=options["seed"])
        else:
            chosen = subject_choice.filtered(dataset=dataset, schema=options["schema"], limit=options["limit"],
                                             seed=options["seed"], **filters)
        summary = subject_set_write(dataset=dataset, chosen=chosen, out=options["out"], seed=options["seed"])
        if summary["too_large"]:
            self.stderr.write(f"warning: {len(summary['too_large'])} images are over Zooniverse's 1 MB limit "
                              f"(e.g. {summary['too_large'][0]}); shrink them before uploading")
        converted = f", {summary['converted']} converted to PNG" if summary["converted"] else ""
        self.stderr.write(f"{summary['subjects']:,} subjects of {dataset.name!r} written to {summary['out']} "
                          f"(manifest.csv and images{converted})")
