"""What an admin sends to import an outside model's feature vectors or class probabilities as a job
(POST /api/jobs/import-features/ and /api/jobs/import-predictions/, actions of labeling/api/jobs.py)."""

from rest_framework import serializers

from labeling.models import Job
from labeling.services.imports.jobs import ImportArgumentError
from labeling.services.imports.outside_jobs import features_job_start, predictions_job_start

FIELDS = {"dataset": "dataset_name"}  # the services' argument names -> the fields of these requests


class FeaturesImportSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="The vectors (.npy, .csv, .csv.gz, .parquet), relative "
                                                            "to GALAXY_IMPORT_ROOT.")
    ids = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="",
                                help_text="An .npy array's ids: a .txt file (one id per line) or a .csv, relative "
                                          "to GALAXY_IMPORT_ROOT.")
    id_column = serializers.CharField(max_length=100, required=False, default="id",
                                      help_text="The id column of a CSV or Parquet file (or of an ids .csv).")
    dataset_name = serializers.CharField(max_length=200, help_text="The dataset whose galaxies the ids name.")
    name = serializers.CharField(max_length=200, help_text="The outside model's name: the feature set's.")
    use = serializers.BooleanField(required=False, default=False,
                                   help_text="Make it the dataset's active version: its queues and probability model "
                                             "use these features.")


class PredictionsImportSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="The CSV, relative to GALAXY_IMPORT_ROOT.")
    id_column = serializers.CharField(max_length=100, required=False, default="id")
    dataset_name = serializers.CharField(max_length=200)
    schema = serializers.CharField(max_length=100, help_text="The label schema whose class keys are the columns.")
    name = serializers.CharField(max_length=200, help_text="The outside model's name.")
    use = serializers.BooleanField(required=False, default=False,
                                   help_text="The dataset's queues read these probabilities (its queue policy).")


def start(kind: str, data: dict, user) -> Job:
    """Start the import job; ImportArgumentError becomes a 400 naming the field. JobConflict passes (a 409)."""
    try:
        if kind == Job.Kind.IMPORT_FEATURES:
            return features_job_start(user=user, **data)
        return predictions_job_start(user=user, **data)
    except ImportArgumentError as error:
        raise serializers.ValidationError({FIELDS.get(error.field, error.field): [error.message]}) from error
