"""Start-up and run-time settings of the sandbox.

Start-up settings come from the command line (or the environment); the run-time ones can be
changed through ``PATCH /_admin/config`` so a test can, say, shorten the token lifetime or
compress the webhook retry schedule without restarting the server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_API_KEY = "sandbox-api-key"
DEFAULT_ADMIN_TOKEN = "sandbox-admin"
STATE_FILE_NAME = "sandbox-state.json"


@dataclass
class ServerConfig:
    """What the process is started with (fixed for its lifetime)."""

    host: str = "127.0.0.1"
    port: int = 8100
    data_dir: Path | None = None
    api_keys: list[str] = field(default_factory=lambda: [DEFAULT_API_KEY])
    admin_token: str = DEFAULT_ADMIN_TOKEN
    fd: int | None = None
    log_level: str = "warning"
    access_log: bool = False

    @property
    def state_file(self) -> Path | None:
        return self.data_dir / STATE_FILE_NAME if self.data_dir else None


@dataclass
class RuntimeSettings:
    """Knobs that tests turn while the server runs (not persisted)."""

    token_ttl_seconds: float = 3600.0
    # Multiplies the webhook retry schedule (30 s ... 48 h); 0.001 turns 30 s into 30 ms.
    time_scale: float = 1.0
    # How long after the POST an appointment (or document) insertion completes or fails.
    insertion_delay_ms: int = 150
    webhook_timeout_seconds: float = 5.0
    # NexHealth only inserts appointments in the future; staff-side (admin EHR) writes may be past.
    reject_past_appointments: bool = True
    # Without days= the slot search looks this far ahead for next_available_date.
    next_available_horizon_days: int = 90

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update after validating every key, so a bad request changes nothing."""
        known = {f.name: f for f in fields(self) if not f.name.startswith("_")}
        validated: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{key} must be a non-negative integer")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number")
                value = float(value)
            validated[key] = value
        with self._lock:
            for key, value in validated.items():
                setattr(self, key, value)

    def reset(self, initial: dict[str, Any]) -> None:
        """Go back to the values the process was started with."""
        with self._lock:
            for key, value in initial.items():
                setattr(self, key, value)
