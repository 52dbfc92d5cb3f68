"""Reads that span relations, shaped for the pages (and the REST API): each costs a fixed number of queries.

One module per concern; the names are gathered here so callers write ``selectors.galaxy_list(...)``.
"""

from labeling.selectors.catalogue import (
    IMAGES_WITH,
    IMAGES_WITHOUT,
    LABELLED_CONSENSUS,
    LABELLED_EXPERT,
    LABELLED_NONE,
    GalaxyDetail,
    dataset_list,
    distinct_badges,
    galaxy_detail,
    galaxy_list,
    with_current_labels,
)
from labeling.selectors.clusters import (
    ClusterCard,
    clustering_gallery,
    clustering_list,
    embedding_list,
    embedding_points,
    feature_sets_overview,
)
from labeling.selectors.similarity import Neighbour, feature_set_for, galaxy_neighbours, indexed_feature_sets
from labeling.selectors.trees import TreeQuestion, tree_detail, tree_list

__all__ = [
    "IMAGES_WITH", "IMAGES_WITHOUT", "LABELLED_CONSENSUS", "LABELLED_EXPERT", "LABELLED_NONE", "ClusterCard",
    "GalaxyDetail", "Neighbour", "TreeQuestion", "clustering_gallery", "clustering_list", "dataset_list",
    "distinct_badges", "embedding_list", "embedding_points", "feature_set_for", "feature_sets_overview",
    "galaxy_detail", "galaxy_list", "galaxy_neighbours", "indexed_feature_sets", "tree_detail", "tree_list",
    "with_current_labels",
]
