"""The API's documentation pages (drf-spectacular's Swagger UI and ReDoc views), open to anyone signed in."""

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from labeling.api.permissions import IsSignedIn


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: it describes endpoints, not data."""

    permission_classes = [IsSignedIn]


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served from this same URL (?script) rather than inline, so that the
    site's Content-Security-Policy (script-src 'self') holds here too."""

    permission_classes = [IsSignedIn]


@method_decorator(csp_update({"style-src": [UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}), name="get")
class RedocView(SpectacularRedocView):
    """ReDoc draws a "by Redocly" logo from its makers' CDN whatever its options say; the site's policy refuses
    images from anywhere but this server, so the page never calls out (the logo's own error handler hides it).

    ReDoc styles itself with <style> elements it writes at run time (styled-components), which style-src 'self'
    refuses, and runs its search index in a worker made from a blob: URL of its own: this page alone allows inline
    styles and blob: workers. Scripts stay 'self' only, as everywhere."""

    permission_classes = [IsSignedIn]
