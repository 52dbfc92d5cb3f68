"""Self-supervised pretraining on every image of a dataset (mlcore.training.pretrain: SimCLR with galaxy views and
the morphology measurements as label-free targets, the recipe of the shipped galaxy backbone), for a survey unlike
the ones that backbone learnt from: the result is a ModelVersion like any other, ready to extract features with or
to fine-tune from in a retrain cycle."""

from django.conf import settings

from labeling.models import Dataset, Galaxy, Job, ModelVersion
from labeling.services.jobs.lifecycle import JobCancelled, JobConflict, JobReporter, job_create, jobs_mark_abandoned
from labeling.services.learning.model_versions import file_sha256, unique_version_name
from labeling.services.learning.retrain import RUNNING, versions_dir
from labeling.services.learning.training_data import image_paths


def pretrain_start(*, dataset: Dataset, backbone: str = "resnet18", image_size: int = 64, epochs: int = 10,
                   seed: int = 0, user=None, enqueue: bool = True) -> Job:
    """Queue pretraining: a queued ModelVersion (method "simclr") and its job.

    Raises:
        JobConflict: when a pretraining of the dataset is already queued or running.
        ValueError: settings out of range, or fewer than two images.
    """
    jobs_mark_abandoned()  # a cycle whose worker died must not block the next one
    running = Job.objects.filter(kind=Job.Kind.PRETRAIN, dataset=dataset, status__in=RUNNING).first()
    if running is not None:
        raise JobConflict(f"a pretraining of {dataset.name!r} is already {running.status} (job #{running.pk})")
    if backbone not in ModelVersion.Backbone.values or not 32 <= image_size <= 424 or not 1 <= epochs <= 1000:
        raise ValueError("backbone resnet18/34/50, image size 32-424, epochs 1-1000")
    if Galaxy.objects.filter(dataset=dataset).exclude(image="").count() < 2:
        raise ValueError(f"dataset {dataset.name!r} has fewer than two images to learn from")
    version = ModelVersion.objects.create(
        name=unique_version_name(f"{backbone} · {dataset.slug} self-supervised · {image_size} px"), backbone=backbone,
        weights=ModelVersion.Weights.FILE, seed=seed, image_size=image_size, status=ModelVersion.Status.QUEUED,
        trained_on=dataset, method="simclr", hyperparameters={"epochs": epochs}, created_by=user)
    return job_create(kind=Job.Kind.PRETRAIN, arguments={"model_version": version.pk}, dataset=dataset, user=user,
                      enqueue=enqueue)


def pretrain_run(*, job: Job, reporter: JobReporter) -> dict:
    """The work of a pretrain job; the version ends ready, or failed with the reason."""
    from mlcore.features.augment import decode_all
    from mlcore.features.views import SOURCE_CROP, source_size
    from mlcore.training.galaxy_backbone import morphology_targets
    from mlcore.training.pretrain import PretrainingCancelled, SSLConfig, pretrain

    version = ModelVersion.objects.select_related("trained_on").get(pk=job.arguments["model_version"])
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.TRAINING)
    try:
        paths = list(image_paths(version.trained_on).values())
        reporter.progress(0, 100, f"decoding {len(paths)} images")
        images, failed = decode_all(paths, source_size(version.image_size), crop_fraction=SOURCE_CROP)
        bad = {index for index, _ in failed}
        if bad:  # unreadable files would only teach the network what a blank image looks like
            keep = [index for index in range(len(paths)) if index not in bad]
            images, paths = images[keep], [paths[index] for index in keep]
        reporter.progress(2, 100, f"measuring the morphology of {len(paths)} images")
        targets = morphology_targets(paths)

        def progress(step: dict) -> None:
            done = (step["epoch"] - 1) * step["batches"] + step["batch"]
            reporter.progress(round(5 + 90 * done / (step["epochs"] * step["batches"])), 100,
                              f"pretraining: epoch {step['epoch']}/{step['epochs']}, loss {step['loss']:.3f}, "
                              f"{step['eta_s']:.0f} s left")

        config = SSLConfig(epochs=version.hyperparameters["epochs"], image_size=version.image_size,
                           seed=version.seed, threads=settings.TORCH_THREADS)
        try:
            result = pretrain(images, backbone=version.backbone, config=config, targets=targets, progress=progress,
                              should_cancel=reporter.cancel_requested,
                              checkpoint_path=versions_dir() / f"version-{version.pk}" / "backbone.pt")
        except PretrainingCancelled:
            raise JobCancelled() from None
    except BaseException as exc:
        reason = "cancelled" if isinstance(exc, JobCancelled) else f"{type(exc).__name__}: {exc}"
        ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.FAILED, error=reason)
        raise
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.READY, checkpoint=str(result.checkpoint),
        checkpoint_sha256=file_sha256(result.checkpoint), error="",
        metrics={"history": [{"epoch": i + 1, "loss": loss} for i, loss in enumerate(result.history)],
                 "seconds": round(result.seconds, 1), "images_per_s": round(result.images_per_s, 1),
                 "device": str(result.device)},
        training={"images": len(paths), "unreadable": len(failed)})
    return {"model_version": version.pk, "loss": result.history[-1] if result.history else None,
            "images": len(paths)}
