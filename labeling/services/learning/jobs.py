"""Starting the machine-learning jobs: the arguments each job records, checked before anything is queued, so a
bad request fails at once in the browser or the terminal rather than later in the worker."""

from labeling.models import Clustering, Dataset, Embedding, FeatureSet, Job, LabelSchema, ModelVersion
from labeling.services.jobs.lifecycle import job_create


def extraction_start(*, dataset: Dataset, model_version: ModelVersion, rotation_invariant: bool = False,
                     user=None, enqueue: bool = True, **options) -> Job:
    """Queue feature extraction; ``options`` (batch_size, num_workers, threads) go to the job's arguments."""
    if model_version.is_imported:
        raise ValueError(f"{model_version.name!r} is an outside model known by its imported features: it has no "
                         "backbone to extract with (import_features adds its vectors)")
    if not dataset.galaxies.exclude(image="").exists():
        raise ValueError(f"dataset {dataset.name!r} has no galaxy with an image: nothing to extract")
    arguments = {"model_version": model_version.pk, "rotation_invariant": rotation_invariant, **options}
    return job_create(kind=Job.Kind.EXTRACT_FEATURES, arguments=arguments, dataset=dataset, user=user,
                      enqueue=enqueue)


def index_start(*, feature_set: FeatureSet, kind: str = "auto", user=None, enqueue: bool = True,
                chain: dict | None = None) -> Job:
    """Queue an index build; ``chain`` (labeling/services/learning/activation.py) says what follows it."""
    if feature_set.count == 0:
        raise ValueError(f"feature set {feature_set} has no vectors yet: extract features first")
    arguments = {"feature_set": feature_set.pk, "kind": kind, **({"chain": chain} if chain else {})}
    return job_create(kind=Job.Kind.BUILD_INDEX, arguments=arguments, dataset=feature_set.dataset, user=user,
                      enqueue=enqueue)


def clustering_start(*, feature_set: FeatureSet, method: str, k: int, pca_components: int = 50, seed: int = 0,
                     user=None, enqueue: bool = True, chain: dict | None = None) -> Job:
    if method not in Clustering.Method.values:
        raise ValueError(f"unknown clustering method {method!r}; one of {', '.join(Clustering.Method.values)}")
    if not 2 <= k <= feature_set.count:
        raise ValueError(f"k={k} clusters for {feature_set.count} galaxies with features: k must lie between 2 and "
                         "the number of galaxies")
    arguments = {"feature_set": feature_set.pk, "method": method, "k": k, "pca_components": pca_components,
                 "seed": seed, **({"chain": chain} if chain else {})}
    return job_create(kind=Job.Kind.CLUSTER, arguments=arguments, dataset=feature_set.dataset, user=user,
                      enqueue=enqueue)


def embedding_start(*, feature_set: FeatureSet, method: str, schema: LabelSchema | None = None, seed: int = 0,
                    user=None, enqueue: bool = True) -> Job:
    if method not in Embedding.Method.values:
        raise ValueError(f"unknown map method {method!r}; one of {', '.join(Embedding.Method.values)}")
    if method == Embedding.Method.LDA and schema is None:
        raise ValueError("an LDA map separates the classes of a label schema: choose one")
    if feature_set.count == 0:
        raise ValueError(f"feature set {feature_set} has no vectors yet: extract features first")
    arguments = {"feature_set": feature_set.pk, "method": method, "schema": schema.pk if schema else None,
                 "seed": seed}
    return job_create(kind=Job.Kind.EMBED_2D, arguments=arguments, dataset=feature_set.dataset, user=user,
                      enqueue=enqueue)
