"""The data model, one module per concern: datasets and galaxies (catalogue), decision trees and volunteer votes
(trees), label schemas with expert and consensus labels (labels), model versions, their activation per dataset,
features, clusterings and maps (ml), active-learning queues, probability models and simulations (queue),
volunteers' subjects and retirement (volunteers), and background jobs (jobs). Writes go through labeling/services;
reads that span relations live in labeling/selectors."""

from labeling.models.catalogue import Dataset, Galaxy, galaxy_image_path, galaxy_thumbnail_path
from labeling.models.jobs import Job, JobChunk
from labeling.models.labels import ConsensusLabel, ConsensusRule, ExpertLabel, LabelClass, LabelSchema
from labeling.models.ml import (
    Activation,
    ClusterAssignment,
    Clustering,
    Embedding,
    EmbeddingPoint,
    FeatureSet,
    ModelVersion,
)
from labeling.models.queue import (
    STRATEGY_CHOICES,
    Classifier,
    LabelResolution,
    Prediction,
    QueueEntry,
    QueuePolicy,
    Simulation,
)
from labeling.models.screening import VolunteerExclusion, VolunteerWeight
from labeling.models.trees import Answer, DecisionTree, Question, VolunteerClassification, VoteSummary
from labeling.models.volunteers import ClassifyOffer, ClassifyPolicy, Subject

__all__ = [
    "STRATEGY_CHOICES", "Activation", "Answer", "Classifier", "ClassifyOffer", "ClassifyPolicy", "ClusterAssignment",
    "Clustering", "ConsensusLabel", "ConsensusRule", "Dataset", "DecisionTree", "Embedding", "EmbeddingPoint",
    "ExpertLabel", "FeatureSet", "Galaxy", "Job", "JobChunk", "LabelClass", "LabelResolution", "LabelSchema",
    "ModelVersion", "Prediction", "Question", "QueueEntry", "QueuePolicy", "Simulation", "Subject",
    "VolunteerClassification", "VoteSummary", "galaxy_image_path", "galaxy_thumbnail_path",
    "VolunteerExclusion", "VolunteerWeight",
]
