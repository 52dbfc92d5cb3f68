"""Make a 2-D map of a dataset's features: `python manage.py embed_2d --dataset NAME --method {pca,tsne,umap,lda}
[--schema NAME] [--feature-set ID] [--seed 0]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, feature_set_of, run_here
from labeling.models import Embedding, LabelSchema
from labeling.services.learning.jobs import embedding_start


class Command(BaseCommand):
    help = "Project a feature set to two dimensions for the map page (LDA separates a schema's expert labels)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--method", required=True, choices=Embedding.Method.values)
        parser.add_argument("--schema", help="the label schema LDA separates")
        parser.add_argument("--feature-set", type=int, help="the feature set's id (default: the latest)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        feature_set = feature_set_of(dataset_named(options["dataset"]), options["feature_set"])
        schema = None
        if options["schema"]:
            schema = LabelSchema.objects.filter(name=options["schema"]).first()
            if schema is None:
                raise CommandError(f"no label schema {options['schema']!r}")
        try:
            job = embedding_start(feature_set=feature_set, method=options["method"], schema=schema,
                                  seed=options["seed"], enqueue=False)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.embed_2d, job, stream=self.stderr)
        self.stdout.write(self.style.SUCCESS(
            f"map #{job.result['embedding']}: {options['method']} of {job.result['points']:,} galaxies of "
            f"{feature_set} in {seconds:.1f} s"))
