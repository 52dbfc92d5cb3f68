"""Datasets and galaxies, a galaxy's neighbours, and a dataset's exports streamed as CSV or JSON Lines."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from labeling.api.filters import GalaxyFilter
from labeling.models import FeatureSet, Galaxy
from labeling.selectors.catalogue import dataset_list
from labeling.selectors.similarity import feature_set_for, galaxy_neighbours
from labeling.services.exports.streams import FORMATS, VOTE_LAYOUTS, WHAT, export_lines, export_rows

MAX_NEIGHBOURS = 100


class DatasetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    survey = serializers.CharField()
    description = serializers.CharField()
    licence = serializers.CharField()
    attribution = serializers.CharField()
    created_at = serializers.DateTimeField()
    active_version = serializers.IntegerField(
        source="active_version_id", allow_null=True,
        help_text="The model version (by id) whose features serve this dataset's neighbours, clusters and queues.")
    n_galaxies = serializers.IntegerField(help_text="Galaxies in the dataset.")
    n_images = serializers.IntegerField(help_text="Galaxies with an image.")
    n_voted = serializers.IntegerField(help_text="Galaxies with volunteer votes.")
    n_expert = serializers.IntegerField(help_text="Galaxies with a current expert label.")
    n_consensus = serializers.IntegerField(help_text="Galaxies with a consensus label.")


@extend_schema_field(OpenApiTypes.URI)
class FileUrlField(serializers.Field):
    """The absolute URL of an image file, or null when the galaxy has none."""

    def to_representation(self, value):
        if not value:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(value.url) if request else value.url


class GalaxySerializer(serializers.ModelSerializer):
    image = FileUrlField()
    thumbnail = FileUrlField()

    class Meta:
        model = Galaxy
        fields = ["id", "dataset", "external_id", "ra", "dec", "width", "height", "image", "thumbnail",
                  "content_hash", "metadata", "created_at"]


class NeighbourSerializer(serializers.Serializer):
    galaxy = serializers.IntegerField(source="galaxy.pk")
    external_id = serializers.CharField(source="galaxy.external_id")
    similarity = serializers.FloatField(source="score", help_text="Cosine similarity of the feature vectors.")
    thumbnail = FileUrlField(source="galaxy.thumbnail")


class NeighboursQuery(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=MAX_NEIGHBOURS, default=8, required=False)
    feature_set = serializers.IntegerField(min_value=1, required=False,
                                           help_text="The feature set (by id) to compare by; default: the dataset's "
                                                     "active model version's, else the latest indexed one.")


class ExportQuery(serializers.Serializer):
    what = serializers.ChoiceField(choices=WHAT)
    format = serializers.ChoiceField(choices=FORMATS, default="csv", required=False)
    layout = serializers.ChoiceField(choices=VOTE_LAYOUTS, required=False,
                                     help_text="votes only: the Galaxy Zoo layout, when the dataset has several; "
                                               "zoobot: Zoobot's fine-tuning catalogue (id_str, file_loc, counts).")
    schema = serializers.CharField(required=False, help_text="zoobot layout: a label schema's expert labels as "
                                                             "one-hot counts instead of the volunteers' votes.")
    tree = serializers.CharField(required=False, help_text="zoobot layout: gz_decals or gz2, when the dataset has "
                                                           "vote counts of both.")
    zoobot_suffix = serializers.CharField(required=False, help_text="zoobot layout: appended to each question, "
                                                                    "e.g. -dr5 or -gz2 (Zoobot's schemas).")


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Datasets with how many of their galaxies have images, votes and labels."""

    serializer_class = DatasetSerializer
    queryset = dataset_list()

    @extend_schema(parameters=[ExportQuery], responses={(200, "text/csv"): OpenApiTypes.STR,
                                                        (200, "application/jsonl"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The dataset's labels (expert, consensus, resolutions and the final label, with provenance), votes (in
        the Galaxy Zoo layout they came in, or Zoobot's fine-tuning catalogue), cluster assignments or predictions,
        streamed."""
        dataset = self.get_object()
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        given = query.validated_data
        what, fmt = given["what"], given["format"]
        try:
            rows, columns = export_rows(dataset=dataset, what=what, layout=given.get("layout"),
                                        schema=given.get("schema"), tree=given.get("tree"),
                                        suffix=given.get("zoobot_suffix", ""))
        except ValueError as error:  # raised before the stream starts: no votes, or several layouts and none chosen
            # The message names the layouts to choose from when that is what is missing.
            field = getattr(error, "option", None) or ("layout" if "layout" in given else "what")
            raise serializers.ValidationError({field: [str(error)]}) from error
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl; charset=utf-8"
        response = StreamingHttpResponse(export_lines(rows=rows, columns=columns, fmt=fmt), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{dataset.slug}-{what}.{fmt}"'
        return response


class GalaxyViewSet(viewsets.ReadOnlyModelViewSet):
    """Galaxies, filtered by dataset, labels, consensus, cluster or time added."""

    serializer_class = GalaxySerializer
    queryset = Galaxy.objects.order_by("id")
    filterset_class = GalaxyFilter

    @extend_schema(parameters=[NeighboursQuery], responses=NeighbourSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def neighbours(self, request, pk=None):
        """The galaxies most similar to this one in a feature set with a neighbour index, most similar first."""
        galaxy = self.get_object()
        query = NeighboursQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        chosen = query.validated_data.get("feature_set")
        if chosen is not None and not FeatureSet.objects.filter(pk=chosen, dataset=galaxy.dataset_id).exists():
            raise serializers.ValidationError({"feature_set": [f"no feature set {chosen} of this galaxy's dataset"]})
        feature_set = feature_set_for(dataset=galaxy.dataset, feature_set_id=chosen)
        if feature_set is None:
            raise NotFound("no neighbour index for this galaxy's dataset: extract features and build an index")
        found = galaxy_neighbours(galaxy=galaxy, feature_set=feature_set, k=query.validated_data["k"])
        return Response(NeighbourSerializer(found, many=True, context={"request": request}).data)

