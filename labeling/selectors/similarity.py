"""Nearest neighbours of a galaxy by feature similarity: the one query the pages and the REST API share.

The neighbour index of a feature set is a file (mlcore.neighbours.index) loaded once per process and kept while the file
is unchanged; the galaxy's own vector comes from the memory-mapped feature store, so a query touches one row of it.
The scale that makes cosines readable (mlcore.neighbours.scale) is measured on random pairs of the same store, once
per process and again when the index is rebuilt.
"""

import threading
from dataclasses import dataclass

from django.db.models import F, QuerySet

from labeling.models import Dataset, FeatureSet, Galaxy
from labeling.selectors.catalogue import with_current_labels

# Index files and opened stores, per process, while their files are unchanged: path -> (mtime, object). Opening a
# store of 1M galaxies sorts its keys (0.1 s), loading an index reads its file: neither belongs in every request.
_LOADED: dict[str, tuple[float, object]] = {}
_LOADED_MAX = 16  # eight feature sets: index or store, and scale
_LOCK = threading.Lock()


@dataclass
class Neighbour:
    galaxy: Galaxy
    score: float  # cosine similarity of the two galaxies' feature vectors, 1 = identical
    rank: int = 0  # 1 for the nearest
    # Read against random pairs of the feature set (mlcore.neighbours.scale): 1 = identical features, 0 = as far
    # apart as a typical pair; and the share of random pairs farther apart. None where no scale could be measured.
    likeness: float | None = None
    closer_than: float | None = None

    @property
    def likeness_percent(self) -> int | None:
        return None if self.likeness is None else round(100 * self.likeness)

    @property
    def closer_than_percent(self) -> float | None:
        return None if self.closer_than is None else 100 * self.closer_than

    @property
    def percent(self) -> float:
        return 100.0 * self.score


def served_feature_set(sets: QuerySet[FeatureSet]) -> FeatureSet | None:
    """Of ``sets`` (feature sets of one dataset), the one the dataset's active model version serves: of the kind the
    version asks for (plain or rotation-invariant, ``ModelVersion.rotation_invariant_features``), else its other
    one; None when the active version has none among them. One query.

    The active version is read in the same query, not from a ``Dataset`` row: a page may hold the row from before an
    activation that has just finished."""
    candidates = list(sets.filter(model_version=F("dataset__active_version")).select_related("model_version"))
    if not candidates:
        return None
    wanted = candidates[0].model_version.rotation_invariant_features
    return min(candidates, key=lambda s: (s.rotation_invariant != wanted, s.rotation_invariant))


def feature_set_for(*, dataset: Dataset, feature_set_id: int | None = None) -> FeatureSet | None:
    """The feature set whose neighbours a dataset's pages show: the one asked for, else the dataset's active model
    version's, else the most recently indexed one; None when no feature set of the dataset has an index."""
    indexed = FeatureSet.objects.filter(dataset=dataset, index_built_at__isnull=False).select_related(
        "model_version", "dataset")
    if feature_set_id is not None:
        chosen = indexed.filter(pk=feature_set_id).first()
    else:
        chosen = served_feature_set(indexed) or indexed.order_by("-index_built_at", "-pk").first()
    # An index file removed by hand (a cleaned-up disk) means no neighbours, not a failing page.
    return chosen if chosen is not None and chosen.index_file.exists() else None


def indexed_feature_sets(*, dataset: Dataset) -> list[FeatureSet]:
    """The dataset's feature sets that have a neighbour index, for a "similar by" chooser."""
    return list(FeatureSet.objects.filter(dataset=dataset, index_built_at__isnull=False)
                .select_related("model_version").order_by("-index_built_at", "-pk"))


def _cached(path, changes_with, load):
    """``load(path)`` once per process and again whenever the file ``changes_with`` changes."""
    mtime = changes_with.stat().st_mtime_ns
    key = str(path)
    with _LOCK:
        cached = _LOADED.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    loaded = load(path)
    with _LOCK:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = (mtime, loaded)
    return loaded


def loaded_index(feature_set: FeatureSet):
    """The feature set's NeighbourIndex, loaded from its file once per process and again when the file changes."""
    from mlcore.neighbours.index import NeighbourIndex

    return _cached(feature_set.index_file, feature_set.index_file, NeighbourIndex.load)


def opened_store(feature_set: FeatureSet):
    """The feature set's FeatureStore, opened once per process and again when an append commits new rows (its
    meta.json is replaced on every commit)."""
    from mlcore.features.store import FeatureStore

    return _cached(feature_set.store_dir, feature_set.store_dir / "meta.json", FeatureStore.open)


def similarity_scale(feature_set: FeatureSet):
    """The feature set's SimilarityScale, measured on up to 1000 of its stored vectors (every pair among them) once
    per process and again when its index is rebuilt; None when the store holds fewer than two vectors."""
    from mlcore.neighbours.scale import SimilarityScale

    def measure(_):
        vectors = opened_store(feature_set).vectors()
        return SimilarityScale().fit(vectors) if len(vectors) >= 2 else None

    return _cached(f"{feature_set.index_file}#scale", feature_set.index_file, measure)


def neighbour_pairs(*, galaxy: Galaxy, feature_set: FeatureSet, k: int = 8) -> list[tuple[int, float]]:
    """(galaxy id, cosine similarity) of the ``k`` nearest neighbours from the index, most similar first; no query.

    Raises:
        ValueError: for k < 1.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    store = opened_store(feature_set)
    if not store.has([galaxy.pk])[0]:
        return []
    # An ivfpq index (catalogues of millions) re-scores its best candidates exactly from the store's vectors: recall
    # about 0.98 instead of the 0.7 its compressed codes give alone. Exact and hnsw indexes ignore rerank_from.
    return loaded_index(feature_set).similar(store.get([galaxy.pk])[0], k, exclude_key=galaxy.pk,
                                             rerank_from=store.get)


def galaxy_neighbours(*, galaxy: Galaxy, feature_set: FeatureSet, k: int = 8) -> list[Neighbour]:
    """The ``k`` galaxies most similar to ``galaxy`` under ``feature_set``, most similar first, each with its
    current labels prefetched. Empty when the galaxy has no vector in the feature set (no image, or not extracted).

    Raises:
        ValueError: for k < 1.
    """
    pairs = neighbour_pairs(galaxy=galaxy, feature_set=feature_set, k=k)
    found = with_current_labels(Galaxy.objects.select_related("dataset")).in_bulk([key for key, _ in pairs])
    scale = similarity_scale(feature_set) if pairs else None
    cosines = [score for _, score in pairs]
    likeness = scale.likeness(cosines) if scale else [None] * len(pairs)
    closer_than = scale.closer_than(cosines) if scale else [None] * len(pairs)
    # A galaxy deleted since the index was built is skipped rather than shown broken; ranks count those shown.
    shown = [(key, score, like, closer) for (key, score), like, closer in zip(pairs, likeness, closer_than,
                                                                             strict=True) if key in found]
    return [Neighbour(found[key], float(score), rank=rank, likeness=None if like is None else float(like),
                      closer_than=None if closer is None else float(closer))
            for rank, (key, score, like, closer) in enumerate(shown, start=1)]
