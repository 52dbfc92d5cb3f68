"""Rate limits kept in Django's cache, the rates as settings spell them, and the client address they count by:
REMOTE_ADDR unless a trusted proxy's header says otherwise, never what a client wrote itself."""

import json
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from labeling.env import env_rates
from labeling.ratelimit import client_address, rate_limit_hit
from tests.conftest import REPO_ROOT

MINUTE = ((3, 60),)


def hits(key: str, times: int, *, rates=MINUTE, now: float = 6000.0, scope: str = "test") -> list[int | None]:
    return [rate_limit_hit(scope=scope, key=key, rates=rates, now=now) for _ in range(times)]


def test_requests_within_the_rate_pass_and_the_next_one_waits_for_the_window_to_end():
    assert hits("a", 3, now=6010.0) == [None, None, None]
    assert hits("a", 2, now=6010.0) == [50, 50]  # the minute 6000-6060 ends in 50 s


def test_a_new_window_starts_the_count_again():
    hits("a", 4, now=6010.0)
    assert hits("a", 1, now=6061.0) == [None]


def test_keys_and_scopes_count_apart():
    hits("a", 3)
    assert hits("b", 1) == [None]
    assert hits("a", 1, scope="other") == [None]
    assert hits("a", 1) == [60]


def test_the_strictest_exceeded_rate_says_how_long_to_wait():
    rates = ((2, 60), (3, 3600))
    assert hits("a", 3, rates=rates, now=120.0) == [None, None, 60]
    # Next minute: the minute allows again, the hour does not, until 3600.
    assert hits("a", 1, rates=rates, now=190.0) == [3600 - 190]


def test_no_rates_means_no_limit():
    assert hits("a", 100, rates=()) == [None] * 100


@pytest.mark.parametrize(("raw", "expected"), [
    ("10/minute", ((10, 60),)),
    ("60/minute, 600/hour", ((60, 60), (600, 3600))),
    ("5/s,2/day", ((5, 1), (2, 86400))),
    ("3/Minutes", ((3, 60),)),
    ("", ()),
])
def test_rates_read_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_RATE", raw)
    assert env_rates("SOME_RATE", "1/day") == expected


def test_rates_fall_back_to_the_default():
    assert env_rates("SURELY_UNSET_RATE", "10/minute") == ((10, 60),)


@pytest.mark.parametrize("raw", ["10", "ten/minute", "0/minute", "10/fortnight", "-1/hour", "10/minute,x"])
def test_a_malformed_rate_is_refused_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("SOME_RATE", raw)
    with pytest.raises(ImproperlyConfigured, match="SOME_RATE=.*is not a rate such as 10/minute"):
        env_rates("SOME_RATE", "1/day")


def request(remote: str = "203.0.113.9", **headers):
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


def test_the_address_is_remote_addr_and_a_forwarded_for_header_sent_by_the_client_is_ignored(settings):
    assert settings.GALAXY_TRUSTED_PROXY_COUNT == 0
    assert client_address(request(HTTP_X_FORWARDED_FOR="198.51.100.1")) == "203.0.113.9"
    assert client_address(request(HTTP_X_REAL_IP="198.51.100.1", HTTP_CLIENT_IP="198.51.100.2")) == "203.0.113.9"


def test_behind_one_trusted_proxy_the_address_it_appended_counts_not_the_ones_the_client_wrote(settings):
    settings.GALAXY_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    # The client wrote "198.51.100.1"; the proxy appended the address it saw.
    forged = request(proxy, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")
    assert client_address(forged) == "203.0.113.9"
    assert client_address(request(proxy, HTTP_X_FORWARDED_FOR="203.0.113.9")) == "203.0.113.9"
    # Not through the proxy at all (no header): the socket's address.
    assert client_address(request(proxy)) == proxy


def test_behind_two_trusted_proxies_the_outer_ones_entry_counts(settings):
    settings.GALAXY_TRUSTED_PROXY_COUNT = 2
    chain = request("10.0.0.3", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9, 10.0.0.2")
    assert client_address(chain) == "203.0.113.9"


def test_the_header_of_the_trusted_proxy_can_be_another_one(settings):
    settings.GALAXY_TRUSTED_PROXY_COUNT = 1
    settings.GALAXY_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_address(request("10.0.0.2", HTTP_X_REAL_IP="203.0.113.9",
                                  HTTP_X_FORWARDED_FOR="198.51.100.1")) == "203.0.113.9"


def test_an_ipv6_client_counts_by_its_64_block_and_a_mapped_ipv4_one_as_ipv4():
    first = client_address(request("2001:db8:1:2:aaaa::1"))
    assert first == "2001:db8:1:2::/64" == client_address(request("2001:db8:1:2:bbbb::7"))
    assert client_address(request("2001:db8:1:3::1")) != first
    assert client_address(request("::ffff:203.0.113.9")) == "203.0.113.9"


_PRINT = """
import json
from labeling import settings as s
print(json.dumps({name: getattr(s, name) for name in dir(s) if name.startswith(("GALAXY_CLASSIFY_", "GALAXY_TRUSTED",
                                                                                "GALAXY_CLIENT", "CACHES"))}))
"""


def load_settings(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """labeling.settings in a fresh interpreter, as gunicorn loads it, with only the variables given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "DJANGO_")) and k != "REDIS_URL"}
    clean.update(VAR_DIR=str(tmp_path / "var"), DJANGO_SECRET_KEY="k" * 60, **env)
    return subprocess.run([sys.executable, "-c", _PRINT], cwd=REPO_ROOT, env=clean, capture_output=True, text=True,
                          timeout=60)


def test_the_settings_default_to_remote_addr_a_process_cache_and_a_persons_pace(tmp_path):
    process = load_settings(tmp_path)
    assert process.returncode == 0, process.stderr
    loaded = json.loads(process.stdout)
    assert loaded["GALAXY_TRUSTED_PROXY_COUNT"] == 0
    assert loaded["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert loaded["GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER"] == [[10, 60]]
    assert loaded["GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS"] == [[60, 60], [600, 3600]]
    assert loaded["GALAXY_CLASSIFY_OFFER_TTL"] == 4 * 3600


def test_several_web_processes_share_their_counters_in_redis_when_redis_url_is_set(tmp_path):
    process = load_settings(tmp_path, REDIS_URL="redis://cache.example:6379/2", GALAXY_TRUSTED_PROXY_COUNT="1",
                            GALAXY_CLIENT_IP_HEADER="X-Real-IP", GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS="")
    assert process.returncode == 0, process.stderr
    loaded = json.loads(process.stdout)
    assert loaded["CACHES"]["default"]["BACKEND"].endswith("RedisCache")
    assert loaded["CACHES"]["default"]["LOCATION"] == "redis://cache.example:6379/2"
    assert (loaded["GALAXY_TRUSTED_PROXY_COUNT"], loaded["GALAXY_CLIENT_IP_HEADER"]) == (1, "X-Real-IP")
    assert loaded["GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS"] == []


@pytest.mark.parametrize(("variable", "value"), [("GALAXY_CLIENT_IP_HEADER", "X-Forwarded-For: 1.2.3.4"),
                                                 ("GALAXY_TRUSTED_PROXY_COUNT", "-1"),
                                                 ("GALAXY_CLASSIFY_OFFER_TTL", "10"),
                                                 ("GALAXY_CLASSIFY_OFFERS_PER_ADDRESS", "120/minute,lots/hour")])
def test_the_settings_refuse_a_bad_value_naming_the_variable(tmp_path, variable, value):
    process = load_settings(tmp_path, **{variable: value})
    assert process.returncode != 0
    assert f"ImproperlyConfigured: {variable}=" in process.stderr


def test_check_deploy_warns_when_a_tls_proxy_stands_in_front_but_no_proxy_is_trusted_for_addresses(settings):
    from labeling.checks import client_address_behind_a_proxy

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.GALAXY_TRUSTED_PROXY_COUNT = 0
    assert [warning.id for warning in client_address_behind_a_proxy(None)] == ["labeling.W001"]
    settings.GALAXY_TRUSTED_PROXY_COUNT = 1
    assert client_address_behind_a_proxy(None) == []
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.GALAXY_TRUSTED_PROXY_COUNT = 0
    assert client_address_behind_a_proxy(None) == []
