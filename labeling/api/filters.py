"""Query-string filters of the API's lists (django-filter): each names what it keeps, and a bad value is a 400
naming the parameter. Datasets, model versions, clusterings and galaxies are given by id; schemas and trees by
name; classes by key (unique within a schema, so a class filter needs ``schema``)."""

import datetime

import django_filters as filters
from django import forms
from django.db.models import Exists, OuterRef, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from labeling.models import (
    ClusterAssignment,
    Clustering,
    ConsensusLabel,
    Dataset,
    DecisionTree,
    ExpertLabel,
    Galaxy,
    LabelSchema,
    ModelVersion,
    Prediction,
    VoteSummary,
)


@extend_schema_field(OpenApiTypes.STR)
class ByNameFilter(filters.ModelChoiceFilter):
    """A row given by its name (to_field_name), documented as the string it is."""


@extend_schema_field(OpenApiTypes.INT)
class ByIdFilter(filters.ModelChoiceFilter):
    """A row given by its id, documented as the integer it is."""


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is an error rather than silently no filter."""

    widget = forms.TextInput

    def to_python(self, value):
        text = str(value).strip().lower() if value is not None else ""
        if text in ("", "none"):
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        # The value goes in params, not in the message: django-filter formats the message with %, and a value
        # holding a % (?current=100%) made that formatting fail with a 500.
        raise forms.ValidationError("%(value)r is not a boolean: use true or false", params={"value": value})

    def validate(self, value):
        pass


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


# The largest id a database integer holds: a larger one is a 400 naming the parameter, not an overflow in the driver.
MAX_ID = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdNumberFilter(filters.NumberFilter):
    """A row's id: a whole number from 1 to MAX_ID."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class UtcIsoDateTimeField(filters.fields.IsoDateTimeField):
    """An ISO 8601 time, turned into UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (+20:47)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+05:00, before the first representable UTC time
            raise forms.ValidationError("%(value)r lies outside the times this server can compare",
                                        params={"value": value}) from None


@extend_schema_field(OpenApiTypes.DATETIME)
class SinceFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


def _schema_filter():
    return filters.ModelChoiceFilter(field_name="schema", to_field_name="name", queryset=LabelSchema.objects.all(),
                                     help_text="A label schema, by name.")


def _needs_schema(data, name: str) -> None:
    if data.get(name) and not data.get("schema"):
        raise ValidationError({name: ["a class filter needs 'schema': class keys are only unique within one"]})


class GalaxyFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(queryset=Dataset.objects.all(), help_text="A dataset, by id.")
    schema = ByNameFilter(queryset=LabelSchema.objects.all(), to_field_name="name", method="_noop",
                                       help_text="The schema that label, consensus and has_expert_label refer to.")
    label = filters.CharFilter(method="_label", help_text="Key of a class a current expert label gives.")
    consensus = filters.CharFilter(method="_consensus", help_text="Key of the volunteers' consensus class.")
    has_expert_label = StrictBooleanFilter(method="_has_expert_label",
                                             help_text="Has (true) or lacks (false) a current expert label.")
    clustering = ByIdFilter(queryset=Clustering.objects.all(), method="_noop",
                                           help_text="A clustering, by id; with cluster, its members.")
    cluster = filters.NumberFilter(method="_cluster", min_value=0, help_text="A cluster number of clustering.")
    external_id = filters.CharFilter(lookup_expr="exact")
    updated_since = SinceFilter(field_name="created_at", lookup_expr="gte",
                                              help_text="Added at or after this time (ISO 8601).")

    class Meta:
        model = Galaxy
        fields = []

    def filter_queryset(self, queryset):
        _needs_schema(self.data, "label")
        _needs_schema(self.data, "consensus")
        if self.data.get("cluster") not in (None, "") and not self.data.get("clustering"):
            raise ValidationError({"cluster": ["a cluster number needs 'clustering'"]})
        return super().filter_queryset(queryset)

    def _noop(self, queryset, name, value):
        return queryset

    def _labels(self):
        labels = ExpertLabel.objects.filter(galaxy=OuterRef("pk"), superseded_at__isnull=True)
        schema = self.form.cleaned_data.get("schema")
        return labels.filter(schema=schema) if schema else labels

    def _label(self, queryset, name, value):
        return queryset.filter(Exists(self._labels().filter(label_class__key=value)))

    def _has_expert_label(self, queryset, name, value):
        return queryset.filter(Exists(self._labels())) if value else queryset.exclude(Exists(self._labels()))

    def _consensus(self, queryset, name, value):
        labels = ConsensusLabel.objects.filter(galaxy=OuterRef("pk"), schema=self.form.cleaned_data["schema"],
                                               label_class__key=value)
        return queryset.filter(Exists(labels))

    def _cluster(self, queryset, name, value):
        members = ClusterAssignment.objects.filter(galaxy=OuterRef("pk"), cluster=int(value),
                                                   clustering=self.form.cleaned_data["clustering"])
        return queryset.filter(Exists(members))


class ExpertLabelFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(field_name="galaxy__dataset", queryset=Dataset.objects.all())
    galaxy = IdNumberFilter(field_name="galaxy_id")
    schema = _schema_filter()
    label = filters.CharFilter(field_name="label_class__key", help_text="A class key of schema.")
    expert = filters.CharFilter(field_name="expert__username", help_text="The expert's user name.")
    current = StrictBooleanFilter(field_name="superseded_at", lookup_expr="isnull",
                                    help_text="true: labels in force; false: replaced or withdrawn ones.")
    updated_since = SinceFilter(method="_updated_since",
                                              help_text="Given, replaced or withdrawn at or after this time.")

    class Meta:
        model = ExpertLabel
        fields = []

    def filter_queryset(self, queryset):
        _needs_schema(self.data, "label")
        return super().filter_queryset(queryset)

    def _updated_since(self, queryset, name, value):
        return queryset.filter(Q(created_at__gte=value) | Q(superseded_at__gte=value))


class ConsensusLabelFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(field_name="galaxy__dataset", queryset=Dataset.objects.all())
    galaxy = IdNumberFilter(field_name="galaxy_id")
    schema = _schema_filter()
    label = filters.CharFilter(field_name="label_class__key", help_text="A class key of schema.")
    min_agreement = filters.NumberFilter(field_name="agreement", lookup_expr="gte", min_value=0, max_value=1)
    updated_since = SinceFilter(field_name="computed_at", lookup_expr="gte")

    class Meta:
        model = ConsensusLabel
        fields = []

    def filter_queryset(self, queryset):
        _needs_schema(self.data, "label")
        return super().filter_queryset(queryset)


class VoteSummaryFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(field_name="galaxy__dataset", queryset=Dataset.objects.all())
    galaxy = IdNumberFilter(field_name="galaxy_id")
    tree = filters.ModelChoiceFilter(field_name="question__tree", to_field_name="name",
                                     queryset=DecisionTree.objects.all(), help_text="A decision tree, by name.")
    question = filters.CharFilter(field_name="question__key")
    source = filters.ChoiceFilter(choices=VoteSummary.Source.choices)
    updated_since = SinceFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = VoteSummary
        fields = []


class PredictionFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(field_name="galaxy__dataset", queryset=Dataset.objects.all())
    galaxy = IdNumberFilter(field_name="galaxy_id")
    schema = filters.ModelChoiceFilter(field_name="classifier__schema", to_field_name="name",
                                       queryset=LabelSchema.objects.all())
    model_version = filters.ModelChoiceFilter(field_name="classifier__feature_set__model_version",
                                              queryset=ModelVersion.objects.all())
    classifier = IdNumberFilter(field_name="classifier_id", help_text="A probability model, by id.")
    label = filters.CharFilter(field_name="label_class__key", help_text="The likeliest class's key.")
    min_confidence = filters.NumberFilter(field_name="probability", lookup_expr="gte", min_value=0, max_value=1)
    max_confidence = filters.NumberFilter(field_name="probability", lookup_expr="lte", min_value=0, max_value=1)

    class Meta:
        model = Prediction
        fields = []

    def filter_queryset(self, queryset):
        _needs_schema(self.data, "label")
        return super().filter_queryset(queryset)


class ClusteringFilter(filters.FilterSet):
    dataset = filters.ModelChoiceFilter(field_name="feature_set__dataset", queryset=Dataset.objects.all())
    model_version = filters.ModelChoiceFilter(field_name="feature_set__model_version",
                                              queryset=ModelVersion.objects.all())
    method = filters.ChoiceFilter(choices=Clustering.Method.choices)

    class Meta:
        model = Clustering
        fields = []
