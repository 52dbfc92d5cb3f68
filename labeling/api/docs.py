"""The API's documentation pages (drf-spectacular's Swagger UI and ReDoc views), open to anyone signed in."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from labeling.api.permissions import IsSignedIn


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: it describes endpoints, not data."""

    permission_classes = [IsSignedIn]


class SwaggerView(SpectacularSwaggerView):
    permission_classes = [IsSignedIn]


class RedocView(SpectacularRedocView):
    """ReDoc draws a "by Redocly" logo from its makers' CDN whatever its options say; images from anywhere but
    this server are refused here, so the page never calls out (the logo's own error handler hides it)."""

    permission_classes = [IsSignedIn]

    @extend_schema(exclude=True)  # a page about the API, not part of it (drf-spectacular's own get says so too)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = "img-src 'self' data: blob:"
        return response
