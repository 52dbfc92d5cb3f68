"""A retrain cycle: fine-tune the backbone on the dataset's labels, soft volunteer votes and confident
pseudo-labels (mlcore.training.finetune), evaluate it on the fixed held-out split beside the previous version and a
pixel baseline, and record the result as a new ModelVersion, activated on the dataset when it beats the dataset's
active one."""

from functools import partial
from pathlib import Path

from django.conf import settings
from django.db.models import Count

from labeling.models import Dataset, ExpertLabel, Job, LabelSchema, ModelVersion
from labeling.services.jobs.lifecycle import JobConflict, JobReporter, job_create, jobs_mark_abandoned
from labeling.services.learning.model_versions import (
    file_sha256,
    model_version_get_or_create,
    unique_version_name,
)
from labeling.services.learning.train_processes import train_in_processes
from labeling.services.learning.training_data import CycleData, TrainingDataError, cycle_data

RUNNING = (Job.Status.QUEUED, Job.Status.RUNNING)


def default_schema(dataset: Dataset) -> LabelSchema:
    """The schema with the most current expert labels in the dataset.

    Raises:
        TrainingDataError: when the dataset has no expert label at all.
    """
    row = (ExpertLabel.objects.filter(galaxy__dataset=dataset, superseded_at__isnull=True).values("schema")
           .annotate(n=Count("pk")).order_by("-n").first())
    if row is None:
        raise TrainingDataError(f"dataset {dataset.name!r} has no expert label to train on")
    return LabelSchema.objects.get(pk=row["schema"])


def versions_dir() -> Path:
    return Path(settings.GALAXY_FEATURES_ROOT) / "models"


# A cycle's defaults, measured on real galaxies (bench/retrain_gain.py, docs/benchmarks.md "Retrain cycles"): from
# the galaxy backbone on 500 kaggle_gz2_dev labels, 15 epochs at lr 3e-4 gained over 5 at 1e-3, and learning at 96 px
# (the galaxy backbone's own 64 px hides spiral arms that 96 px shows) gained most; larger costs (size/64)^2 the time.
DEFAULT_EPOCHS = 15
DEFAULT_LR = 3e-4
MIN_CYCLE_IMAGE_SIZE = 96


def cycle_image_size(base: ModelVersion | None) -> int:
    """The size a cycle trains at when none is asked for: its starting version's own, but at least 96 px."""
    return max(MIN_CYCLE_IMAGE_SIZE, base.image_size if base is not None else MIN_CYCLE_IMAGE_SIZE)


def default_base() -> ModelVersion:
    """The version a cycle starts from unless told otherwise (the command's ``--weights galaxy``, the Training page's
    first choice, the API and the admin action): the shipped galaxy backbone, registered on first use.

    Raises:
        ModelVersionError: when the shipped weights file is missing or unreadable.
    """
    return model_version_get_or_create(weights="galaxy")


def retrain_start(*, dataset: Dataset, schema: LabelSchema | None = None, backbone: str = "resnet18",
                  base: ModelVersion | None = None, image_size: int | None = None, epochs: int = DEFAULT_EPOCHS,
                  lr: float = DEFAULT_LR, pseudo_threshold: float = 0.95, soft_vote_weight: float = 1.0, seed: int = 0,
                  rotation_invariant: bool = True, user=None, enqueue: bool = True) -> Job:
    """Queue a retrain cycle: a new ModelVersion (status queued) and the job that trains it.

    Args:
        base: the version whose weights training starts from; None for a seeded random initialisation. The
            previous version the new one is measured against is ``base``, else the dataset's active version.
        image_size: pixels per side; default ``cycle_image_size(base)``: the base's own, at least 96.
        rotation_invariant: the version serves (and is judged on) feature vectors averaged over the 8 flips and
            quarter turns of each image: 3.2 points over its starting features on 500 kaggle_gz2_dev labels against
            2.8 without, for 8 forward passes per image at extraction (docs/benchmarks.md "Retrain cycles").

    Raises:
        JobConflict: when a cycle of this dataset is already queued or running (one at a time per dataset).
        TrainingDataError: when the dataset has no labels of two classes.
        ValueError: for settings out of range.
    """
    jobs_mark_abandoned()  # a cycle whose worker died must not block the next one
    running = Job.objects.filter(kind=Job.Kind.RETRAIN, dataset=dataset, status__in=RUNNING).first()
    if running is not None:
        raise JobConflict(f"a retrain cycle of {dataset.name!r} is already {running.status} (job #{running.pk}); "
                          "one cycle at a time per dataset")
    if base is not None and base.is_imported:
        raise ValueError(f"{base.name!r} is an outside model known by its imported features: it has no weights to "
                         "train from")
    image_size = image_size or cycle_image_size(base)
    if not 32 <= image_size <= 424 or not 1 <= epochs <= 500 or not 0 < lr < 1 or not 0.5 <= pseudo_threshold <= 1 \
            or not 0 <= soft_vote_weight <= 10:
        raise ValueError("image size 32-424, epochs 1-500, learning rate in (0, 1), pseudo-label threshold 0.5-1, "
                         "soft-vote weight 0-10")
    schema = schema or default_schema(dataset)
    if base is not None and base.backbone != backbone:
        backbone = base.backbone
    classes = (ExpertLabel.objects.filter(galaxy__dataset=dataset, schema=schema, superseded_at__isnull=True)
               .values("label_class").distinct().count())
    if classes < 2:
        raise TrainingDataError(f"dataset {dataset.name!r} has expert labels of {classes} class(es) of "
                                f"{schema.name!r}; a model needs at least two")
    cycle = ModelVersion.objects.filter(trained_on=dataset, method="finetune").count() + 1
    hyperparameters = {"epochs": epochs, "lr": lr, "pseudo_threshold": pseudo_threshold,
                       "soft_vote_weight": soft_vote_weight, "batch_size": 32, "rotation_invariant": rotation_invariant}
    version = ModelVersion.objects.create(
        name=unique_version_name(f"{backbone} · {dataset.slug} cycle {cycle} · {image_size} px"), backbone=backbone,
        weights=ModelVersion.Weights.FILE, seed=seed, image_size=image_size, status=ModelVersion.Status.QUEUED,
        # An imported active version has no weights to measure against: the baseline is then random features.
        parent=base or ModelVersion.objects.filter(active_for=dataset).exclude(
            weights=ModelVersion.Weights.IMPORTED).first(), trained_on=dataset,
        schema=schema, method="finetune", hyperparameters=hyperparameters, created_by=user)
    arguments = {"model_version": version.pk, "base": base.pk if base else None}
    return job_create(kind=Job.Kind.RETRAIN, arguments=arguments, dataset=dataset, user=user, enqueue=enqueue)


def retrain_run(*, job: Job, reporter: JobReporter) -> dict:
    """The work of a retrain job. The version ends ready (or failed, with the reason); the dataset's active version
    changes only when the new one is ready and better on the held-out split."""
    version = ModelVersion.objects.select_related("trained_on", "schema", "parent").get(
        pk=job.arguments["model_version"])
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.TRAINING)
    try:
        result = _train_and_evaluate(version, job, reporter)
    except BaseException as exc:
        reason = "cancelled" if type(exc).__name__ in ("JobCancelled", "TrainingCancelled") else \
            f"{type(exc).__name__}: {exc}"
        ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.FAILED, error=reason)
        raise
    return result


def _train_and_evaluate(version: ModelVersion, job: Job, reporter: JobReporter) -> dict:
    from labeling.services.jobs.lifecycle import JobCancelled
    from labeling.services.learning.retrain_eval import evaluate_cycle, served_probabilities
    from mlcore.features.augment import decode_all
    from mlcore.features.backbone import input_crop
    from mlcore.training.class_head import class_head_of
    from mlcore.training.finetune import TrainConfig, TrainData, TrainingCancelled, train
    from mlcore.training.galaxy_model import predict

    hp = version.hyperparameters
    base = ModelVersion.objects.filter(pk=job.arguments.get("base")).first()
    # Images are cropped as the starting weights learnt them (the galaxy backbone: the central half of a cutout).
    crop = input_crop(base.weights_argument) if base else 1.0
    config = TrainConfig(epochs=hp["epochs"], lr=hp["lr"], image_size=version.image_size,
                         soft_vote_weight=hp["soft_vote_weight"], seed=version.seed,
                         threads=settings.TORCH_THREADS, batch_size=hp.get("batch_size", 32), crop_fraction=crop)
    reporter.progress(0, 100, "reading labels, votes and pseudo-labels")
    data: CycleData = cycle_data(dataset=version.trained_on, schema=version.schema,
                                 pseudo_threshold=hp["pseudo_threshold"], pseudo_weight=config.pseudo_weight)
    reporter.progress(2, 100, f"decoding {len(data.train_paths) + len(data.test_paths)} images")
    train_images, _ = decode_all(data.train_paths, version.image_size, crop_fraction=crop)
    test_images, _ = decode_all(data.test_paths, version.image_size, crop_fraction=crop)
    checkpoint = versions_dir() / f"version-{version.pk}" / "backbone.pt"

    def progress(step: dict) -> None:
        done = (step["epoch"] - 1) * step["batches"] + step["batch"]
        reporter.progress(round(10 + 80 * done / (step["epochs"] * step["batches"])), 100,
                          f"training: epoch {step['epoch']}/{step['epochs']}, batch {step['batch']}/{step['batches']}, "
                          f"loss {step['loss']:.3f}, {step['eta_s']:.0f} s left")

    processes = settings.GALAXY_TRAIN_PROCESSES
    if processes > 1:
        reporter.progress(10, 100, f"training in {processes} processes (torchrun): starting")
    run = train if processes == 1 else partial(train_in_processes, processes=processes)
    try:
        trained = run(TrainData(images=train_images, hard=data.hard, hard_weight=data.hard_weight,
                                votes=data.votes, question_slices=data.question_slices, classes=data.classes),
                      backbone=version.backbone, weights=base.weights_argument if base else "random",
                      config=config, progress=progress, should_cancel=reporter.cancel_requested,
                      checkpoint_path=checkpoint)
    except TrainingCancelled:
        raise JobCancelled() from None
    reporter.progress(92, 100, "evaluating on the held-out split")
    # Judged as it will serve: on the feature vectors its activation extracts (D4-averaged unless told otherwise),
    # with its class head applied to them as the probability model applies it.
    d4 = version.rotation_invariant_features
    held_out = predict(trained.model, test_images, d4=d4)
    expert_features = predict(trained.model, train_images[data.expert_rows], d4=d4)["features"]
    head_probs = class_head_of(trained.model, data.classes).predict_proba(held_out["features"])
    probs = served_probabilities(data, head_probs, expert_features, held_out["features"])
    # The previous version is judged on images as it sees them: a cycle may learn at a larger size than its base.
    parent = version.parent
    parent_crop = input_crop(parent.weights_argument) if parent is not None else crop
    if parent is not None and (parent.image_size, parent_crop) != (version.image_size, crop):
        baseline_images = (decode_all(data.train_paths, parent.image_size, crop_fraction=parent_crop)[0],
                           decode_all(data.test_paths, parent.image_size, crop_fraction=parent_crop)[0])
    else:
        baseline_images = (train_images, test_images)
    metrics = evaluate_cycle(version=version, data=data, probs=probs, train_images=train_images,
                             test_images=test_images, baseline_images=baseline_images, head_probs=head_probs)
    metrics.update(history=trained.history, seconds=round(trained.seconds, 1),
                   images_per_s=round(trained.images_per_s, 1), device=str(trained.device),
                   processes=trained.processes)
    metrics["activation"] = _activation_decision(metrics)
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.READY, checkpoint=str(trained.checkpoint), checkpoint_sha256=file_sha256(
            Path(trained.checkpoint)), metrics=metrics, training=data.snapshot, training_labels=data.trained_as,
        error="")
    version.refresh_from_db()
    activated = _activate_as_decided(version, job)
    return {"model_version": version.pk, "accuracy": metrics["held_out"]["accuracy"],
            "previous_accuracy": (metrics["baselines"].get("previous version") or {}).get("accuracy"),
            "activated": activated, "labels": data.snapshot["expert_labels"], "held_out": len(data.test_ids)}


def _activation_decision(metrics: dict) -> dict:
    """Whether the new version is activated on the dataset trained on (and its chain of jobs): when it beats the
    previous one on the same held-out galaxies by balanced accuracy (plain accuracy rewards the majority class); the
    previous one is the starting version or the dataset's active one, else random features. Kept in the version's
    metrics ("activation"), which the Training page shows."""
    metric = "balanced_accuracy" if "balanced_accuracy" in metrics["held_out"] else "accuracy"
    value = metrics["held_out"][metric]
    previous = (metrics["baselines"].get("previous version") or {}).get(metric)
    return {"activated": previous is None or value > previous, "metric": metric, "value": value,
            "previous": previous, "previous_version": metrics.get("previous_version", "")}


def _activate_as_decided(version: ModelVersion, job: Job) -> bool:
    """Activate the version on the dataset it was trained on when its metrics' "activation" says so."""
    from labeling.services.learning.activation import version_activate

    activated = bool(version.metrics.get("activation", {}).get("activated"))
    if activated:
        version_activate(version=version, dataset=version.trained_on, user=job.created_by)
    return activated


def cycles_of(dataset: Dataset) -> list[ModelVersion]:
    """The dataset's trained versions, oldest first (the learning-curve page)."""
    return list(ModelVersion.objects.filter(trained_on=dataset).order_by("created_at", "pk"))
