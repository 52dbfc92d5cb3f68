"""Background jobs: experts follow them; admins start an extraction, an index build, a clustering, a retrain cycle,
a queue rebuild or an import of a catalogue (or of an outside model's features or predictions) under
GALAXY_IMPORT_ROOT, and cancel them."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from labeling.api import outside_imports
from labeling.api.permissions import CanRead, IsAdmin
from labeling.models import Clustering, Dataset, FeatureSet, Job, LabelSchema, ModelVersion
from labeling.services.imports.jobs import IMPORT_FORMATS, ImportArgumentError, import_job_start
from labeling.services.jobs.lifecycle import JobConflict, job_cancel
from labeling.services.labelling.queue import queue_build_start
from labeling.services.learning.classifier import current_feature_set
from labeling.services.learning.jobs import clustering_start, extraction_start, index_start
from labeling.services.learning.retrain import DEFAULT_EPOCHS, MIN_CYCLE_IMAGE_SIZE, default_base, retrain_start

STARTABLE = [Job.Kind.EXTRACT_FEATURES, Job.Kind.BUILD_INDEX, Job.Kind.CLUSTER, Job.Kind.RETRAIN,
             Job.Kind.BUILD_QUEUE]


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = Job
        fields = ["id", "kind", "dataset", "arguments", "status", "progress", "message", "result", "error",
                  "cancel_requested", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at"]


class JobStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(kind.value, kind.label) for kind in STARTABLE])
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    model_version = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.all(), required=False,
        help_text="extract_features: the backbone (default: the dataset's active model version).")
    feature_set = serializers.PrimaryKeyRelatedField(
        queryset=FeatureSet.objects.all(), required=False,
        help_text="build_index, cluster: the vectors (default: the dataset's current feature set).")
    method = serializers.ChoiceField(choices=Clustering.Method.choices, default=Clustering.Method.KMEANS,
                                     required=False, help_text="cluster: k-means or spectral.")
    k = serializers.IntegerField(min_value=2, max_value=1000, default=10, required=False, help_text="cluster.")
    schema = serializers.SlugRelatedField(slug_field="name", queryset=LabelSchema.objects.all(), required=False,
                                          help_text="retrain, build_queue: the label schema (by name).")
    epochs = serializers.IntegerField(min_value=1, max_value=500, default=DEFAULT_EPOCHS, required=False,
                                      help_text="retrain.")
    image_size = serializers.IntegerField(min_value=32, max_value=424, required=False, allow_null=True, default=None,
                                          help_text="retrain: pixels per side (default: the starting version's own, "
                                                    f"at least {MIN_CYCLE_IMAGE_SIZE}).")

    def validate(self, attrs):
        dataset, kind = attrs["dataset"], attrs["kind"]
        if kind == Job.Kind.EXTRACT_FEATURES and "model_version" not in attrs:
            attrs["model_version"] = dataset.active_version
            if attrs["model_version"] is None:
                raise serializers.ValidationError({"model_version": [
                    f"dataset {dataset.name!r} has no active model version: name one"]})
        if kind in (Job.Kind.BUILD_INDEX, Job.Kind.CLUSTER):
            feature_set = attrs.get("feature_set") or current_feature_set(dataset=dataset)
            if feature_set is None or feature_set.dataset_id != dataset.pk:
                raise serializers.ValidationError({"feature_set": [f"no feature set with vectors of dataset "
                                                                   f"{dataset.name!r}: extract features first"]})
            attrs["feature_set"] = feature_set
        if kind == Job.Kind.BUILD_QUEUE and "schema" not in attrs:
            raise serializers.ValidationError({"schema": ["name the label schema whose queues to build"]})
        return attrs


class ImportStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(kind.value, kind.label) for kind in IMPORT_FORMATS])
    path = serializers.CharField(max_length=1000, help_text="The file or folder, relative to GALAXY_IMPORT_ROOT.")
    format = serializers.CharField(max_length=40, help_text="import_galaxies: folder, galaxy10-h5 or gz-examples; "
                                                            "import_votes: gz2-table, gz2-kaggle, gz-decals or "
                                                            "panoptes.")
    dataset_name = serializers.CharField(max_length=200, help_text="The dataset; created when missing.")
    labels = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="",
                                   help_text="import_galaxies: the CSV, when it is not labels.csv in the folder.")
    schema = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                   help_text="import_galaxies: the label schema (folder: default named after the "
                                             "dataset; galaxy10-h5: galaxy10).")
    skip_bad = serializers.BooleanField(required=False, default=False,
                                        help_text="Import the good rows and list the bad ones, instead of failing.")
    mapping = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="",
                                    help_text="import_votes, format panoptes: gz_decals, gz2 or a mapping file "
                                              "relative to GALAXY_IMPORT_ROOT (which task and answer is which).")
    workflow_id = serializers.IntegerField(required=False, allow_null=True, default=None,
                                           help_text="format panoptes: the workflow to import (default: the "
                                                     "mapping's).")
    workflow_versions = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                              default=list, help_text="format panoptes: versions to import, e.g. "
                                                                      "66 (every 66.x) or 66.425.")
    subject_keys = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                         help_text="format panoptes: subject_data keys naming the galaxy.")


def _start(data: dict, user) -> Job:
    """Raises ValueError (a 400) when the service refuses, JobConflict (a 409) when the same job runs already."""
    kind, dataset = data["kind"], data["dataset"]
    if kind == Job.Kind.EXTRACT_FEATURES:
        return extraction_start(dataset=dataset, model_version=data["model_version"], user=user)
    if kind == Job.Kind.BUILD_INDEX:
        return index_start(feature_set=data["feature_set"], user=user)
    if kind == Job.Kind.CLUSTER:
        return clustering_start(feature_set=data["feature_set"], method=data["method"], k=data["k"], user=user)
    if kind == Job.Kind.RETRAIN:
        # From the shipped galaxy backbone, as the command and the Training page start by default.
        return retrain_start(dataset=dataset, schema=data.get("schema"), epochs=data["epochs"],
                             base=default_base(), image_size=data["image_size"], user=user)
    return queue_build_start(dataset=dataset, schema=data["schema"], user=user)


class JobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Background jobs, newest first: experts read them (as on the Jobs pages), admins start and cancel them."""

    serializer_class = JobSerializer
    queryset = Job.objects.select_related("created_by").order_by("-created_at", "-id")
    filterset_fields = ["kind", "status", "dataset"]

    def get_permissions(self):
        return [CanRead()] if self.request.method in SAFE_METHODS else [IsAdmin()]

    @extend_schema(request=JobStartSerializer, responses={201: JobSerializer})
    def create(self, request, *args, **kwargs):
        """Start a job; the worker picks it up. 409 when the same job is already queued or running."""
        start = JobStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        try:
            job = _start(start.validated_data, request.user)
        except JobConflict:
            raise  # a 409, from labeling/api/errors.py
        except ValueError as error:  # the services' refusals: no images, k too large, no labels of two classes
            raise serializers.ValidationError({"non_field_errors": [str(error)]}) from error
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ImportStartSerializer, responses={201: JobSerializer})
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_catalogue(self, request):
        """Import a catalogue from a file or folder under GALAXY_IMPORT_ROOT, as on the Jobs page: a worker runs
        it; the job fails naming every bad row, with nothing written. 409 when the same import runs already."""
        start = ImportStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        data = start.validated_data
        try:
            panoptes = {name: data[name] for name in ("mapping", "workflow_id", "workflow_versions", "subject_keys")}
            job = import_job_start(kind=data["kind"], path=data["path"], fmt=data["format"],
                                   dataset_name=data["dataset_name"], labels=data["labels"], schema=data["schema"],
                                   skip_bad=data["skip_bad"], panoptes=panoptes, user=request.user)
        except JobConflict:
            raise  # a 409, from labeling/api/errors.py
        except ImportArgumentError as error:
            field = {"dataset": "dataset_name"}.get(error.field, error.field)
            raise serializers.ValidationError({field: [error.message]}) from error
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=outside_imports.FeaturesImportSerializer, responses={201: JobSerializer})
    @action(detail=False, methods=["post"], url_path="import-features", url_name="import-features")
    def import_features(self, request):
        """Import an outside model's feature vectors under GALAXY_IMPORT_ROOT as a feature set (as `manage.py
        import_features`): the job fails naming every bad row, with nothing written. 409 when it runs already."""
        return self._outside_import(request, Job.Kind.IMPORT_FEATURES, outside_imports.FeaturesImportSerializer)

    @extend_schema(request=outside_imports.PredictionsImportSerializer, responses={201: JobSerializer})
    @action(detail=False, methods=["post"], url_path="import-predictions", url_name="import-predictions")
    def import_predictions(self, request):
        """Import an outside model's class probabilities under GALAXY_IMPORT_ROOT (as `manage.py
        import_predictions`): the job fails naming every bad row, with nothing written. 409 when it runs already."""
        return self._outside_import(request, Job.Kind.IMPORT_PREDICTIONS, outside_imports.PredictionsImportSerializer)

    def _outside_import(self, request, kind: str, serializer_class) -> Response:
        start = serializer_class(data=request.data)
        start.is_valid(raise_exception=True)
        job = outside_imports.start(kind, start.validated_data, request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued job at once, or ask a running one to stop; a finished job is left as it was."""
        return Response(JobSerializer(job_cancel(job=self.get_object())).data)
