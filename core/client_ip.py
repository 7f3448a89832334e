"""The address a request came from, as the sign-in throttle and the audit trail record it."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies of our own the address the outermost
    of them saw (the Nth X-Forwarded-For entry from the right). Entries further left are
    whatever the client sent and are never believed; a header with fewer entries than proxies
    did not come through all of them, so the peer address stands."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    if proxies > 0:
        forwarded = [
            e for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if e.strip()
        ]
        if len(forwarded) >= proxies:
            address = _valid(forwarded[-proxies])
            if address is not None:
                return address
    return _valid(remote) or remote
