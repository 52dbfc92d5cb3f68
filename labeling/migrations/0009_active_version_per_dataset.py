# Each dataset gets its own active model version (Dataset.active_version) and an activation history (Activation);
# the site-wide "active" status of ModelVersion and its one-active constraint go. The data moves in 0010.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0008_job_import_kinds'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='active_version',
            field=models.ForeignKey(blank=True, help_text="The model version whose features serve this dataset's pages; empty: the latest features do.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='active_for', to='labeling.modelversion'),
        ),
        migrations.CreateModel(
            name='Activation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('activated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('activated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activations', to='labeling.dataset')),
                ('model_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activations', to='labeling.modelversion')),
            ],
            options={
                'ordering': ['-activated_at', '-id'],
                'indexes': [models.Index(fields=['dataset', '-activated_at'], name='activation_dataset_latest')],
            },
        ),
        migrations.RemoveConstraint(
            model_name='modelversion',
            name='model_version_one_active',
        ),
        # Choices only (no SQL): rows still saying "active" are turned "ready" by 0010, which knows which datasets
        # they served.
        migrations.AlterField(
            model_name='modelversion',
            name='status',
            field=models.CharField(choices=[('queued', 'queued'), ('training', 'training'), ('ready', 'ready'), ('failed', 'failed')], default='ready', max_length=10),
        ),
    ]
