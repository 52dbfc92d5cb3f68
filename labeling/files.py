"""Serving MEDIA_ROOT from Django when GALAXY_SERVE_FILES is on (see settings.py).

Static files are whitenoise's job (its middleware serves STATIC_ROOT), not this module's. The setting is read at
request time, so a test (or a server whose settings changed) needs no other URL conf. django.views.static.serve
refuses paths that leave the folder by '..' (400), but follows symlinks: ``media_path`` also refuses a name whose
real path, symlinks resolved, is not a file under MEDIA_ROOT.
"""

import posixpath
from pathlib import Path

from django.conf import settings
from django.http import Http404
from django.utils._os import safe_join
from django.views.static import serve


def media_path(name: str) -> Path:
    """The real path of the file that the media name ``name`` stands for, under MEDIA_ROOT.

    Raises:
        SuspiciousFileOperation: for a name that leaves MEDIA_ROOT by '..' (Django answers 400).
        Http404: for a backslash or NUL byte in the name, a symlink that leads outside MEDIA_ROOT, or no such file.
    """
    if "\\" in name or "\x00" in name:
        # Not a separator on POSIX, but one to Windows and to some proxies in front of us: nothing we store has one.
        raise Http404("not a media file name")
    root = Path(settings.MEDIA_ROOT).resolve()
    real = Path(safe_join(root, posixpath.normpath(name).lstrip("/"))).resolve()
    if not real.is_relative_to(root) or not real.is_file():
        raise Http404("no such media file")
    return real


def media_file(request, path: str):
    if not settings.GALAXY_SERVE_FILES:
        raise Http404("media files are served by the web server in front of this application")
    root = Path(settings.MEDIA_ROOT).resolve()
    # The checked real path, not the name asked for: serve() would follow a symlink again.
    return serve(request, media_path(path).relative_to(root).as_posix(), document_root=root)
