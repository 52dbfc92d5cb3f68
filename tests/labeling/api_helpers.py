"""One small real world for the API tests: 18 Galaxy10 galaxies (6 with imported labels) with features, a
neighbour index, a k-means clustering, a probability model's predictions, gz2 volunteer classifications on three
galaxies and the consensus labels they give under broad-morphology."""

from dataclasses import dataclass

from labeling.models import Classifier, Clustering, Dataset, DecisionTree, FeatureSet, LabelSchema
from labeling.services.learning.classifier import classifier_fit
from labeling.services.votes.aggregation import classification_create
from labeling.services.votes.consensus import consensus_compute
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.labeling.ml_helpers import clustered
from tests.labeling.queue_helpers import partly_labelled, with_features

SMOOTH_ROUND = {"t01_smooth_or_features": "a01_smooth", "t07_rounded": "a16_completely_round", "t06_odd": "a15_no"}
DISK_EDGE_ON = {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a04_yes",
                "t09_bulge_shape": "a25_rounded", "t06_odd": "a15_no"}


@dataclass
class World:
    dataset: Dataset
    schema: LabelSchema  # galaxy10, with imported expert labels
    feature_set: FeatureSet
    clustering: Clustering
    classifier: Classifier
    tree: DecisionTree  # gz2
    broad: LabelSchema  # broad-morphology, with consensus labels


def api_world(folder) -> World:
    dataset, schema = partly_labelled(folder)
    feature_set = with_features(dataset)
    clustering = clustered(feature_set, k=3)
    classifier = classifier_fit(feature_set=feature_set, schema=schema)
    tree = tree_get_or_load_shipped(name="gz2")
    for galaxy in dataset.galaxies.order_by("pk")[:3]:
        for number, answers in enumerate([SMOOTH_ROUND] * 3 + [DISK_EDGE_ON]):
            classification_create(galaxy=galaxy, tree=tree, answers=answers, volunteer_id=f"v{number}")
    broad = schema_get_or_load_shipped(name="broad-morphology")
    rule = broad.rules.get(name="gz2-thresholds")
    rule.min_votes = 1  # four volunteers per galaxy: enough for a consensus in a test
    rule.save()
    consensus_compute(rule=rule, dataset=dataset)
    return World(dataset, schema, feature_set, clustering, classifier, tree, broad)
