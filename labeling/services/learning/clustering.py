"""Clustering a feature set (k-means or scalable spectral on PCA-reduced vectors) and 2-D maps of it, with the
agreement of the clusters with every label set of the dataset."""

import numpy as np
from django.db import transaction

from labeling.models import ClusterAssignment, Clustering, Embedding, EmbeddingPoint, FeatureSet, LabelSchema
from labeling.selectors.labels import EXPERT, galaxy_labels, label_sets
from labeling.services.jobs.lifecycle import JobReporter

WRITE_BATCH = 5000


def _read_vectors(feature_set: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    from mlcore.features.store import FeatureStore

    store = FeatureStore.open(feature_set.store_dir)
    if len(store) == 0:
        raise ValueError(f"feature set {feature_set} has no vectors yet: extract features first")
    return np.array(store.keys()), np.asarray(store.vectors(), dtype=np.float32)


def clustering_metrics(*, feature_set: FeatureSet, keys: np.ndarray, clusters: np.ndarray) -> dict:
    """label_metrics of the clusters against every label set of the dataset, keyed "source:schema"."""
    from mlcore.clusters.metrics import label_metrics

    metrics = {}
    for label_set in label_sets(dataset=feature_set.dataset):
        labels = galaxy_labels(dataset=feature_set.dataset, schema=label_set.schema, source=label_set.source)
        truth = [labels.get(key) for key in keys.tolist()]
        if sum(label is not None for label in truth) < 2:
            continue
        metrics[label_set.key] = {"name": label_set.name, **label_metrics(clusters, truth)}
    return metrics


def clustering_run(*, feature_set: FeatureSet, method: str, k: int, reporter: JobReporter, pca_components: int = 50,
                   seed: int = 0, user=None) -> Clustering:
    """Cluster every vector of the feature set into ``k`` clusters and store the assignments and metrics.

    Raises:
        ValueError: unknown method, no vectors, or k outside 2..number of galaxies.
    """
    from mlcore.clusters.kmeans import kmeans, reduce_pca
    from mlcore.clusters.spectral import ScalableSpectral

    if method not in Clustering.Method.values:
        raise ValueError(f"unknown clustering method {method!r}; one of {', '.join(Clustering.Method.values)}")
    keys, vectors = _read_vectors(feature_set)
    if not 2 <= k <= len(keys):
        raise ValueError(f"k={k} clusters for {len(keys)} galaxies: k must lie between 2 and the number of galaxies")
    reporter.progress(0, 4, f"PCA of {len(keys):,} vectors")
    reduced, explained = reduce_pca(vectors, pca_components, seed=seed)
    reporter.check_cancelled()
    reporter.progress(1, 4, f"{method} into {k} clusters")
    if method == Clustering.Method.KMEANS:
        result = kmeans(reduced, k, seed=seed)
        clusters, centroids = result.labels, result.centroids
    else:
        clusters = ScalableSpectral(k, seed=seed).fit(reduced).labels_
        # Spectral clusters have no centre of their own; the mean of the members ranks them for the gallery.
        centroids = np.stack([reduced[clusters == c].mean(axis=0) if np.any(clusters == c)
                              else np.zeros(reduced.shape[1], np.float32) for c in range(k)])
    distances = np.linalg.norm(reduced - centroids[clusters], axis=1)
    reporter.check_cancelled()
    reporter.progress(2, 4, "comparing with the labels")
    metrics = clustering_metrics(feature_set=feature_set, keys=keys, clusters=clusters)
    reporter.progress(3, 4, f"saving {len(keys):,} assignments")
    parameters = {"pca_components": int(reduced.shape[1]), "explained_variance": float(explained.sum()),
                  "seed": seed}
    with transaction.atomic():
        clustering = Clustering.objects.create(
            feature_set=feature_set, method=method, k=k, parameters=parameters, metrics=metrics,
            sizes=np.bincount(clusters, minlength=k).tolist(), created_by=user)
        ClusterAssignment.objects.bulk_create(
            (ClusterAssignment(clustering=clustering, galaxy_id=int(key), cluster=int(cluster), distance=float(d))
             for key, cluster, d in zip(keys, clusters, distances, strict=True)), batch_size=WRITE_BATCH)
    reporter.progress(4, 4, f"{k} clusters")
    return clustering


def embedding_run(*, feature_set: FeatureSet, method: str, reporter: JobReporter, schema: LabelSchema | None = None,
                  pca_components: int = 50, seed: int = 0, user=None) -> Embedding:
    """A 2-D map of every vector of the feature set (t-SNE and UMAP run on the PCA-reduced vectors).

    Raises:
        ValueError: unknown method, no vectors, or LDA without a schema that labels at least two classes.
    """
    from mlcore.clusters.kmeans import reduce_pca
    from mlcore.clusters.maps import embed_2d

    if method not in Embedding.Method.values:
        raise ValueError(f"unknown map method {method!r}; one of {', '.join(Embedding.Method.values)}")
    keys, vectors = _read_vectors(feature_set)
    labels = None
    if method == Embedding.Method.LDA:
        if schema is None:
            raise ValueError("an LDA map separates the classes of a label schema: choose one")
        known = galaxy_labels(dataset=feature_set.dataset, schema=schema, source=EXPERT)
        labels = np.array([known.get(key) for key in keys.tolist()], dtype=object)
    reporter.progress(0, 3, f"PCA of {len(keys):,} vectors")
    reduced, _ = reduce_pca(vectors, pca_components, seed=seed)
    reporter.check_cancelled()
    reporter.progress(1, 3, f"{method} map of {len(keys):,} galaxies")
    points = embed_2d(reduced, method, labels=labels, seed=seed)
    reporter.progress(2, 3, "saving the map")
    with transaction.atomic():
        embedding = Embedding.objects.create(feature_set=feature_set, method=method, schema=schema, created_by=user,
                                             parameters={"pca_components": int(reduced.shape[1]), "seed": seed})
        EmbeddingPoint.objects.bulk_create(
            (EmbeddingPoint(embedding=embedding, galaxy_id=int(key), x=float(x), y=float(y))
             for key, (x, y) in zip(keys, points, strict=True)), batch_size=WRITE_BATCH)
    reporter.progress(3, 3, "map ready")
    return embedding
