"""Cluster a dataset's features: `python manage.py cluster --dataset NAME --method {kmeans,spectral} --k K
[--feature-set ID] [--pca 50] [--seed 0]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, feature_set_of, run_here
from labeling.models import Clustering
from labeling.services.learning.jobs import clustering_start


class Command(BaseCommand):
    help = "Cluster a feature set (PCA, then k-means or landmark spectral clustering) and compare with the labels."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--method", required=True, choices=Clustering.Method.values)
        parser.add_argument("--k", type=int, required=True, help="number of clusters")
        parser.add_argument("--feature-set", type=int, help="the feature set's id (default: the latest)")
        parser.add_argument("--pca", type=int, default=50, help="PCA components before clustering")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        feature_set = feature_set_of(dataset_named(options["dataset"]), options["feature_set"])
        try:
            job = clustering_start(feature_set=feature_set, method=options["method"], k=options["k"],
                                   pca_components=options["pca"], seed=options["seed"], enqueue=False)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.cluster, job, stream=self.stderr)
        clustering = Clustering.objects.get(pk=job.result["clustering"])
        agreement = "; ".join(f"{m['name']} ARI {m['ari']:.3f}, NMI {m['nmi']:.3f}, purity {m['purity']:.3f}"
                              for m in clustering.metrics.values()) or "no labels to compare with"
        self.stdout.write(self.style.SUCCESS(
            f"clustering #{clustering.pk}: {clustering.get_method_display()} of {clustering.n_galaxies:,} galaxies "
            f"into {clustering.k} clusters (sizes {min(clustering.sizes)}-{max(clustering.sizes)}) in {seconds:.1f} s; "
            f"{agreement}"))
