# The version that was active site-wide becomes the active version of every dataset that has its features (a
# FeatureSet of it), with one Activation each so that the history starts there; its status becomes "ready".
# Datasets without its features keep none: they go on serving their latest features, as they did before.
# A separate migration from 0009: on PostgreSQL, rows written with deferred foreign-key checks must not share a
# transaction with later ALTER TABLEs of the same tables.

from django.db import migrations
from django.db.models import Max


def active_version_to_its_datasets(apps, schema_editor):
    Activation = apps.get_model('labeling', 'Activation')
    Dataset = apps.get_model('labeling', 'Dataset')
    FeatureSet = apps.get_model('labeling', 'FeatureSet')
    ModelVersion = apps.get_model('labeling', 'ModelVersion')
    for version in ModelVersion.objects.filter(status='active'):
        served = (FeatureSet.objects.filter(model_version=version).order_by().values('dataset')
                  .annotate(since=Max('index_built_at'), updated=Max('updated_at')))
        for row in served:
            Dataset.objects.filter(pk=row['dataset']).update(active_version=version)
            # When it became active is not recorded: the feature set's index build (activation follows it) is the
            # nearest moment known.
            Activation.objects.create(dataset_id=row['dataset'], model_version=version,
                                      activated_at=row['since'] or row['updated'])
    ModelVersion.objects.filter(status='active').update(status='ready')


def most_recent_active_version_site_wide(apps, schema_editor):
    """Back to one active version for the whole site (0009's constraint allows one): the most recently activated."""
    Activation = apps.get_model('labeling', 'Activation')
    Dataset = apps.get_model('labeling', 'Dataset')
    ModelVersion = apps.get_model('labeling', 'ModelVersion')
    active = Dataset.objects.exclude(active_version=None).values_list('active_version', flat=True)
    latest = (Activation.objects.filter(model_version__in=active).order_by('-activated_at', '-pk')
              .values_list('model_version', flat=True).first())
    if latest is None:
        latest = active.order_by('-active_version__created_at').first()
    if latest is not None:
        ModelVersion.objects.filter(pk=latest).update(status='active')


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0009_active_version_per_dataset'),
    ]

    operations = [
        migrations.RunPython(active_version_to_its_datasets, most_recent_active_version_site_wide),
    ]
