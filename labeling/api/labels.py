"""Label schemas, expert labels (experts create, change and withdraw their own; the history is kept and readable)
and the volunteers' consensus labels."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labeling.api.filters import ConsensusLabelFilter, ExpertLabelFilter
from labeling.api.permissions import OwnLabelOrAdmin
from labeling.api.serializers import LabelSerializer
from labeling.models import ConsensusLabel, ExpertLabel, LabelClass, LabelSchema
from labeling.selectors.labels import label_history
from labeling.services.labelling import actions
from labeling.services.labelling.labels import LabelNotCurrent, expert_label_withdraw


class LabelClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["key", "name", "order"]


class SchemaSerializer(serializers.ModelSerializer):
    classes = LabelClassSerializer(many=True)

    class Meta:
        model = LabelSchema
        fields = ["name", "title", "description", "created_at", "classes"]


class ExpertLabelSerializer(serializers.ModelSerializer):
    dataset = serializers.IntegerField(source="galaxy.dataset_id")
    external_id = serializers.CharField(source="galaxy.external_id")
    schema = serializers.CharField(source="schema.name")
    label_class = serializers.CharField(source="label_class.key")
    label_name = serializers.CharField(source="label_class.name")
    expert = serializers.CharField(source="expert.username", allow_null=True, default=None)
    current = serializers.BooleanField(source="is_current")

    class Meta:
        model = ExpertLabel
        fields = ["id", "galaxy", "dataset", "external_id", "schema", "label_class", "label_name", "expert", "note",
                  "provenance", "created_at", "superseded_at", "current"]


class LabelChangeSerializer(serializers.Serializer):
    label_class = serializers.CharField(max_length=100, help_text="A class key of the label's schema.")
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


class ConsensusLabelSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="galaxy.external_id")
    schema = serializers.CharField(source="schema.name")
    label_class = serializers.CharField(source="label_class.key")
    rule = serializers.CharField(source="rule.name")
    tree = serializers.CharField(source="rule.tree.name")

    class Meta:
        model = ConsensusLabel
        fields = ["id", "galaxy", "external_id", "schema", "label_class", "rule", "tree", "agreement", "n_votes",
                  "fractions_used", "computed_at"]


class SchemaViewSet(viewsets.ReadOnlyModelViewSet):
    """Label schemas and their classes, by name."""

    serializer_class = SchemaSerializer
    queryset = LabelSchema.objects.prefetch_related("classes").order_by("name")
    lookup_field = "name"


class ExpertLabelViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin,
                         viewsets.ReadOnlyModelViewSet):
    """Expert labels. A change never edits a row: it replaces the label in force with a new one (a new id) and
    keeps the old one as history; a withdrawal (DELETE) supersedes the label without a successor."""

    serializer_class = ExpertLabelSerializer
    permission_classes = [OwnLabelOrAdmin]
    queryset = (ExpertLabel.objects.select_related("galaxy", "schema", "label_class", "expert")
                .order_by("-created_at", "-pk"))
    filterset_class = ExpertLabelFilter

    def _shown(self, label: ExpertLabel, code: int) -> Response:
        label = self.get_queryset().get(pk=label.pk)
        return Response(ExpertLabelSerializer(label).data, status=code)

    @extend_schema(request=LabelSerializer, responses={201: ExpertLabelSerializer})
    def create(self, request, *args, **kwargs):
        """The signed-in expert's label for a galaxy (the same label again changes nothing)."""
        given = LabelSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        label = actions.label_give(expert=request.user, galaxy=data["galaxy"], schema=data["schema"],
                                   label_class=data["label_class"], note=data["note"])
        return self._shown(label, status.HTTP_201_CREATED)

    @extend_schema(request=LabelChangeSerializer, responses={200: ExpertLabelSerializer})
    def update(self, request, *args, **kwargs):
        """Change one's own label in force: a new label replaces it, and the old one stays as history."""
        label = self.get_object()
        change = LabelChangeSerializer(data=request.data, partial=kwargs.get("partial", False))
        change.is_valid(raise_exception=True)
        if not label.is_current:
            return Response({"detail": f"label {label.pk} was already replaced or withdrawn; change the label in "
                                       "force"}, status=status.HTTP_409_CONFLICT)
        key = change.validated_data.get("label_class", label.label_class.key)
        label_class = LabelClass.objects.filter(schema=label.schema, key=key).first()
        if label_class is None:
            raise serializers.ValidationError({"label_class": [f"{key!r} is not a class of schema "
                                                               f"{label.schema.name!r}"]})
        note = change.validated_data.get("note", label.note)
        try:  # checked again under the galaxy's lock: a change or withdrawal at the same instant may win
            new = actions.label_give(expert=request.user, galaxy=label.galaxy, schema=label.schema,
                                     label_class=label_class, note=note, replaces=label)
        except LabelNotCurrent as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return self._shown(new, status.HTTP_200_OK)

    def destroy(self, request, *args, **kwargs):
        """Withdraw a label in force (one's own; admins any): it stays in the history."""
        label = self.get_object()
        try:
            with transaction.atomic():
                expert_label_withdraw(label=label, by=request.user)
        except LabelNotCurrent as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=ExpertLabelSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def history(self, request, pk=None):
        """Every label the same expert (or import) gave this galaxy under this schema, newest first."""
        rows = label_history(label=self.get_object()).select_related("galaxy", "schema", "label_class", "expert")
        return Response(ExpertLabelSerializer(rows, many=True).data)


class ConsensusLabelViewSet(viewsets.ReadOnlyModelViewSet):
    """The class the volunteers' votes point to under each schema's consensus rule, with its agreement."""

    serializer_class = ConsensusLabelSerializer
    queryset = (ConsensusLabel.objects.select_related("galaxy", "schema", "label_class", "rule__tree")
                .order_by("galaxy_id", "schema__name"))
    filterset_class = ConsensusLabelFilter
