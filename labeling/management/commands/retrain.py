"""One retrain cycle: `python manage.py retrain --dataset NAME [--schema NAME] [--backbone resnet18]
[--weights galaxy|random|PATH|VERSION] [--image-size S] [--epochs 15] [--lr 3e-4] [--pseudo-threshold 0.95]
[--soft-vote-weight 1] [--seed 0]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, run_here
from labeling.models import Dataset, LabelSchema, ModelVersion
from labeling.services.jobs.lifecycle import JobConflict
from labeling.services.learning.model_versions import ModelVersionError, model_version_get_or_create
from labeling.services.learning.retrain import DEFAULT_EPOCHS, DEFAULT_LR, MIN_CYCLE_IMAGE_SIZE, retrain_start
from labeling.services.learning.training_data import TrainingDataError


def base_version(weights: str, dataset: Dataset) -> ModelVersion | None:
    """None for random initialisation; the version named (id, name, or "active": the dataset's active version) or
    registered from a file."""
    if weights == "random":
        return None
    if weights == "active":
        if dataset.active_version is None:
            raise CommandError(f"--weights active: dataset {dataset.name!r} has no active model version")
        return dataset.active_version
    found = ModelVersion.objects.filter(pk=int(weights)).first() if weights.isdigit() else \
        ModelVersion.objects.filter(name=weights).first()
    if found is not None:
        return found
    try:
        return model_version_get_or_create(weights=weights)
    except ModelVersionError as exc:
        raise CommandError(f"--weights {weights!r}: not a model version id or name, and {exc}") from None


class Command(BaseCommand):
    help = ("Fine-tune the backbone on the dataset's expert labels, soft volunteer votes and confident pseudo-labels; "
            "evaluate it on the fixed held-out split; activate it on the dataset when it beats the dataset's active "
            "version.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--schema", help="the label schema (default: the one with the most expert labels)")
        parser.add_argument("--backbone", default="resnet18", choices=ModelVersion.Backbone.values)
        parser.add_argument("--weights", default="galaxy",
                            help="galaxy (the shipped galaxy backbone, the default), random, a weights file, or a "
                                 "model version (id, name or 'active': the dataset's active one) to start from")
        parser.add_argument("--image-size", type=int,
                            help=f"pixels per side (default: the starting version's own, at least "
                                 f"{MIN_CYCLE_IMAGE_SIZE})")
        parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
        parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="learning rate")
        parser.add_argument("--pseudo-threshold", type=float, default=0.95,
                            help="probability above which an unlabelled galaxy gets a pseudo-label")
        parser.add_argument("--soft-vote-weight", type=float, default=1.0,
                            help="weight of the volunteers' votes (nats per vote) against the labels' cross-entropy")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-rotation-invariant", action="store_true",
                            help="serve plain feature vectors instead of the mean over each image's 8 flips and "
                                 "quarter turns (8 times faster extraction, about 0.4 points lower)")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        schema = None
        if options["schema"]:
            schema = LabelSchema.objects.filter(name=options["schema"]).first()
            if schema is None:
                raise CommandError(f"no label schema {options['schema']!r}")
        try:
            job = retrain_start(dataset=dataset, schema=schema, backbone=options["backbone"],
                                base=base_version(options["weights"], dataset), image_size=options["image_size"],
                                epochs=options["epochs"], lr=options["lr"],
                                pseudo_threshold=options["pseudo_threshold"],
                                soft_vote_weight=options["soft_vote_weight"], seed=options["seed"],
                                rotation_invariant=not options["no_rotation_invariant"], enqueue=False)
        except (JobConflict, TrainingDataError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.retrain, job, unit="%", stream=self.stderr)
        version = ModelVersion.objects.get(pk=job.result["model_version"])
        metrics = version.metrics
        baselines = metrics["baselines"]
        training = version.training
        outcome = ("activation started: features and index, then the switch, clusters and queues follow as jobs"
                   if job.result["activated"]
                   else "not activated: it did not beat the previous version")
        self.stdout.write(self.style.SUCCESS(
            f"model version #{version.pk} {version.name!r}: held-out accuracy {metrics['held_out']['accuracy']:.3f} "
            f"(balanced {metrics['held_out']['balanced_accuracy']:.3f}) on {training['held_out']} galaxies; "
            f"previous ({metrics['previous_version']}) {baselines['previous version']['accuracy']:.3f}, pixels "
            f"PCA(20)+LR {baselines['pixels PCA(20) + LR']['accuracy']:.3f}; trained on {training['expert_labels']} "
            f"labels, {training['pseudo_labels']} pseudo-labels, {training['with_votes']} with votes in "
            f"{seconds:.0f} s; {outcome}"))
