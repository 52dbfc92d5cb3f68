"""What the labelling page shows for the galaxies at the head of an expert's queue: the image, why it was chosen,
the volunteers' votes, the model's prediction and the nearest neighbours with their labels. A fixed number of
queries per galaxy shown, however large the dataset."""

from dataclasses import dataclass
from datetime import datetime, time

from django.core.files.storage import default_storage
from django.db.models import Count, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from labeling.models import (
    Classifier,
    ConsensusLabel,
    Dataset,
    ExpertLabel,
    Galaxy,
    Job,
    LabelSchema,
    Prediction,
    QueueEntry,
)
from labeling.selectors.catalogue import votes_by_tree_of
from labeling.selectors.similarity import feature_set_for, neighbour_pairs, similarity_scale

NEIGHBOURS_SHOWN = 8


@dataclass
class LabellingChoice:
    dataset: Dataset
    schema: LabelSchema
    galaxies: int  # with an image
    labelled: int  # with a current expert label (any expert or import)
    mine: int  # with the expert's own current label
    pending: int  # waiting in the expert's queue


def labelling_choices(*, expert) -> list[LabellingChoice]:
    """Each dataset with images and each schema that labels it (every schema for a dataset nobody labelled yet),
    with the expert's progress. Six queries, however many datasets."""
    datasets = list(Dataset.objects.annotate(n=Count("galaxies", filter=~Q(galaxies__image=""))).filter(n__gt=0)
                    .order_by("name"))
    schemas = {s.pk: s for s in LabelSchema.objects.order_by("name")}
    current = ExpertLabel.objects.filter(superseded_at__isnull=True)

    def grouped(queryset, field="galaxy"):
        return {(row["galaxy__dataset"], row["schema"]): row["n"] for row in queryset.values(
            "galaxy__dataset", "schema").annotate(n=Count(field, distinct=True))}

    labelled = grouped(current)
    mine = grouped(current.filter(expert=expert))
    consensus = grouped(ConsensusLabel.objects.all())
    pending = {(row["dataset"], row["schema"]): row["n"] for row in QueueEntry.objects.filter(
        expert=expert, status=QueueEntry.Status.PENDING).values("dataset", "schema").annotate(n=Count("pk"))}
    known = set(labelled) | set(consensus) | set(pending)
    choices = []
    for dataset in datasets:
        pairs = sorted(schema_id for d, schema_id in known if d == dataset.pk) or list(schemas)
        for schema_id in pairs:
            key = (dataset.pk, schema_id)
            choices.append(LabellingChoice(dataset=dataset, schema=schemas[schema_id], galaxies=dataset.n,
                                           labelled=labelled.get(key, 0), mine=mine.get(key, 0),
                                           pending=pending.get(key, 0)))
    return choices


def pending_entries(*, expert, dataset: Dataset, schema: LabelSchema, count: int = 2,
                    exclude: list[int] = ()) -> list[QueueEntry]:
    """The head of the expert's queue, leaving out the entries the page already holds."""
    return list(QueueEntry.objects.filter(expert=expert, dataset=dataset, schema=schema,
                                          status=QueueEntry.Status.PENDING).exclude(pk__in=list(exclude))
                .select_related("galaxy", "model_version", "classifier").order_by("rank", "pk")[:count])


def queue_remaining(*, expert, dataset: Dataset, schema: LabelSchema) -> int:
    return QueueEntry.objects.filter(expert=expert, dataset=dataset, schema=schema,
                                     status=QueueEntry.Status.PENDING).count()


def labelled_today(*, expert) -> int:
    """Labels the expert gave since local midnight (undone ones are gone, changed ones count twice)."""
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    return ExpertLabel.objects.filter(expert=expert, created_at__gte=midnight).count()


def queue_build_state(*, dataset: Dataset, schema: LabelSchema) -> Job | None:
    """The latest build of the dataset's queues for the schema, running or finished."""
    return (Job.objects.filter(kind=Job.Kind.BUILD_QUEUE, dataset=dataset, arguments__schema=schema.pk)
            .order_by("-created_at", "-pk").first())


def _class_json(label_class) -> dict | None:
    return {"key": label_class.key, "name": label_class.name} if label_class is not None else None


def _votes_json(blocks) -> list[dict]:
    return [{"tree": block.tree_title, "source": block.source, "questions": [
        {"key": q.question.key, "text": q.question.text, "total": q.total,
         "answers": [{"key": a.key, "text": a.text, "fraction": round(a.fraction, 4), "count": a.count}
                     for a in q.answers]}
        for q in block.questions if q.has_votes]} for block in blocks]


def _prediction_json(prediction: Prediction | None, names: dict[str, str]) -> dict | None:
    if prediction is None:
        return None
    ranked = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
    return {"label_class": prediction.label_class.key, "name": prediction.label_class.name,
            "probability": round(prediction.probability, 4),
            "probabilities": [{"key": key, "name": names.get(key, key), "p": round(p, 4)} for key, p in ranked],
            "calibrated": prediction.classifier.calibrated, "classifier_id": prediction.classifier_id,
            "n_labels": prediction.classifier.n_labels}


def _latest_predictions(dataset: Dataset, schema: LabelSchema, galaxy_ids: list[int]) -> dict[int, Prediction]:
    """The predictions of the dataset's latest probability model for the schema: one query."""
    latest = (Classifier.objects.filter(feature_set__dataset=dataset, schema=schema)
              .order_by("-created_at", "-pk").values("pk")[:1])
    return {p.galaxy_id: p for p in Prediction.objects.filter(classifier=Subquery(latest), galaxy_id__in=galaxy_ids)
            .select_related("label_class", "classifier")}


def imported_predictions(dataset: Dataset, schema: LabelSchema, galaxy_ids: list[int]) -> dict[int, list[Prediction]]:
    """Each galaxy's predictions by outside models imported for the dataset and schema, by model name: one query."""
    found: dict[int, list[Prediction]] = {}
    for prediction in (Prediction.objects.filter(classifier__dataset=dataset, classifier__schema=schema,
                                                 galaxy_id__in=galaxy_ids).exclude(classifier__name="")
                       .select_related("label_class", "classifier").order_by("classifier__name", "pk")):
        found.setdefault(prediction.galaxy_id, []).append(prediction)
    return found


def _imported_json(predictions: list[Prediction], names: dict[str, str]) -> list[dict]:
    return [{**_prediction_json(prediction, names), "model": prediction.classifier.name,
             "source": prediction.classifier.source} for prediction in predictions]


def _neighbours_json(galaxies: list, schema: LabelSchema, feature_set) -> dict[int, list[dict]]:
    """The nearest neighbours of each galaxy with their label under the schema (an expert's, else the volunteers'
    consensus). The index is searched per galaxy; the neighbours' thumbnails and labels are read as plain values in
    three queries for all of them (model instances cost more than the queries at this rate)."""
    if feature_set is None:
        return {}
    pairs = {galaxy.pk: neighbour_pairs(galaxy=galaxy, feature_set=feature_set, k=NEIGHBOURS_SHOWN)
             for galaxy in galaxies}
    keys = {key for found in pairs.values() for key, _ in found}
    thumbnails = dict(Galaxy.objects.filter(pk__in=keys).values_list("pk", "thumbnail"))
    labels: dict[int, tuple[dict, str]] = {}
    consensus = ConsensusLabel.objects.filter(schema=schema, galaxy_id__in=keys).values_list(
        "galaxy_id", "label_class__key", "label_class__name")
    expert = ExpertLabel.objects.filter(schema=schema, galaxy_id__in=keys, superseded_at__isnull=True).order_by(
        "created_at").values_list("galaxy_id", "label_class__key", "label_class__name")
    for source, rows in (("consensus", consensus), ("expert", expert)):  # an expert's label wins, the latest one
        for galaxy_id, key, name in rows:
            labels[galaxy_id] = ({"key": key, "name": name}, source)
    detail = reverse("galaxy-detail", args=[0])
    scale = similarity_scale(feature_set)  # the 0-100 figure the galaxy pages show: cosines all read 1.00
    shown: dict[int, list[dict]] = {}
    for galaxy_id, found in pairs.items():
        shown[galaxy_id] = []
        likeness = scale.likeness([score for _, score in found]) if scale is not None and found else None
        for rank, (key, score) in enumerate(found, start=1):
            if key not in thumbnails:  # deleted since the index was built
                continue
            label, source = labels.get(key, (None, None))
            thumbnail = thumbnails[key]
            shown[galaxy_id].append({
                "id": key, "thumbnail_url": default_storage.url(thumbnail) if thumbnail else None,
                "detail_url": detail.replace("/0/", f"/{key}/"), "similarity": round(float(score), 4),
                "rank": rank, "likeness": None if likeness is None else round(100 * float(likeness[rank - 1])),
                "label": label, "label_source": source})
    return shown


def entries_json(*, entries: list[QueueEntry], expert, dataset: Dataset, schema: LabelSchema) -> list[dict]:
    """The labelling page's view of each entry (see the API's /api/queue/next/). A fixed number of queries however
    many entries: the galaxies' votes, predictions, neighbours and the expert's own labels are read together."""
    if not entries:
        return []
    galaxies = [entry.galaxy for entry in entries]
    galaxy_ids = [galaxy.pk for galaxy in galaxies]
    names = dict(schema.classes.values_list("key", "name"))
    predictions = _latest_predictions(dataset, schema, galaxy_ids)
    imported = imported_predictions(dataset, schema, galaxy_ids)
    yours = {label.galaxy_id: label.label_class for label in ExpertLabel.objects.filter(
        expert=expert, schema=schema, galaxy_id__in=galaxy_ids, superseded_at__isnull=True).select_related(
        "label_class")}
    votes = votes_by_tree_of(galaxy_ids)
    neighbours = _neighbours_json(galaxies, schema, feature_set_for(dataset=dataset))
    shown = []
    for entry in entries:
        galaxy = entry.galaxy
        shown.append({
            "id": entry.pk,
            "galaxy": {"id": galaxy.pk, "external_id": galaxy.external_id, "dataset": dataset.name,
                       "image_url": galaxy.image.url if galaxy.image else None,
                       "thumbnail_url": galaxy.thumbnail.url if galaxy.thumbnail else None,
                       "width": galaxy.width, "height": galaxy.height, "ra": galaxy.ra, "dec": galaxy.dec,
                       "detail_url": reverse("galaxy-detail", args=[galaxy.pk])},
            "why": {"strategy": entry.strategy, "requested_strategy": entry.requested_strategy,
                    "score": round(entry.score, 4), "rank": entry.rank,
                    "model_version": entry.model_version.name if entry.model_version else None,
                    "classifier": str(entry.classifier) if entry.classifier else None,
                    "components": entry.components, "double_label": entry.double_label,
                    "built_at": entry.created_at.isoformat()},
            "votes": _votes_json(votes.get(galaxy.pk, [])),
            "prediction": _prediction_json(predictions.get(galaxy.pk), names),
            "imported_predictions": _imported_json(imported.get(galaxy.pk, []), names),
            "neighbours": neighbours.get(galaxy.pk, []),
            "your_label": _class_json(yours.get(galaxy.pk)),
        })
    return shown


START_BATCH = 40  # what the home page offers an expert: a sitting's worth of labels


def labelling_start(*, expert) -> tuple[LabellingChoice, int] | None:
    """The labelling page the home page offers first, and how many galaxies to offer there: among the datasets and
    schemas experts already label, the one with the most galaxies still without a label (then any other pair).
    None when every galaxy with an image is labelled or none exists."""
    def open_galaxies(choice: LabellingChoice) -> int:
        return max(choice.galaxies - choice.labelled, choice.pending)

    candidates = [choice for choice in labelling_choices(expert=expert) if open_galaxies(choice)]
    if not candidates:
        return None
    best = max(candidates, key=lambda choice: (choice.labelled > 0, open_galaxies(choice), -choice.dataset.pk))
    return best, min(START_BATCH, open_galaxies(best))
