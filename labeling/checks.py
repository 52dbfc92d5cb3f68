"""System checks: refuse to start with a media folder that cannot be written."""

import os

from django.conf import settings
from django.core.checks import Error, register


@register()
def media_root_is_writable(app_configs, **kwargs):
    root = settings.MEDIA_ROOT
    probe = root if os.path.exists(root) else os.path.dirname(root)
    if probe and os.path.exists(probe) and not os.access(probe, os.W_OK):
        return [Error(f"MEDIA_ROOT {root} is not writable", hint="Set MEDIA_ROOT to a folder this user can write.",
                      id="labeling.E001")]
    return []
