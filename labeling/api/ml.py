"""Model versions with their metrics, clusterings (sizes, assignments, centroids) and the probability models'
predictions per model version."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from labeling.api.filters import ClusteringFilter, PredictionFilter
from labeling.models import ClusterAssignment, Clustering, ModelVersion, Prediction
from labeling.selectors.clusters import clustering_centroids


class ModelVersionSerializer(serializers.ModelSerializer):
    trained_on = serializers.IntegerField(source="trained_on_id", allow_null=True, help_text="A dataset, by id.")
    schema = serializers.CharField(source="schema.name", allow_null=True, default=None)
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    feature_dim = serializers.IntegerField()
    active_for = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="The datasets (by id) whose active version this is: each dataset has "
                                             "its own, so a version may serve several or none.")

    backbone = serializers.CharField(allow_null=True, help_text="The network; null for imported features (an "
                                                                "outside model's, known by its vectors alone).")
    image_size = serializers.IntegerField(allow_null=True, help_text="Input pixels per side; null for imported "
                                                                     "features.")

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "backbone", "weights", "checkpoint_sha256", "seed", "image_size", "feature_dim",
                  "parent", "status", "active_for", "method", "trained_on", "schema", "metrics", "training",
                  "hyperparameters", "error", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.is_imported:
            # The columns hold their defaults (resnet18, 224), which describe no network this version ever ran.
            data["backbone"] = data["image_size"] = None
        return data


class ClusteringSerializer(serializers.ModelSerializer):
    dataset = serializers.IntegerField(source="feature_set.dataset_id")
    model_version = serializers.IntegerField(source="feature_set.model_version_id")
    rotation_invariant = serializers.BooleanField(source="feature_set.rotation_invariant")
    sizes = serializers.ListField(child=serializers.IntegerField(), help_text="Galaxies per cluster, by number.")

    class Meta:
        model = Clustering
        fields = ["id", "dataset", "model_version", "feature_set", "rotation_invariant", "method", "k", "sizes",
                  "parameters", "metrics", "created_at"]


class AssignmentSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="galaxy.external_id")

    class Meta:
        model = ClusterAssignment
        fields = ["galaxy", "external_id", "cluster", "distance"]


class AssignmentQuery(serializers.Serializer):
    cluster = serializers.IntegerField(min_value=0, required=False, help_text="Only this cluster's members.")


class PredictionSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="galaxy.external_id")
    schema = serializers.CharField(source="classifier.schema.name")
    model_version = serializers.IntegerField(source="classifier.feature_set.model_version_id", allow_null=True,
                                             help_text="Our probability model's features; null for imported ones.")
    model = serializers.CharField(source="classifier.name", help_text="An outside model's name, for imported "
                                                                      "predictions; empty for ours.")
    label_class = serializers.CharField(source="label_class.key", help_text="The likeliest class.")
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="Class key to probability.")

    class Meta:
        model = Prediction
        fields = ["id", "galaxy", "external_id", "schema", "model_version", "model", "classifier", "label_class",
                  "probability", "probabilities"]


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Backbones: how each was made (weights, training data, hyper-parameters) and how well it did."""

    serializer_class = ModelVersionSerializer
    queryset = (ModelVersion.objects.select_related("schema").prefetch_related("active_for")
                .defer("training_labels").order_by("-created_at", "-id"))


class ClusteringViewSet(viewsets.ReadOnlyModelViewSet):
    """Clusterings of a dataset's features, with the size of each cluster and their agreement with the labels."""

    serializer_class = ClusteringSerializer
    queryset = Clustering.objects.select_related("feature_set__model_version").order_by("-created_at", "-id")
    filterset_class = ClusteringFilter

    @extend_schema(parameters=[AssignmentQuery], responses=AssignmentSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def assignments(self, request, pk=None):
        """Each galaxy's cluster and its distance to the cluster's centre, by cluster then distance."""
        clustering = self.get_object()
        query = AssignmentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = ClusterAssignment.objects.filter(clustering=clustering).select_related("galaxy").order_by(
            "cluster", "distance", "galaxy_id")
        if "cluster" in query.validated_data:
            rows = rows.filter(cluster=query.validated_data["cluster"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AssignmentSerializer(page, many=True).data)

    @extend_schema(responses=inline_serializer("Centroids", {
        "dimension": serializers.IntegerField(),
        "sizes": serializers.ListField(child=serializers.IntegerField()),
        "centroids": serializers.ListField(child=serializers.ListField(child=serializers.FloatField(),
                                                                       allow_null=True)),
    }))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def centroids(self, request, pk=None):
        """The mean feature vector of each cluster (null for an empty one), in the feature set's space."""
        clustering = self.get_object()
        try:
            centroids = clustering_centroids(clustering=clustering)
        except FileNotFoundError as error:
            raise NotFound("the feature vectors of this clustering are no longer on disk") from error
        return Response({"dimension": clustering.feature_set.dims, "sizes": clustering.sizes,
                         "centroids": centroids})


class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    """The probability models' class probabilities per galaxy, filtered by model version, class or confidence."""

    serializer_class = PredictionSerializer
    queryset = Prediction.objects.select_related("galaxy", "classifier__schema", "classifier__feature_set",
                                                 "label_class").order_by("classifier_id", "galaxy_id")
    filterset_class = PredictionFilter
