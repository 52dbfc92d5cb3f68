"""Extract ResNet features of a dataset's galaxy images: `python manage.py extract_features --dataset NAME
[--backbone resnet18] [--weights galaxy|random|imagenet|PATH] [--image-size S]`. Galaxies that already have features
under the same model are skipped, so a run that was stopped continues where it was."""

import os
from functools import partial

from django.core.management.base import BaseCommand, CommandError

from labeling import tasks
from labeling.management.jobs import dataset_named, run_here
from labeling.models import FeatureSet, ModelVersion
from labeling.services.learning.jobs import extraction_start
from labeling.services.learning.model_versions import ModelVersionError, model_version_get_or_create


class Command(BaseCommand):
    help = "Extract feature vectors of a dataset's galaxy images with a ResNet backbone (its final layer removed)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="the dataset's name")
        parser.add_argument("--backbone", default="resnet18", choices=ModelVersion.Backbone.values)
        parser.add_argument("--weights", default="galaxy",
                            help="galaxy (the shipped galaxy backbone, the default), random, imagenet (needs a "
                                 "download, or torch's cache), or a weights file")
        parser.add_argument("--image-size", type=int, help="pixels per side, 32-424 (default: the checkpoint's "
                                                           "own, 64 for galaxy; 224 for random and imagenet)")
        parser.add_argument("--seed", type=int, default=0, help="seed of random weights")
        parser.add_argument("--rotation-invariant", action="store_true",
                            help="average each feature over the 8 flips and quarter turns of the image")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--workers", type=int, help="image-decoding processes (default: the loader's own)")
        parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")

    def handle(self, *args, **options):
        dataset = dataset_named(options["dataset"])
        try:
            version = model_version_get_or_create(backbone=options["backbone"], weights=options["weights"],
                                                  image_size=options["image_size"], seed=options["seed"])
            extra = {"batch_size": options["batch_size"], "threads": options["threads"]}
            if options["workers"] is not None:
                extra["num_workers"] = options["workers"]
            job = extraction_start(dataset=dataset, model_version=version, enqueue=False,
                                   rotation_invariant=options["rotation_invariant"], **extra)
        except (ModelVersionError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        # All of it here, in this process, with a progress bar: no chunks for the workers.
        job, seconds = run_here(partial(tasks.extract_features, split=False), job, unit="img", stream=self.stderr)
        result = job.result
        feature_set = FeatureSet.objects.get(pk=result["feature_set"])
        rate = f", {result['added'] / seconds:.1f} images/s" if result["added"] else ""
        failed = f"; {result['failed']} could not be read (listed on feature set #{feature_set.pk})" \
            if result["failed"] else ""
        self.stdout.write(self.style.SUCCESS(
            f"{dataset.name}: {feature_set.count} galaxies have {version.name} features "
            f"({result['added']} new in {seconds:.1f} s{rate}){failed}; feature set #{feature_set.pk}"))
