"""Sign-in lockouts (django-axes, labeling/lockouts.py): wrong passwords on the token endpoint, the login page and
the admin's login lock the user name and the address for a cool-off; the right password is refused meanwhile and
accepted after it; an admin lifts a lock in the admin; nobody else is locked beyond the per-address rule."""

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.urls import reverse

from labeling.lockouts import lockout_address

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
HOME, AWAY = "10.0.0.1", "10.0.0.2"


def token_client(address: str = HOME) -> Client:
    return Client(REMOTE_ADDR=address)


def ask_token(user_or_name, password: str, address: str = HOME, **extra):
    name = getattr(user_or_name, "username", user_or_name)
    return token_client(address).post(reverse("api-token"), {"username": name, "password": password}, **extra)


def log_in(user_or_name, password: str, address: str = HOME, **extra):
    name = getattr(user_or_name, "username", user_or_name)
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": name, "password": password}, **extra)
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def cool_off_passes(minutes: int = 16) -> None:
    """Every failure recorded so far moves back in time, as if the cool-off (15 minutes) had passed since."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes))


# --- The token endpoint --------------------------------------------------------------------------------------------


def test_ten_wrong_passwords_lock_the_token_endpoint_then_the_right_one_is_refused_until_the_cool_off_ends(expert):
    statuses = [ask_token(expert, f"guess-{n}").status_code for n in range(10)]
    assert statuses == [400] * 4 + [429] * 6

    locked = ask_token(expert, "pw-edwin")
    assert locked.status_code == 429
    assert re.search(r"Try again after \d\d:\d\d UTC", locked.json()["detail"]), locked.json()
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    assert "token" not in locked.json()

    cool_off_passes()
    accepted = ask_token(expert, "pw-edwin")
    assert accepted.status_code == 200 and accepted.json()["token"]


def test_wrong_passwords_below_the_limit_are_plain_400s_and_the_right_one_then_works(expert):
    assert [ask_token(expert, "guess").status_code for _ in range(4)] == [400] * 4
    assert ask_token(expert, "pw-edwin").status_code == 200


def test_a_json_client_of_the_token_endpoint_is_locked_the_same(expert):
    for _ in range(5):
        token_client().post(reverse("api-token"), {"username": expert.username, "password": "guess"},
                            content_type="application/json")
    response = token_client().post(reverse("api-token"), {"username": expert.username, "password": "pw-edwin"},
                                   content_type="application/json")
    assert response.status_code == 429 and "signing in is paused" in response.json()["detail"]


# --- The login page ------------------------------------------------------------------------------------------------


def test_ten_wrong_passwords_on_the_login_page_lock_it_and_the_page_says_when_to_try_again(expert):
    answers = [log_in(expert, f"guess-{n}")[1] for n in range(10)]
    assert [answer.status_code for answer in answers] == [200] * 4 + [429] * 6
    page = answers[-1].content.decode()
    assert 'id="locked-out"' in page and "signing in is paused" in page
    assert re.search(r"try again\s+after <strong>\d\d:\d\d UTC</strong> \(in about 1[45]\xa0minutes\)", page), page
    assert 'name="username"' in page  # the form is there again, for later

    client, refused = log_in(expert, "pw-edwin")
    assert refused.status_code == 429 and not signed_in(client)

    cool_off_passes()
    client, accepted = log_in(expert, "pw-edwin")
    assert accepted.status_code == 302 and signed_in(client)


def test_the_admin_login_counts_and_is_locked_too(expert, admin_user):
    client = Client(REMOTE_ADDR=HOME)
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": admin_user.username, "password": "guess"})
    refused = client.post(reverse("admin:login"), {"username": admin_user.username, "password": "pw-ada"})
    assert refused.status_code == 429 and not signed_in(client)
    assert "signing in is paused" in refused.content.decode()


def test_failures_on_the_login_page_and_the_token_endpoint_add_up(expert):
    for _ in range(3):
        log_in(expert, "guess")
    assert ask_token(expert, "guess").status_code == 400
    assert ask_token(expert, "guess").status_code == 429


# --- Who is locked -------------------------------------------------------------------------------------------------


def test_another_user_elsewhere_is_not_locked_but_the_locked_user_is_refused_from_anywhere(expert, second_expert):
    for _ in range(5):
        ask_token(expert, "guess", address=HOME)
    assert ask_token(second_expert, "pw-vera", address=AWAY).status_code == 200
    assert ask_token(expert, "pw-edwin", address=AWAY).status_code == 429  # per user: a new address does not help
    client, response = log_in(second_expert, "pw-vera", address=AWAY)
    assert response.status_code == 302 and signed_in(client)


def test_an_address_that_failed_too_often_is_locked_for_every_user_name(expert, second_expert):
    for n in range(5):
        ask_token(f"nobody-{n}", "guess", address=HOME)  # one address trying many names
    assert ask_token(second_expert, "pw-vera", address=HOME).status_code == 429
    assert log_in(expert, "pw-edwin", address=HOME)[1].status_code == 429
    assert ask_token(second_expert, "pw-vera", address=AWAY).status_code == 200


def test_a_client_cannot_escape_the_address_rule_with_a_forwarded_for_header_of_its_own(second_expert):
    for n in range(5):
        ask_token(f"nobody-{n}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert ask_token(second_expert, "pw-vera", HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


def test_behind_a_trusted_proxy_the_address_the_proxy_saw_is_the_one_counted(settings, second_expert):
    settings.GALAXY_TRUSTED_PROXY_COUNT = 1
    proxy = "172.16.0.9"
    for n in range(5):
        ask_token(f"nobody-{n}", "guess", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert ask_token(second_expert, "pw-vera", address=proxy,
                     HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client behind the same proxy is not locked by the first one's failures.
    assert ask_token(second_expert, "pw-vera", address=proxy,
                     HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200


def test_the_limit_and_the_cool_off_come_from_the_settings(settings, expert):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    assert [ask_token(expert, "guess").status_code for _ in range(2)] == [400, 429]
    cool_off_passes(minutes=2)
    assert ask_token(expert, "pw-edwin").status_code == 200


@pytest.mark.parametrize(("address", "expected"), [("198.51.100.4", "198.51.100.4"),
                                                   ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
                                                   ("", None)])
def test_the_address_kept_is_an_ip_address_an_ipv6_client_by_its_64_block(rf, address, expected):
    request = rf.post("/login/", REMOTE_ADDR=address)
    assert lockout_address(request) == expected


# --- The admin -----------------------------------------------------------------------------------------------------


def test_an_admin_sees_the_lock_in_the_admin_and_lifts_it(expert, admin_user):
    for _ in range(5):
        ask_token(expert, "guess")
    assert ask_token(expert, "pw-edwin").status_code == 429

    admin = Client()
    admin.force_login(admin_user)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist") + "?locked_out=yes")
    assert listing.status_code == 200 and expert.username in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=expert.username)
    lifted = admin.post(reverse("admin:axes_accessattempt_changelist"),
                        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert lifted.status_code == 302 and not AccessAttempt.objects.exists()

    assert ask_token(expert, "pw-edwin").status_code == 200


def test_the_lockouts_in_the_admin_are_for_admins_only(expert):
    ask_token(expert, "guess")
    client = Client()
    client.force_login(expert)
    response = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# --- Settings ------------------------------------------------------------------------------------------------------


def _settings_process(**env: str) -> subprocess.CompletedProcess:
    code = ("from labeling import settings as s; "
            "print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_LOGIN_", "DJANGO_SETTINGS"))}
    clean.update({"DJANGO_SECRET_KEY": "k" * 60, **env})
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=clean, capture_output=True, text=True,
                          timeout=60)


def test_the_settings_default_to_five_failures_and_fifteen_minutes_and_read_the_environment():
    assert _settings_process().stdout.split() == ["5", "900"]
    assert _settings_process(GALAXY_LOGIN_FAILURE_LIMIT="10",
                             GALAXY_LOGIN_LOCKOUT_MINUTES="60").stdout.split() == ["10", "3600"]


@pytest.mark.parametrize("variable", ["GALAXY_LOGIN_FAILURE_LIMIT", "GALAXY_LOGIN_LOCKOUT_MINUTES"])
def test_the_settings_refuse_zero_naming_the_variable(variable):
    process = _settings_process(**{variable: "0"})
    assert process.returncode != 0 and f"ImproperlyConfigured: {variable}=0" in process.stderr


@pytest.mark.django_db
def test_a_user_name_longer_than_any_users_is_a_400_naming_the_field_on_the_token_endpoint_and_the_login_page():
    """Found by the API fuzzer on PostgreSQL: the attempt's 300-character name overflowed the lockouts' column."""
    response = ask_token("x" * 300, "wrong")
    assert response.status_code == 400 and "username" in response.json()
    client, page = log_in("x" * 300, "wrong")
    assert page.status_code == 200 and not signed_in(client)  # the form again, with its error
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["x" * 150]  # stored cut, not refused
