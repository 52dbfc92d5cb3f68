"""Model predictions of one galaxy as its page shows them: the latest probability model's per schema, and every
outside model's imported predictions beside it. One query, and one per schema for its class names."""

from dataclasses import dataclass

from labeling.models import Galaxy, Prediction


@dataclass
class GalaxyPrediction:
    prediction: Prediction
    model: str  # "probability model" (ours) or the outside model's name
    imported: bool
    top: list[tuple[str, float]]  # (class name, probability) of the likeliest classes, likeliest first


TOP = 3


def galaxy_predictions(*, galaxy: Galaxy) -> list[GalaxyPrediction]:
    """Ours first (the latest model of each schema: older models of other feature sets are left out), then the
    imported ones by name, each schema together."""
    rows = list(Prediction.objects.filter(galaxy=galaxy).select_related("classifier__schema", "label_class")
                .order_by("classifier__schema__name", "classifier__name", "-classifier__created_at", "-pk"))
    names = {}
    for prediction in rows:
        schema = prediction.classifier.schema
        if schema.pk not in names:
            names[schema.pk] = dict(schema.classes.values_list("key", "name"))
    shown, ours_seen = [], set()
    for prediction in rows:
        classifier = prediction.classifier
        if not classifier.is_imported:
            if classifier.schema_id in ours_seen:
                continue
            ours_seen.add(classifier.schema_id)
        ranked = sorted(prediction.probabilities.items(), key=lambda item: -item[1])[:TOP]
        shown.append(GalaxyPrediction(
            prediction=prediction, model=classifier.name or "probability model", imported=classifier.is_imported,
            top=[(names[classifier.schema_id].get(key, key), p) for key, p in ranked]))
    return shown
