"""Reads of clusterings and 2-D maps, shaped for the cluster gallery and the map page."""

from dataclasses import dataclass, field

from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from labeling.models import (
    ClusterAssignment,
    Clustering,
    ConsensusRule,
    Dataset,
    Embedding,
    EmbeddingPoint,
    FeatureSet,
    Galaxy,
)
from labeling.selectors.labels import EXPERT, galaxy_labels, label_sets
from labeling.selectors.similarity import opened_store

TONES = 10  # colours of the composition bars (site.css .tone-0 ... .tone-9)


def clustering_list(*, dataset: Dataset | None = None) -> QuerySet[Clustering]:
    clusterings = Clustering.objects.select_related("feature_set__dataset", "feature_set__model_version")
    return clusterings.filter(feature_set__dataset=dataset) if dataset is not None else clusterings


@dataclass
class ClusterCard:
    number: int
    size: int
    samples: list[Galaxy] = field(default_factory=list)  # the members nearest the cluster's centre
    # Per label set: (its name, members it labels, [(class name, galaxies, colour tone)] most frequent first); a
    # class keeps its tone (its place in the schema) in every cluster, so the bars compare at a glance.
    compositions: list[tuple[str, int, list[tuple[str, int, int]]]] = field(default_factory=list)


def _composition(clustering: Clustering, label_set) -> dict[int, dict[str, int]]:
    """Galaxies per (cluster, class name) under one label set: one query."""
    members = ClusterAssignment.objects.filter(clustering=clustering)
    if label_set.source == EXPERT:
        rows = members.filter(galaxy__expert_labels__schema=label_set.schema,
                              galaxy__expert_labels__superseded_at__isnull=True).values(
            "cluster", name=F("galaxy__expert_labels__label_class__name"))
    else:
        uncertain = ConsensusRule.objects.filter(schema=label_set.schema).values("uncertain_class_key")
        rows = members.filter(galaxy__consensus_labels__schema=label_set.schema).exclude(
            galaxy__consensus_labels__label_class__key__in=uncertain).values(
            "cluster", name=F("galaxy__consensus_labels__label_class__name"))
    table: dict[int, dict[str, int]] = {}
    for row in rows.annotate(n=Count("galaxy", distinct=True)).order_by():
        table.setdefault(row["cluster"], {})[row["name"]] = row["n"]
    return table


def clustering_gallery(*, clustering: Clustering, samples: int = 8) -> list[ClusterCard]:
    """One card per cluster: its size, the ``samples`` members nearest its centre, and its make-up under every
    label set of the dataset. 2 + 1 per label set queries, however many clusters."""
    cards = [ClusterCard(number=n, size=size) for n, size in enumerate(clustering.sizes)]
    nearest = (ClusterAssignment.objects.filter(clustering=clustering)
               .annotate(rank=Window(RowNumber(), partition_by=F("cluster"), order_by=[F("distance").asc(),
                                                                                         F("galaxy_id").asc()]))
               .filter(rank__lte=samples).select_related("galaxy__dataset").order_by("cluster", "rank"))
    for assignment in nearest:
        cards[assignment.cluster].samples.append(assignment.galaxy)
    for label_set in label_sets(dataset=clustering.feature_set.dataset):
        tones = {name: n % TONES for n, name in enumerate(label_set.schema.classes.values_list("name", flat=True))}
        for number, counts in _composition(clustering, label_set).items():
            if number < len(cards):
                classes = [(name, n, tones.get(name, 0)) for name, n in sorted(counts.items(),
                                                                                 key=lambda item: (-item[1], item[0]))]
                cards[number].compositions.append((label_set.name, sum(counts.values()), classes))
    return cards


def embedding_list(*, dataset: Dataset | None = None) -> QuerySet[Embedding]:
    """Maps with their number of points (``n_points``), counted in the one query."""
    embeddings = Embedding.objects.select_related("feature_set__dataset", "feature_set__model_version", "schema") \
        .annotate(n_points=Count("points"))
    return embeddings.filter(feature_set__dataset=dataset) if dataset is not None else embeddings


def embedding_points(*, embedding: Embedding) -> dict:
    """Everything the map draws, as parallel lists (compact JSON for 100k points): galaxy ids, external ids,
    x, y, and the colourings the page offers: each clustering of the same feature set and each label set."""
    points = list(EmbeddingPoint.objects.filter(embedding=embedding).order_by("galaxy_id")
                  .values_list("galaxy_id", "galaxy__external_id", "x", "y"))
    ids = [p[0] for p in points]
    colourings = []
    for clustering in Clustering.objects.filter(feature_set=embedding.feature_set).order_by("-created_at")[:10]:
        assigned = dict(ClusterAssignment.objects.filter(clustering=clustering).values_list("galaxy_id", "cluster"))
        name = f"{clustering.get_method_display()}, k={clustering.k} (clustering #{clustering.pk})"
        colourings.append({"key": f"clustering-{clustering.pk}", "name": name,
                           "classes": [f"cluster {n}" for n in range(clustering.k)],
                           "values": [assigned.get(i, -1) for i in ids]})
    dataset = embedding.feature_set.dataset
    for label_set in label_sets(dataset=dataset):
        labels = galaxy_labels(dataset=dataset, schema=label_set.schema, source=label_set.source)
        names = dict(label_set.schema.classes.values_list("key", "name"))  # in the schema's class order
        rank = {key: n for n, key in enumerate(names)}
        classes = sorted({labels[i] for i in ids if i in labels}, key=lambda key: rank.get(key, len(rank)))
        position = {key: n for n, key in enumerate(classes)}
        colourings.append({"key": label_set.key, "name": label_set.name,
                           "classes": [names.get(key, key) for key in classes],
                           "values": [position.get(labels.get(i), -1) for i in ids]})
    return {"ids": ids, "external_ids": [p[1] for p in points], "x": [p[2] for p in points],
            "y": [p[3] for p in points], "colourings": colourings}


def feature_sets_overview() -> QuerySet[FeatureSet]:
    """Every feature set with its model version and dataset, and its numbers of clusterings and maps."""
    return FeatureSet.objects.select_related("model_version", "dataset").annotate(
        n_clusterings=Count("clusterings", distinct=True), n_maps=Count("embeddings", distinct=True),
    ).order_by("dataset__name", "-updated_at")



def clustering_centroids(*, clustering: Clustering) -> list[list[float] | None]:
    """The mean feature vector of each cluster's members, in the feature set's own space (its dimension), by
    cluster number; None for an empty cluster. Read from the feature store batch by batch: memory stays at one
    batch and the k sums, however large the dataset.

    Raises:
        FileNotFoundError: when the feature store is gone from disk.
    """
    import numpy as np

    from mlcore.clusters.kmeans import cluster_sums

    members = dict(ClusterAssignment.objects.filter(clustering=clustering).values_list("galaxy_id", "cluster")
                   .iterator(chunk_size=10_000))
    store = opened_store(clustering.feature_set)
    sums = np.zeros((clustering.k, store.dim), np.float64)
    counts = np.zeros(clustering.k, np.int64)
    for keys, vectors in store.iter_batches():
        labels = np.fromiter((members.get(int(key), -1) for key in keys), np.int64, len(keys))
        kept = labels >= 0  # galaxies extracted after the clustering ran have no cluster
        if kept.any():
            batch_sums, batch_counts = cluster_sums(vectors[kept], labels[kept], clustering.k)
            sums += batch_sums
            counts += batch_counts
    return [(sums[c] / counts[c]).astype(np.float32).tolist() if counts[c] else None for c in range(clustering.k)]
