"""The Content-Security-Policy header (django-csp, settings.CONTENT_SECURITY_POLICY): every page of the permission
table, as a visitor allowed to open it and as one refused, the admin site, the API and its documentation pages, static
and media files and a 404 answer with the site's policy; only the ReDoc page relaxes it, and only as far as ReDoc
needs. That the browser really finds nothing refused on the pages is tests/browser/test_content_security_policy_...
"""

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests.labeling import test_page_permissions as permissions
from tests.labeling.permission_helpers import client_for

pytestmark = pytest.mark.django_db

site = permissions.site  # the permission tests' world: every page has something to show

POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "style-src-attr": {"'unsafe-inline'"},
    "img-src": {"'self'", "data:", "blob:"},
    "object-src": {"'none'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
}


def policy_of(response) -> dict[str, set[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {response.get('Content-Type')}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


def test_every_page_answers_an_allowed_and_a_refused_visitor_with_the_policy(site, subtests):
    for (name, method), page in permissions.PAGES.items():
        allowed = "admin" if "admin" in page.allowed else "anonymous"
        refused = next((role for role in permissions.ROLES if role not in page.allowed), None)
        for role in filter(None, [allowed, refused]):
            with subtests.test(msg=f"{method} {name} as {role}"), transaction.atomic():
                response = permissions.request(site, role, method, page)
                transaction.set_rollback(True)
                assert policy_of(response) == POLICY


def test_the_admin_site_the_api_static_and_media_files_and_a_missing_page_carry_the_policy(site, admin_user):
    admin = client_for(admin_user)
    for path in [reverse("admin:index"), reverse("admin:axes_accessattempt_changelist"), reverse("admin:login"),
                 reverse("api-docs"), reverse("api-docs") + "?script", reverse("api-dataset-list"),
                 "/static/css/site.css", "/galaxies/999999/", "/no-such-page/"]:
        response = admin.get(path)
        assert response.status_code in {200, 302, 404}, (path, response.status_code)
        assert policy_of(response) == POLICY, path
    assert policy_of(Client().get(reverse("login"))) == POLICY


def test_the_swagger_ui_page_loads_its_start_up_script_from_this_server_not_inline(admin_user):
    page = client_for(admin_user).get(reverse("api-docs"))
    html = page.content.decode()
    assert '<script src="' + reverse("api-docs") + '?script=' in html
    assert "<script>" not in html and "<style>" not in html
    script = client_for(admin_user).get(reverse("api-docs") + "?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def test_only_the_redoc_page_allows_inline_styles_and_blob_workers_and_its_scripts_stay_this_servers(admin_user):
    page = client_for(admin_user).get(reverse("api-redoc"))
    assert page.status_code == 200
    policy = policy_of(page)
    assert policy == {**POLICY, "style-src": {"'self'", "'unsafe-inline'"}, "worker-src": {"'self'", "blob:"}}
    assert "<script>" not in page.content.decode()
