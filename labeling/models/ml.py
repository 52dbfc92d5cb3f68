"""The machine-learning half: model versions, their features per dataset (vectors on disk, with a neighbour
index), clusterings and 2-D maps of those features. Vectors and indexes live in files under GALAXY_FEATURES_ROOT
(mlcore.features.store, mlcore.neighbours.index); the rows here say where, and what produced them."""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from labeling.models.catalogue import Dataset, Galaxy
from labeling.models.labels import LabelSchema


class ModelVersion(models.Model):
    """A backbone that turns images into feature vectors: an architecture, its weights, and the image size it sees.

    Weights are "random" (deterministic under ``seed``), "imagenet", or a checkpoint file (``checkpoint``, with its
    SHA-256 so that a file replaced under the same name is not mistaken for the same model). ``status`` is where the
    weights are in their life (queued, training, then ready or failed); which datasets a ready version serves is
    each dataset's own choice, ``Dataset.active_version`` (here ``active_for``), with its history in Activation.
    """

    class Backbone(models.TextChoices):
        RESNET18 = "resnet18", "ResNet-18 (512-d)"
        RESNET34 = "resnet34", "ResNet-34 (512-d)"
        RESNET50 = "resnet50", "ResNet-50 (2048-d)"

    class Weights(models.TextChoices):
        RANDOM = "random", "random initialisation"
        IMAGENET = "imagenet", "ImageNet (torchvision)"
        FILE = "file", "checkpoint file"
        # An outside model whose vectors were imported (services/imports/features.py): it has no backbone here, so
        # nothing is ever extracted or trained from it; its feature sets are used like extracted ones.
        IMPORTED = "imported", "imported features (no backbone)"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        TRAINING = "training", "training"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=200, unique=True)
    backbone = models.CharField(max_length=20, choices=Backbone.choices, default=Backbone.RESNET18)
    weights = models.CharField(max_length=10, choices=Weights.choices, default=Weights.RANDOM)
    checkpoint = models.CharField(max_length=500, blank=True, help_text="The weights file, for weights 'file'.")
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    seed = models.IntegerField(default=0, help_text="Seed of a random initialisation.")
    image_size = models.PositiveIntegerField(default=224)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # What a trained version learnt from, and how (empty for versions registered from random or a file).
    trained_on = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    schema = models.ForeignKey(LabelSchema, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    method = models.CharField(max_length=20, blank=True, help_text="finetune (labels, votes, pseudo-labels) or "
                                                                   "simclr (self-supervised).")
    training = models.JSONField(default=dict, blank=True, help_text="The training data: counts per class and kind.")
    training_labels = models.JSONField(default=dict, blank=True, help_text="Each training galaxy's class (expert "
                                                                           "labels and pseudo-labels).")
    hyperparameters = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def rotation_invariant_features(self) -> bool:
        """Whether the version serves feature vectors averaged over the eight flips and quarter turns of each image
        (a retrain cycle's default: its class head and the regressions gain from the averaging), so that its
        activation extracts those and the pages and the probability model read them."""
        return bool((self.hyperparameters or {}).get("rotation_invariant"))

    @property
    def is_imported(self) -> bool:
        """True for an outside model known only by the feature vectors imported under its name."""
        return self.weights == self.Weights.IMPORTED

    @property
    def feature_dim(self) -> int:
        if self.is_imported:  # whatever the outside model made: its feature sets say (one query; such rows are few)
            return self.feature_sets.values_list("dims", flat=True).first() or 0
        return 2048 if self.backbone == self.Backbone.RESNET50 else 512

    @property
    def weights_argument(self) -> str:
        """What mlcore.features.backbone.build_backbone takes: "random", "imagenet" or the checkpoint's path."""
        return self.checkpoint if self.weights == self.Weights.FILE else self.weights


class FeatureSet(models.Model):
    """The feature vectors of one dataset's galaxies under one model version, and their neighbour index."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="feature_sets")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="feature_sets")
    rotation_invariant = models.BooleanField(
        default=False, help_text="Each vector is the mean over the eight flips and quarter turns of the image.")
    store_path = models.CharField(max_length=300, help_text="Folder of the vectors, under GALAXY_FEATURES_ROOT.")
    source = models.CharField(max_length=300, blank=True,
                              help_text="The file imported vectors came from; empty for extracted ones.")
    dims = models.PositiveIntegerField()
    dtype = models.CharField(max_length=10, default="float16")
    count = models.PositiveIntegerField(default=0, help_text="Galaxies with a vector.")
    failed = models.JSONField(default=dict, blank=True, help_text="Galaxy id -> why its image could not be read.")
    index_kind = models.CharField(max_length=10, blank=True)
    index_count = models.PositiveIntegerField(default=0, help_text="Vectors in the index when it was built.")
    index_recall = models.FloatField(null=True, blank=True, help_text="Recall@20 of the index against exact search.")
    index_built_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "dataset", "rotation_invariant"],
                                    name="feature_set_unique"),
        ]

    def __str__(self):
        rotation = ", rotation-invariant" if self.rotation_invariant else ""
        imported = f" (imported from {self.source})" if self.source else ""
        return f"{self.dataset.name} · {self.model_version.name}{rotation}{imported}"

    @property
    def store_dir(self) -> Path:
        """The mlcore.features.store folder of the vectors."""
        return Path(settings.GALAXY_FEATURES_ROOT) / self.store_path

    @property
    def index_file(self) -> Path:
        """The mlcore.neighbours.index file of the neighbour index, beside the store."""
        return Path(settings.GALAXY_FEATURES_ROOT) / f"{self.store_path}.index"

    @property
    def has_index(self) -> bool:
        return self.index_built_at is not None

    @property
    def is_active(self) -> bool:
        """True when its model version is its dataset's active one (select_related the dataset to read it free)."""
        return self.dataset.active_version_id == self.model_version_id

    @property
    def index_is_stale(self) -> bool:
        """True when vectors were added after the index was built: neighbours miss the new galaxies."""
        return self.has_index and self.index_count != self.count


class Activation(models.Model):
    """One switch of a dataset's active model version: the history its rollback reads (the version active before
    the current one is the most recent other version here)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="activations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="activations")
    activated_at = models.DateTimeField(default=timezone.now)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["-activated_at", "-id"]
        indexes = [models.Index(fields=["dataset", "-activated_at"], name="activation_dataset_latest")]

    def __str__(self):
        return f"{self.model_version} active on {self.dataset} from {self.activated_at:%Y-%m-%d %H:%M}"


class Clustering(models.Model):
    class Method(models.TextChoices):
        KMEANS = "kmeans", "k-means"
        SPECTRAL = "spectral", "spectral (landmark-based)"

    feature_set = models.ForeignKey(FeatureSet, on_delete=models.CASCADE, related_name="clusterings")
    method = models.CharField(max_length=10, choices=Method.choices)
    k = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict, blank=True, help_text="PCA components, seed, method settings.")
    metrics = models.JSONField(default=dict, blank=True,
                               help_text="Agreement with each label set: ARI, NMI, purity, contingency table.")
    sizes = models.JSONField(default=list, blank=True, help_text="Galaxies per cluster, by cluster number.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_method_display()} k={self.k} on {self.feature_set}"

    @property
    def n_galaxies(self) -> int:
        return sum(self.sizes)


class ClusterAssignment(models.Model):
    clustering = models.ForeignKey(Clustering, on_delete=models.CASCADE, related_name="assignments")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="cluster_assignments")
    cluster = models.PositiveIntegerField()
    distance = models.FloatField(null=True, blank=True, help_text="Distance to the cluster's centre, when defined.")

    class Meta:
        ordering = ["clustering", "cluster", "distance", "galaxy"]
        constraints = [models.UniqueConstraint(fields=["clustering", "galaxy"], name="cluster_assignment_unique")]
        indexes = [models.Index(fields=["clustering", "cluster"])]

    def __str__(self):
        return f"{self.galaxy} in cluster {self.cluster}"


class Embedding(models.Model):
    """A 2-D map of a feature set (PCA, t-SNE, UMAP, or LDA on a label schema)."""

    class Method(models.TextChoices):
        PCA = "pca", "PCA"
        TSNE = "tsne", "t-SNE"
        UMAP = "umap", "UMAP"
        LDA = "lda", "LDA (needs labels)"

    feature_set = models.ForeignKey(FeatureSet, on_delete=models.CASCADE, related_name="embeddings")
    method = models.CharField(max_length=10, choices=Method.choices)
    schema = models.ForeignKey(LabelSchema, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               help_text="The labels LDA separates.")
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_method_display()} map of {self.feature_set}"


class EmbeddingPoint(models.Model):
    embedding = models.ForeignKey(Embedding, on_delete=models.CASCADE, related_name="points")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    x = models.FloatField()
    y = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["embedding", "galaxy"], name="embedding_point_unique")]

    def __str__(self):
        return f"{self.galaxy_id} at ({self.x:.3g}, {self.y:.3g})"
