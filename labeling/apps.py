"""The labeling app's configuration: its name, and the system checks it registers once Django is ready."""

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Galaxy labelling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from labeling import checks  # noqa: F401  (registers the system checks)
