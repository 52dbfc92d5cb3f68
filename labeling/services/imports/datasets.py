"""Datasets, created on first use by the importers."""

from django.utils.text import slugify

from labeling.models import Dataset


def dataset_get_or_create(*, name: str, **defaults) -> Dataset:
    """The dataset called ``name``, created (with a unique slug) when missing. ``defaults`` fill a new one only.

    Raises:
        ValueError: for an empty name.
    """
    name = name.strip()
    if not name:
        raise ValueError("a dataset needs a name")
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is not None:
        return dataset
    base = slugify(name) or "dataset"
    slug, n = base, 1
    while Dataset.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return Dataset.objects.create(name=name, slug=slug, **defaults)
