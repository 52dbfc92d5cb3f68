"""Self-supervised pretraining.

`python manage.py pretrain --dataset NAME [--backbone resnet18] [--image-size 64] [--epochs 10] [--seed 0]` trains
on a dataset's images and records a model version; `python manage.py pretrain --folder DIR [--folder DIR ...]
--output FILE [--epochs 40] [--seed 0]` trains the galaxy backbone recipe (mlcore.training.galaxy_backbone) on image
folders and writes an fp16 checkpoint file with a manifest of the images beside it: how the shipped
``--weights galaxy`` file was made (see its model card).
"""

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, run_here
from labeling.management.progress import PhaseBars
from labeling.models import ModelVersion
from labeling.services.jobs.lifecycle import JobConflict
from labeling.services.learning.pretrain import pretrain_start


class Command(BaseCommand):
    help = ("Train a backbone on images without labels (contrastive, with galaxy views): on a dataset's images "
            "(--dataset, the result is a model version to extract features with or to fine-tune from: retrain "
            "--weights VERSION), or on image folders (--folder ... --output FILE, the galaxy backbone recipe).")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", help="the dataset's name")
        parser.add_argument("--folder", action="append", default=[],
                            help="an image folder (repeatable); with --output, instead of --dataset")
        parser.add_argument("--output", help="checkpoint file to write (with --folder)")
        parser.add_argument("--backbone", default="resnet18", choices=ModelVersion.Backbone.values)
        parser.add_argument("--image-size", type=int, default=64)
        parser.add_argument("--epochs", type=int, help="passes over the images (default 10, or 40 with --folder)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-morphology-targets", action="store_true",
                            help="with --folder: views only, no morphology measurements to predict")
        parser.add_argument("--device", default="auto", help="with --folder: auto, cpu or cuda[:N]")
        parser.add_argument("--method", default="simclr", choices=("simclr", "moco"),
                            help="with --folder: SimCLR (in-batch negatives) or MoCo v2 (momentum encoder, queue)")

    def handle(self, *args, **options):
        if options["folder"]:
            return self._from_folders(options)
        if options["output"]:
            raise CommandError("--output goes with --folder")
        if not options["dataset"]:
            raise CommandError("give --dataset NAME, or --folder DIR ... --output FILE")
        dataset = dataset_named(options["dataset"])
        try:
            job = pretrain_start(dataset=dataset, backbone=options["backbone"], image_size=options["image_size"],
                                 epochs=options["epochs"] or 10, seed=options["seed"], enqueue=False)
        except (JobConflict, ValueError) as exc:
            raise CommandError(str(exc)) from None
        job, seconds = run_here(tasks.pretrain, job, unit="%", stream=self.stderr)
        version = ModelVersion.objects.get(pk=job.result["model_version"])
        history = version.metrics["history"]
        self.stdout.write(self.style.SUCCESS(
            f"model version #{version.pk} {version.name!r}: {job.result['images']} images, {len(history)} epochs, "
            f"contrastive loss {history[0]['loss']:.3f} -> {history[-1]['loss']:.3f} in {seconds:.0f} s; fine-tune "
            f"from it with: manage.py retrain --dataset {dataset.name!r} --weights {version.pk}"))

    def _from_folders(self, options):
        from mlcore.training.galaxy_backbone import BackboneRecipe, make_galaxy_backbone

        if options["dataset"] or not options["output"] or options["backbone"] != "resnet18":
            raise CommandError("--folder takes --output FILE and no --dataset; the recipe trains a resnet18")
        recipe = BackboneRecipe(epochs=options["epochs"] or BackboneRecipe.epochs, image_size=options["image_size"],
                                seed=options["seed"], targets=not options["no_morphology_targets"],
                                method=options["method"], device=options["device"])
        # One bar over the whole run (in a log: a line per tenth and at least one a minute), the epoch in its detail.
        bars = PhaseBars(unit="step", stream=self.stderr, every=60.0)

        def progress(step: dict) -> None:
            bars((step["epoch"] - 1) * step["batches"] + step["batch"], step["epochs"] * step["batches"],
                 f"training: epoch {step['epoch']}/{step['epochs']}, loss {step['loss']:.3f}, "
                 f"{step['images_per_s']:.0f} images/s, {step['eta_s']:.0f} s left")

        try:
            with bars:
                result = make_galaxy_backbone(options["folder"], options["output"], recipe=recipe,
                                              progress=progress, log=self.stdout.write)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"wrote {result.checkpoint}: loss {result.history[0]:.3f} -> {result.history[-1]:.3f} in "
            f"{result.seconds:.0f} s on {result.device}"))
