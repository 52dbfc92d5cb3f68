"""Input of the labelling endpoints: each field is checked and named in the 400 response when wrong."""

from rest_framework import serializers

from labeling.models import Dataset, Galaxy, LabelClass, LabelSchema

MAX_BULK = 5000
MAX_ID = 2**63 - 1  # the largest id a database integer holds


class SchemaField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=LabelSchema.objects.all(), **kwargs)


class LabelClassMixin:
    """Turns ``label_class`` (a class key) into the schema's LabelClass, naming the schema's keys when unknown."""

    def validate(self, attrs):
        schema, key = attrs["schema"], attrs.pop("label_class")
        label_class = LabelClass.objects.filter(schema=schema, key=key).first()
        if label_class is None:
            keys = ", ".join(schema.classes.values_list("key", flat=True))
            raise serializers.ValidationError({"label_class": [f"{key!r} is not a class of schema "
                                                               f"{schema.name!r} (classes: {keys})"]})
        attrs["label_class"] = label_class
        return attrs


class LabelSerializer(LabelClassMixin, serializers.Serializer):
    galaxy = serializers.PrimaryKeyRelatedField(queryset=Galaxy.objects.select_related("dataset"))
    schema = SchemaField()
    label_class = serializers.CharField(max_length=100)
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
    queue_entry = serializers.IntegerField(required=False, allow_null=True)


class BulkLabelSerializer(LabelClassMixin, serializers.Serializer):
    schema = SchemaField()
    label_class = serializers.CharField(max_length=100)
    galaxies = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1,
                                     max_length=MAX_BULK)
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


class QueueSerializer(serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    schema = SchemaField()


class NextSerializer(QueueSerializer):
    count = serializers.IntegerField(min_value=1, max_value=10, required=False, default=2)
    exclude = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_exclude(self, value: str) -> list[int]:
        try:
            ids = [int(part) for part in value.split(",") if part.strip()][:200]
        except ValueError:
            raise serializers.ValidationError("a comma-separated list of queue entry ids") from None
        if any(not 1 <= entry <= MAX_ID for entry in ids):
            raise serializers.ValidationError(f"queue entry ids lie between 1 and {MAX_ID}")
        return ids
