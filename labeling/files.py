"""Serving MEDIA_ROOT from Django when GALAXY_SERVE_FILES is on (see settings.py).

Static files are whitenoise's job (its middleware serves STATIC_ROOT), not this module's. The setting is read at
request time, so a test (or a server whose settings changed) needs no other URL conf. django.views.static.serve
refuses paths that leave the folder.
"""

from django.conf import settings
from django.http import Http404
from django.views.static import serve


def media_file(request, path: str):
    if not settings.GALAXY_SERVE_FILES:
        raise Http404("media files are served by the web server in front of this application")
    return serve(request, path, document_root=settings.MEDIA_ROOT)
