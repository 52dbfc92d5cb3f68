"""System checks: refuse to start with a media folder that cannot be written; warn (check --deploy) when a TLS proxy
stands in front but the volunteers' rate limits would take the proxy's address for every client's."""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register()
def media_root_is_writable(app_configs, **kwargs):
    root = settings.MEDIA_ROOT
    probe = root if os.path.exists(root) else os.path.dirname(root)
    if probe and os.path.exists(probe) and not os.access(probe, os.W_OK):
        return [Error(f"MEDIA_ROOT {root} is not writable", hint="Set MEDIA_ROOT to a folder this user can write.",
                      id="labeling.E001")]
    return []


@register(Tags.security, deploy=True)
def client_address_behind_a_proxy(app_configs, **kwargs):
    if settings.SECURE_PROXY_SSL_HEADER and not settings.GALAXY_TRUSTED_PROXY_COUNT:
        return [Warning(
            "A TLS proxy stands in front (DJANGO_SECURE_PROXY_SSL_HEADER is set) but GALAXY_TRUSTED_PROXY_COUNT is 0: "
            "the volunteers' per-address rate limits count every request under the proxy's address, so all "
            "volunteers together share one address's limit.",
            hint="Set GALAXY_TRUSTED_PROXY_COUNT=1 and have the proxy append the client's address to "
                 "X-Forwarded-For (docs/deployment.md, Volunteers' limits).", id="labeling.W001")]
    return []
