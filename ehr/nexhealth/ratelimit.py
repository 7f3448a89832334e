"""NexHealth's rate-limit buckets, for the shared limiter in ``ehr.ratelimit``.

Buckets mirror NexHealth's published limits, per API key: `overall` 100/s; `appointments_get`
10/s (GET /appointments); `slots` 10/s (GET /available_slots, /appointment_slots);
`patients_appointments` 1,000/min (anything under /patients or /appointments); `other` 2,000/min.
A practice may be set lower (e.g. 100/min overall) on its connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr.ratelimit import Limit

DEFAULT_LIMITS: dict[str, Limit] = {
    "overall": Limit(100, 1.0),
    "appointments_get": Limit(10, 1.0),
    "slots": Limit(10, 1.0),
    "patients_appointments": Limit(1000, 60.0),
    "other": Limit(2000, 60.0),
}
BUCKETS = tuple(DEFAULT_LIMITS)


def buckets_for(method: str, path: str) -> list[str]:
    """The buckets one request counts against, as NexHealth counts them (path without query)."""
    method = method.upper()
    path = "/" + path.lstrip("/")
    names = ["overall"]
    if path.startswith(("/patients", "/appointments")):
        names.append("patients_appointments")
    else:
        names.append("other")
    if method == "GET" and path.rstrip("/") == "/appointments":
        names.append("appointments_get")
    if method == "GET" and path.rstrip("/") in ("/available_slots", "/appointment_slots"):
        names.append("slots")
    return names


def parse_limits(overrides: Mapping[str, Any] | None) -> dict[str, Limit]:
    """`{"overall": {"limit": 100, "window_seconds": 60}}` (or `[100, 60]`) over the defaults."""
    limits = dict(DEFAULT_LIMITS)
    for bucket, spec in (overrides or {}).items():
        if bucket not in DEFAULT_LIMITS:
            raise ValueError(f"unknown rate-limit bucket {bucket!r}; one of {', '.join(BUCKETS)}")
        if isinstance(spec, Mapping):
            limit, window = spec.get("limit"), spec.get("window_seconds", 1.0)
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            limit, window = spec
        else:
            raise ValueError(f"{bucket}: expected {{limit, window_seconds}}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{bucket}.limit must be a positive integer")
        if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
            raise ValueError(f"{bucket}.window_seconds must be positive")
        limits[bucket] = Limit(int(limit), float(window))
    return limits
