"""Static file storage for production: whitenoise's compressed manifest storage, source-map comments left alone."""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _names_a_source_map(rule) -> bool:
    regex = rule[0] if isinstance(rule, (tuple, list)) else rule
    return "sourceMappingURL" in regex


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed copies of the static files, and a manifest that {% static %} reads.

    The vendored bundles (static/vendor/redoc, static/vendor/swagger-ui) end with a `sourceMappingURL` comment naming
    a .map file they do not ship. Django's manifest storage rewrites such a reference to the map's hashed name and,
    the map being absent, stops collectstatic. Source maps only serve the browser's developer tools, so those
    comments are kept as they are (the tools get a 404); `url()` and `@import` in CSS are still rewritten, and a
    missing file there still stops collectstatic.
    """

    patterns = tuple(
        (glob, tuple(rule for rule in rules if not _names_a_source_map(rule)))
        for glob, rules in ManifestStaticFilesStorage.patterns
    )
