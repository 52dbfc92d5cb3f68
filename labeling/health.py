"""GET /healthz/: whether this web process can serve, for container health checks and load balancers.

Answered by a middleware at the head of the chain rather than by a view, because a health check calls the
container from inside (http://127.0.0.1:8000) with a Host that ALLOWED_HOSTS rightly refuses and over plain HTTP
that SECURE_SSL_REDIRECT would redirect: neither applies to this one path, and nothing else bypasses them.
"""

import json
import logging

from django.db import DatabaseError, connection
from django.http import HttpResponse

PATH = "/healthz/"
logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        # Logged, not shown: the reason may name hosts and users, and the endpoint answers anyone.
        logger.exception("health check: the database does not answer")
        return False


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != PATH:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
            return response
        healthy = database_answers()
        body = {"status": "ok" if healthy else "unavailable", "database": "ok" if healthy else "unreachable"}
        response = HttpResponse(json.dumps(body), content_type="application/json", status=200 if healthy else 503)
        response["Cache-Control"] = "no-store"
        return response
