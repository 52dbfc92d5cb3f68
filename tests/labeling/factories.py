"""Small builders for test data, going through the same services the application uses."""

from labeling.models import Galaxy
from labeling.services.imports.datasets import dataset_get_or_create


def make_galaxies(n: int, *, dataset_name: str = "test set", prefix: str = "g") -> list[Galaxy]:
    dataset = dataset_get_or_create(name=dataset_name)
    return [Galaxy.objects.create(dataset=dataset, external_id=f"{prefix}{i}") for i in range(n)]
