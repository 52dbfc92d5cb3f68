"""Datasets and their galaxies."""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Dataset(models.Model):
    """A named collection of galaxies, usually one survey's catalogue or one import."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    survey = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=200, blank=True)
    attribution = models.TextField(blank=True, help_text="Who to cite when the images or votes are used.")
    created_at = models.DateTimeField(default=timezone.now)
    # Each dataset has its own active version: a backbone trained on one survey must not switch another survey's
    # neighbours, clusters and queues to features it never had. Set only by model_version_activate, which also
    # records the switch in the dataset's activation history (what its rollback reads).
    active_version = models.ForeignKey(
        "labeling.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="active_for",
        help_text="The model version whose features serve this dataset's pages; empty: the latest features do.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def galaxy_image_path(galaxy: "Galaxy", filename: str) -> str:
    return f"galaxies/{galaxy.dataset.slug}/{filename}"


def galaxy_thumbnail_path(galaxy: "Galaxy", filename: str) -> str:
    return f"thumbnails/{galaxy.dataset.slug}/{filename}"


class Galaxy(models.Model):
    """One galaxy of a dataset. Catalogue-only galaxies (votes without pixels) have no image."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="galaxies")
    external_id = models.CharField(max_length=100, help_text="The catalogue's identifier, unique in the dataset.")
    image = models.ImageField(upload_to=galaxy_image_path, blank=True, max_length=300)
    thumbnail = models.ImageField(upload_to=galaxy_thumbnail_path, blank=True, max_length=300)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    ra = models.FloatField("right ascension (deg)", null=True, blank=True)
    dec = models.FloatField("declination (deg)", null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the image file's bytes.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Catalogue columns kept as they came.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "id"]
        verbose_name_plural = "galaxies"
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="galaxy_unique_external_id"),
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], condition=~Q(content_hash=""), name="galaxy_unique_image"
            ),
            models.CheckConstraint(
                condition=Q(ra__isnull=True) | (Q(ra__gte=0) & Q(ra__lt=360)), name="galaxy_ra_in_range"
            ),
            models.CheckConstraint(
                condition=Q(dec__isnull=True) | (Q(dec__gte=-90) & Q(dec__lte=90)), name="galaxy_dec_in_range"
            ),
        ]

    def __str__(self):
        return f"{self.dataset.name}:{self.external_id}"

    @property
    def has_image(self) -> bool:
        return bool(self.image)
