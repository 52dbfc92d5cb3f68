"""Request rate limits kept in Django's cache, and the client address they count by.

Counters are fixed windows (this minute, this hour): one atomic increment per request and rate, in any cache
backend. A client may get up to twice a rate across the boundary of two windows; for slowing scripts down to a
person's pace that is close enough, and far cheaper than a sliding log. Refused requests count too, so a client that
keeps hammering stays refused until the window ends.

The counters are only as shared as the cache: with several web processes, CACHES must name a shared cache (Redis,
settings.CACHES does so when REDIS_URL is set), or each process allows the whole rate again.
"""

import hashlib
import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache

Rates = tuple[tuple[int, int], ...]  # (requests, per seconds), as labeling.env.env_rates reads them


def rate_limit_hit(*, scope: str, key: str, rates: Rates, now: float | None = None) -> int | None:
    """Count one request of ``key`` (a session, a user, an address) in ``scope`` against each of ``rates``.

    Returns:
        None while every rate allows it, else the seconds (1 or more) until the strictest exceeded window ends.
    """
    now = time.time() if now is None else now
    # Hashed: a session key or an address has no business lying in Redis in clear.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    wait = 0
    for limit, seconds in rates:
        window = int(now // seconds)
        name = f"rate:{scope}:{seconds}:{window}:{digest}"
        cache.add(name, 0, timeout=seconds + 1)
        try:
            count = cache.incr(name)
        except ValueError:  # expired between add and incr: this request opens the window
            cache.set(name, 1, timeout=seconds + 1)
            count = 1
        if count > limit:
            wait = max(wait, math.ceil((window + 1) * seconds - now))
    return max(wait, 1) if wait else None


def client_address(request) -> str:
    """The address a request's rate limits count by.

    REMOTE_ADDR, unless settings.GALAXY_TRUSTED_PROXY_COUNT proxies of our own stand in front: each appends the
    address it saw to settings.GALAXY_CLIENT_IP_HEADER, so the entry that many places from the right is the one the
    outermost trusted proxy saw. Entries further left were written by the client and are never read. An IPv6 client
    counts by its /64, the block one subscriber holds and can rotate addresses in at will.
    """
    address = request.META.get("REMOTE_ADDR", "")
    hops = settings.GALAXY_TRUSTED_PROXY_COUNT
    if hops:
        header = "HTTP_" + settings.GALAXY_CLIENT_IP_HEADER.upper().replace("-", "_")
        entries = [entry.strip() for entry in request.META.get(header, "").split(",") if entry.strip()]
        # Fewer entries than proxies: the request did not come through all of them; keep the socket's address.
        if len(entries) >= hops:
            address = entries[-hops]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.1 from a dual-stack socket is that IPv4 client
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
