"""Reads of the training pages: the model versions with their held-out figures, the training jobs in progress,
and one dataset's learning curve across its retrain cycles. Each costs a fixed number of queries, however many
versions there are."""

from dataclasses import dataclass, field

from labeling.models import Dataset, Galaxy, Job, LabelClass, ModelVersion

VERSIONS_SHOWN = 200
PREVIOUS = "previous version"
PIXELS = "pixels PCA(20) + LR"
TRAINING_KINDS = (Job.Kind.RETRAIN, Job.Kind.PRETRAIN)
IN_PROGRESS = (Job.Status.QUEUED, Job.Status.RUNNING)
CURVE_STATUSES = (ModelVersion.Status.READY, ModelVersion.Status.ACTIVE)


@dataclass
class VersionRow:
    """One model version as the Training page shows it; figures are None when the version has none (yet)."""

    version: ModelVersion
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    previous_accuracy: float | None = None
    previous_name: str = ""
    pixel_accuracy: float | None = None
    held_out: int | None = None
    expert_labels: int | None = None
    pseudo_labels: int | None = None
    with_votes: int | None = None

    @property
    def can_activate(self) -> bool:
        return self.version.status == ModelVersion.Status.READY


def _figure(block: dict | None, key: str) -> float | None:
    value = (block or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def version_row(version: ModelVersion) -> VersionRow:
    metrics, training = version.metrics or {}, version.training or {}
    held_out, baselines = metrics.get("held_out"), metrics.get("baselines") or {}
    return VersionRow(
        version=version, accuracy=_figure(held_out, "accuracy"),
        balanced_accuracy=_figure(held_out, "balanced_accuracy"),
        previous_accuracy=_figure(baselines.get(PREVIOUS), "accuracy"),
        previous_name=metrics.get("previous_version", ""),
        pixel_accuracy=_figure(baselines.get(PIXELS), "accuracy"),
        held_out=training.get("held_out"), expert_labels=training.get("expert_labels"),
        pseudo_labels=training.get("pseudo_labels"), with_votes=training.get("with_votes"))


def training_versions(*, limit: int = VERSIONS_SHOWN) -> list[VersionRow]:
    """The newest model versions first, with what each was trained on and how it did on the held-out split."""
    # training_labels (a class per training galaxy) is never shown and grows with the dataset: left unread.
    versions = (ModelVersion.objects.defer("training_labels")
                .select_related("trained_on", "schema", "parent", "created_by").order_by("-created_at", "-pk")[:limit])
    return [version_row(version) for version in versions]


def curve_datasets(rows: list[VersionRow]) -> list[Dataset]:
    """The datasets, by name, that have a learning curve among these versions (no query: rows are loaded)."""
    found = {row.version.trained_on_id: row.version.trained_on for row in rows
             if row.version.method == "finetune" and row.version.status in CURVE_STATUSES and row.version.trained_on}
    return sorted(found.values(), key=lambda dataset: dataset.name)


@dataclass
class TrainingJob:
    job: Job
    version_name: str = ""


def training_jobs_in_progress() -> list[TrainingJob]:
    """Queued and running retrain and pretrain jobs, with the name of the version each one trains."""
    jobs = list(Job.objects.filter(kind__in=TRAINING_KINDS, status__in=IN_PROGRESS).select_related(
        "dataset", "created_by").order_by("created_at", "pk"))
    ids = {job.arguments.get("model_version") for job in jobs} - {None}
    names = dict(ModelVersion.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    return [TrainingJob(job=job, version_name=names.get(job.arguments.get("model_version"), "")) for job in jobs]


@dataclass
class Mistake:
    galaxy_id: int
    external_id: str
    thumbnail_url: str | None
    true: str
    predicted: str
    probability: float


@dataclass
class Cycle:
    """One trained version of the learning curve."""

    number: int
    version: ModelVersion
    row: VersionRow
    classes: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    mistakes: list[Mistake] = field(default_factory=list)


@dataclass
class LearningCurve:
    dataset: Dataset
    cycles: list[Cycle]
    chart: dict


def learning_curve(*, dataset: Dataset) -> LearningCurve:
    """The dataset's fine-tuned versions (ready or active), oldest first, and the chart data of the page:
    ``{"points": [{version, name, cycle, expert_labels, accuracy, balanced_accuracy, previous_accuracy,
    previous_balanced_accuracy, pixel_accuracy, pixel_balanced_accuracy, loss, confusion, classes,
    class_names}]}``."""
    versions = list(ModelVersion.objects.defer("training_labels")
                    .filter(trained_on=dataset, method="finetune", status__in=CURVE_STATUSES)
                    .select_related("schema", "created_by").order_by("created_at", "pk"))
    names = {(schema, key): name for schema, key, name in LabelClass.objects.filter(
        schema__in={v.schema_id for v in versions} - {None}).values_list("schema", "key", "name")}
    galaxy_ids = {row.get("galaxy") for v in versions for row in (v.metrics or {}).get("mistakes", [])} - {None}
    galaxies = {g.pk: g for g in Galaxy.objects.filter(pk__in=galaxy_ids).only("pk", "external_id", "thumbnail")}
    cycles, points = [], []
    for number, version in enumerate(versions, start=1):
        metrics = version.metrics or {}
        held_out, baselines = metrics.get("held_out") or {}, metrics.get("baselines") or {}
        classes = [str(key) for key in held_out.get("classes", [])]
        class_names = [names.get((version.schema_id, key), key) for key in classes]
        mistakes = []
        for row in metrics.get("mistakes", []):
            galaxy = galaxies.get(row.get("galaxy"))
            if galaxy is None:  # deleted since the cycle ran
                continue
            mistakes.append(Mistake(
                galaxy_id=galaxy.pk, external_id=galaxy.external_id,
                thumbnail_url=galaxy.thumbnail.url if galaxy.thumbnail else None,
                true=names.get((version.schema_id, row["true"]), row["true"]),
                predicted=names.get((version.schema_id, row["predicted"]), row["predicted"]),
                probability=float(row["probability"])))
        row = version_row(version)
        cycles.append(Cycle(number=number, version=version, row=row, classes=classes, class_names=class_names,
                            mistakes=mistakes))
        points.append({
            "version": version.pk, "name": version.name, "cycle": number, "expert_labels": row.expert_labels,
            "accuracy": row.accuracy, "balanced_accuracy": row.balanced_accuracy,
            "previous_accuracy": row.previous_accuracy,
            "previous_balanced_accuracy": _figure(baselines.get(PREVIOUS), "balanced_accuracy"),
            "pixel_accuracy": row.pixel_accuracy,
            "pixel_balanced_accuracy": _figure(baselines.get(PIXELS), "balanced_accuracy"),
            "loss": [epoch.get("loss") for epoch in metrics.get("history", [])],
            "confusion": held_out.get("confusion", []), "classes": classes, "class_names": class_names,
        })
    return LearningCurve(dataset=dataset, cycles=cycles, chart={"points": points})
