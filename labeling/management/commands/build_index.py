"""Build the nearest-neighbour index of a dataset's features: `python manage.py build_index --dataset NAME
[--feature-set ID] [--kind auto|exact|hnsw|ivfpq]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, feature_set_of, run_here
from labeling.services.learning.jobs import index_start


class Command(BaseCommand):
    help = "Build the FAISS neighbour index of a feature set (default: the dataset's most recent one)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--feature-set", type=int, help="the feature set's id (default: the latest)")
        parser.add_argument("--kind", default="auto", choices=["auto", "exact", "hnsw", "ivfpq"],
                            help="exact search, an approximate HNSW graph, compressed IVF-PQ codes, or auto (exact "
                                 "for small sets, ivfpq from GALAXY_INDEX_IVFPQ_MIN vectors)")

    def handle(self, *args, **options):
        feature_set = feature_set_of(dataset_named(options["dataset"]), options["feature_set"])
        try:
            job = index_start(feature_set=feature_set, kind=options["kind"], enqueue=False)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.build_index, job, stream=self.stderr)
        feature_set.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"feature set #{feature_set.pk} ({feature_set}): {feature_set.index_kind} index of "
            f"{feature_set.index_count:,} vectors, recall@20 {feature_set.index_recall:.3f}, built in {seconds:.1f} s"))
