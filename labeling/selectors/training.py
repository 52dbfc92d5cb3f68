"""Reads of the training pages: the model versions with their held-out figures, each dataset's active version and
the one its rollback returns to, the training jobs in progress, and one dataset's learning curve across its retrain
cycles. Each costs a fixed number of queries, however many versions and datasets there are."""

from dataclasses import dataclass, field
from datetime import datetime

from labeling.models import Activation, Dataset, Galaxy, Job, LabelClass, ModelVersion

VERSIONS_SHOWN = 200
PREVIOUS = "previous version"
PIXELS = "pixels PCA(20) + LR"
HEAD_ALONE = "class head alone"  # labeling.services.learning.retrain_eval.HEAD_ALONE
WITHOUT_PREVIOUS = "without the previous version"  # labeling.services.learning.retrain_eval.WITHOUT_PREVIOUS
TRAINING_KINDS = (Job.Kind.RETRAIN, Job.Kind.PRETRAIN)
IN_PROGRESS = (Job.Status.QUEUED, Job.Status.RUNNING)


@dataclass
class VersionRow:
    """One model version as the Training page shows it; figures are None when the version has none (yet)."""

    version: ModelVersion
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    previous_accuracy: float | None = None
    previous_balanced_accuracy: float | None = None
    previous_name: str = ""
    # The retrain cycle's decision: {"activated", "metric", "value", "previous", "previous_version"}, or None.
    activation: dict | None = None
    pixel_accuracy: float | None = None
    # A retrain cycle's own figures are those of what experts are shown: its class head and a regression on its
    # features, averaged with a regression on the previous version's features. These two are the parts alone.
    head_balanced_accuracy: float | None = None
    without_previous_balanced_accuracy: float | None = None
    held_out: int | None = None
    expert_labels: int | None = None
    pseudo_labels: int | None = None
    with_votes: int | None = None

    @property
    def active_on(self) -> list[Dataset]:
        """The datasets this version serves (reads the ``active_for`` prefetch of :func:`training_versions`)."""
        return list(self.version.active_for.all())

    @property
    def can_activate(self) -> bool:
        """Ready, and not already serving the dataset it was trained on (where its Activate button activates it);
        a version trained nowhere may always be activated on one more dataset."""
        version = self.version
        serving = {dataset.pk for dataset in self.active_on}
        return version.status == ModelVersion.Status.READY and version.trained_on_id not in serving


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
        previous_balanced_accuracy=_figure(baselines.get(PREVIOUS), "balanced_accuracy"),
        previous_name=metrics.get("previous_version", ""), activation=metrics.get("activation"),
        pixel_accuracy=_figure(baselines.get(PIXELS), "accuracy"),
        head_balanced_accuracy=_figure(baselines.get(HEAD_ALONE), "balanced_accuracy"),
        without_previous_balanced_accuracy=_figure(baselines.get(WITHOUT_PREVIOUS), "balanced_accuracy"),
        held_out=training.get("held_out"), expert_labels=training.get("expert_labels"),
        pseudo_labels=training.get("pseudo_labels"), with_votes=training.get("with_votes"))


def training_versions(*, limit: int = VERSIONS_SHOWN) -> list[VersionRow]:
    """The newest model versions first, with what each was trained on and how it did on the held-out split."""
    # training_labels (a class per training galaxy) is never shown and grows with the dataset: left unread.
    versions = (ModelVersion.objects.defer("training_labels")
                .select_related("trained_on", "schema", "parent", "created_by").prefetch_related("active_for")
                .order_by("-created_at", "-pk")[:limit])
    return [version_row(version) for version in versions]


def curve_datasets(rows: list[VersionRow]) -> list[Dataset]:
    """The datasets, by name, that have a learning curve among these versions (no query: rows are loaded)."""
    found = {row.version.trained_on_id: row.version.trained_on for row in rows if row.version.method == "finetune"
             and row.version.status == ModelVersion.Status.READY and row.version.trained_on}
    return sorted(found.values(), key=lambda dataset: dataset.name)


def rollback_target(*, dataset: Dataset) -> ModelVersion | None:
    """The version the dataset's rollback activates again: the most recent one in its activation history other than
    the active one (so a second rollback returns to where the first started); None when there is none."""
    history = Activation.objects.filter(dataset=dataset, model_version__status=ModelVersion.Status.READY)
    if dataset.active_version_id is not None:
        history = history.exclude(model_version_id=dataset.active_version_id)
    latest = history.select_related("model_version").order_by("-activated_at", "-pk").first()
    return latest.model_version if latest else None


@dataclass
class DatasetActivation:
    """One dataset's row of the Training page: what serves it, since when and by whom, and its rollback target."""

    dataset: Dataset
    active: ModelVersion | None = None
    activated_at: datetime | None = None
    activated_by: str = ""
    previous: ModelVersion | None = None


def dataset_activations() -> list[DatasetActivation]:
    """Every dataset with an activation history, by name: its active version, when and by whom that was activated,
    and the version its rollback would activate (:func:`rollback_target`, here for all datasets in one query)."""
    # A dataset gets an active version only through model_version_activate (or the migration that introduced it),
    # which always writes a history row: the history alone names every dataset with an active version. Activations
    # are rare (one per switch), so reading all of them is a small read.
    history = (Activation.objects.select_related("dataset__active_version", "model_version", "activated_by")
               .order_by("-activated_at", "-pk"))
    rows: dict[int, DatasetActivation] = {}
    for activation in history:
        dataset = activation.dataset
        row = rows.setdefault(dataset.pk, DatasetActivation(dataset=dataset, active=dataset.active_version))
        if activation.model_version_id == dataset.active_version_id:
            if row.activated_at is None:
                row.activated_at = activation.activated_at
                row.activated_by = activation.activated_by.get_username() if activation.activated_by else ""
        elif row.previous is None and activation.model_version.status == ModelVersion.Status.READY:
            row.previous = activation.model_version
    return sorted(rows.values(), key=lambda row: row.dataset.name)


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
    """The dataset's fine-tuned ready versions, oldest first, and the chart data of the page:
    ``{"points": [{version, name, cycle, expert_labels, accuracy, balanced_accuracy, previous_accuracy,
    previous_balanced_accuracy, pixel_accuracy, pixel_balanced_accuracy, loss, confusion, classes,
    class_names}]}``."""
    versions = list(ModelVersion.objects.defer("training_labels")
                    .filter(trained_on=dataset, method="finetune", status=ModelVersion.Status.READY)
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
