"""Self-supervised pretraining: `python manage.py pretrain --dataset NAME [--backbone resnet18] [--image-size 64]
[--epochs 10] [--seed 0]`."""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, run_here
from labeling.models import ModelVersion
from labeling.services.jobs.lifecycle import JobConflict
from labeling.services.learning.pretrain import pretrain_start


class Command(BaseCommand):
    help = ("Train a backbone on every image of the dataset without labels (contrastive, with flip and rotation "
            "views); the result is a model version to extract features with or to fine-tune from (retrain "
            "--weights VERSION).")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--backbone", default="resnet18", choices=ModelVersion.Backbone.values)
        parser.add_argument("--image-size", type=int, default=64)
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        try:
            job = pretrain_start(dataset=dataset, backbone=options["backbone"], image_size=options["image_size"],
                                 epochs=options["epochs"], seed=options["seed"], enqueue=False)
        except (JobConflict, ValueError) as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.pretrain, job, unit="%")
        version = ModelVersion.objects.get(pk=job.result["model_version"])
        history = version.metrics["history"]
        self.stdout.write(self.style.SUCCESS(
            f"model version #{version.pk} {version.name!r}: {job.result['images']} images, {len(history)} epochs, "
            f"contrastive loss {history[0]['loss']:.3f} -> {history[-1]['loss']:.3f} in {seconds:.0f} s; fine-tune "
            f"from it with: manage.py retrain --dataset {dataset.name!r} --weights {version.pk}"))
