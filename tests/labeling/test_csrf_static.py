"""Every way a page sends a POST carries the CSRF token: each <form method="post"> in the templates holds
{% csrf_token %}, and each fetch or XMLHttpRequest with another method than GET in our scripts (static/, not the
vendored bundles, and inline scripts in templates) sends the X-CSRFToken header. Files are found, not listed, so a
new form or script is checked the day it is added."""

import re
from pathlib import Path

from tests.conftest import REPO_ROOT

TEMPLATES = REPO_ROOT / "templates"
STATIC = REPO_ROOT / "static"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

FORM = re.compile(r"<form\b([^>]*)>(.*?)</form\s*>", re.IGNORECASE | re.DOTALL)
POST_METHOD = re.compile(r"""\bmethod\s*=\s*["']?post\b""", re.IGNORECASE)
CSRF_TAG = re.compile(r"{%\s*csrf_token\s*%}")
METHOD_OPTION = re.compile(r"""\bmethod\s*:\s*(?:(["'`])(\w+)\1|(\S))""")
XHR_OPEN = re.compile(r"""\.open\(\s*(?:(["'`])(\w+)\1|(\S))""")


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def script_files() -> list[Path]:
    """Our scripts, and the templates (for inline scripts); static/vendor holds others' bundles, never ours."""
    return sorted(path for path in STATIC.rglob("*.js") if "vendor" not in path.relative_to(STATIC).parts) + \
        template_files()


def post_forms(text: str) -> list[str]:
    return [form.group(0) for form in FORM.finditer(text) if POST_METHOD.search(form.group(1))]


def call_arguments(text: str, start: int) -> str:
    """The text between the parenthesis at ``start`` and its partner, skipping strings and template literals."""
    depth, quote, index = 0, None, start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return text[start + 1:index]
        index += 1
    raise AssertionError(f"unbalanced call at offset {start}")


def unsafe(match: re.Match) -> bool:
    """A literal method other than GET, or a method the code computes (which might be anything)."""
    return match.group(2) is None or match.group(2).upper() not in SAFE_METHODS


def unsafe_requests(text: str) -> list[tuple[str, str]]:
    """(what, its arguments or the file's text) for each fetch or XMLHttpRequest.open whose method is not GET."""
    found = []
    for call in re.finditer(r"\bfetch\s*\(", text):
        arguments = call_arguments(text, call.end() - 1)
        method = METHOD_OPTION.search(arguments)
        if method and unsafe(method):
            found.append(("fetch", arguments))
    if "XMLHttpRequest" in text:
        # The header is set on the request object after open(): look for it anywhere in the file.
        found += [("XMLHttpRequest", text) for opened in XHR_OPEN.finditer(text) if unsafe(opened)]
    return found


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = {path: post_forms(path.read_text(encoding="utf-8")) for path in template_files()}
    assert sum(map(len, forms.values())) >= 8  # login, logout, jobs, training, review: the check sees them
    missing = [f"{path.relative_to(REPO_ROOT)}: {form[:120]!r}" for path, found in forms.items() for form in found
               if not CSRF_TAG.search(form)]
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)


def test_the_login_and_logout_forms_post_with_the_token():
    login = post_forms((TEMPLATES / "registration" / "login.html").read_text(encoding="utf-8"))
    logout = [form for form in post_forms((TEMPLATES / "base.html").read_text(encoding="utf-8")) if "logout" in form]
    assert len(login) == 1 and len(logout) == 1
    assert all(CSRF_TAG.search(form) for form in login + logout)


def test_every_script_request_that_changes_something_sends_the_csrf_header():
    requests = {path: unsafe_requests(path.read_text(encoding="utf-8")) for path in script_files()}
    assert sum(map(len, requests.values())) >= 1  # api.js posts: the check sees it
    missing = [f"{path.relative_to(REPO_ROOT)}: {what} {arguments[:160]!r}" for path, found in requests.items()
               for what, arguments in found if "X-CSRFToken" not in arguments]
    assert not missing, "requests without the X-CSRFToken header:\n" + "\n".join(missing)
    beacons = [path for path in script_files() if "sendBeacon" in path.read_text(encoding="utf-8")]
    assert not beacons, f"navigator.sendBeacon cannot send the CSRF header: {beacons}"


def test_the_checks_see_a_form_or_a_request_without_the_token():
    assert post_forms('<form method="post" action="/x/"><button>Go</button></form>') and not CSRF_TAG.search(
        post_forms('<form method="post" action="/x/"><button>Go</button></form>')[0])
    assert not post_forms('<form method="get" action="/x/"></form>')
    sneaky = 'fetch(url, {method: "DELETE", headers: {Accept: "application/json"}}); fetch(next)'
    assert [what for what, _ in unsafe_requests(sneaky)] == ["fetch"]
    assert unsafe_requests("fetch(url, {method: verb})") and not unsafe_requests("fetch(url, {method: 'GET'})")
    assert unsafe_requests('const r = new XMLHttpRequest(); r.open("POST", url); r.send(body);')
