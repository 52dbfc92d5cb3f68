"""The site's URLs: the admin, the REST API (labeling/api/urls.py), the pages (labeling/pages_urls.py), media."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from labeling import files

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("labeling.api.urls")),
    path("", include("labeling.pages_urls")),
    re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.+)$", files.media_file, name="media-file"),
]
