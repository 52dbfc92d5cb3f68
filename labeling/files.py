"""Serving MEDIA_ROOT and STATIC_ROOT from Django when GALAXY_SERVE_FILES is on (see settings.py).

The settings are read at request time, so a test (or a server whose settings changed) needs no other URL conf.
django.views.static.serve refuses paths that leave the folder.
"""

from django.conf import settings
from django.http import Http404
from django.views.static import serve


def media_file(request, path: str):
    if not settings.GALAXY_SERVE_FILES:
        raise Http404("media files are served by the web server in front of this application")
    return serve(request, path, document_root=settings.MEDIA_ROOT)


def static_file(request, path: str):
    """Collected static files (manage.py collectstatic), for a server without DEBUG. Under DEBUG the development
    server serves static files from the source folders before a request reaches the URL conf."""
    if not settings.GALAXY_SERVE_FILES:
        raise Http404("static files are served by the web server in front of this application")
    return serve(request, path, document_root=settings.STATIC_ROOT)
