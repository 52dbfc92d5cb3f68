"""A small real dataset for the active-learning tests: 18 Galaxy10 galaxies of three classes with tiny random
features, of which only a few keep their imported labels, so most wait to be labelled."""

from labeling.models import Dataset, ExpertLabel, LabelSchema, QueuePolicy
from tests.labeling.ml_helpers import extracted, galaxy10_subset, indexed


def partly_labelled(folder, *, keep_per_class: int = 2, per_class: int = 6, name: str = "Galaxy10 subset"):
    """(dataset, schema): ``keep_per_class`` galaxies of each class keep their imported label, the rest have none."""
    dataset = galaxy10_subset(folder, per_class=per_class, name=name)
    schema = LabelSchema.objects.get(name="galaxy10")
    kept = set()
    for key in ("2", "5", "8"):
        kept |= set(ExpertLabel.objects.filter(galaxy__dataset=dataset, label_class__key=key).order_by(
            "galaxy_id").values_list("pk", flat=True)[:keep_per_class])
    ExpertLabel.objects.filter(galaxy__dataset=dataset).exclude(pk__in=kept).delete()
    return dataset, schema


def with_features(dataset: Dataset, *, index: bool = True):
    feature_set = extracted(dataset)
    return indexed(feature_set) if index else feature_set


def policy(dataset: Dataset, **fields) -> QueuePolicy:
    row, _ = QueuePolicy.objects.get_or_create(dataset=dataset)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row
