"""The application's URLs plus the media files, for the live server of the browser tests.

labeling/urls.py serves media only when DEBUG was on at import time; tests run with DEBUG off and a MEDIA_ROOT per
test, so this view reads MEDIA_ROOT at request time instead.
"""

from django.conf import settings
from django.urls import re_path
from django.views.static import serve

from labeling.urls import urlpatterns as application_urls


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    *application_urls,
    re_path(r"^media/(?P<path>.*)$", media),
]
