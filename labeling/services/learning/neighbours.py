"""Building a feature set's neighbour index (mlcore.neighbours.index) from its stored vectors."""

import numpy as np
from django.conf import settings
from django.utils import timezone

from labeling.models import FeatureSet
from labeling.services.jobs.lifecycle import JobReporter


def index_build(*, feature_set: FeatureSet, reporter: JobReporter, kind: str = "auto") -> FeatureSet:
    """Index every vector of the feature set and record the index's kind and measured recall.

    The new index replaces the file of the old one in one step, so queries never see a half-written index.

    Raises:
        ValueError: when the feature set has no vectors yet.
    """
    from mlcore.features.store import FeatureStore
    from mlcore.neighbours.index import NeighbourIndex

    store = FeatureStore.open(feature_set.store_dir)
    if len(store) == 0:
        raise ValueError(f"feature set {feature_set} has no vectors yet: extract features first")
    reporter.progress(0, 1, f"indexing {len(store):,} vectors")
    # The float16 memmap goes in as it is: fit normalises it chunk by chunk, never holding a float32 copy of it all.
    index = NeighbourIndex(kind=kind, ivfpq_min=settings.GALAXY_INDEX_IVFPQ_MIN).fit(
        store.vectors(), np.array(store.keys()))
    index.save(feature_set.index_file)
    # The recall the pages get: they re-rank an ivfpq index's candidates from the store (selectors/similarity.py).
    recall = index.recall_at_20_ if index.reranked_recall_at_20_ is None else index.reranked_recall_at_20_
    FeatureSet.objects.filter(pk=feature_set.pk).update(
        index_kind=index.kind_, index_count=index.n_, index_recall=recall, index_built_at=timezone.now())
    reporter.progress(1, 1, f"{index.kind_} index of {index.n_:,} vectors, recall@20 {recall:.3f}")
    feature_set.refresh_from_db()
    return feature_set
