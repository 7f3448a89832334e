"""One practice's Nextech connection, decoupled from the ORM so any process can build one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ehr.models import EHRConnection

# Nextech's published limit: 20 requests per second per user per endpoint.
DEFAULT_LIMIT = 20
DEFAULT_WINDOW_SECONDS = 1.0
SELECT_API_URL = "https://select.nextech-api.com/api"
TOKEN_URL = "https://login.microsoftonline.com/a5f8392a-a68f-4d74-a353-aefc87f29848/oauth2/token"


@dataclass(frozen=True)
class NextechConfig:
    practice_id: str  # sent as nx-practice-id on every call
    client_id: str
    client_secret: str
    username: str  # the practice's service user in Nextech's Azure AD
    password: str
    api_base_url: str = SELECT_API_URL
    token_url: str = TOKEN_URL
    resource: str = "select-api"
    health_key: str = "nextech-default"
    limit: int = DEFAULT_LIMIT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    default_location_id: str | None = None  # the connection's Nextech location
    timezone: str = "UTC"  # the practice's: where a day of slots begins and ends

    @property
    def user_scope(self) -> str:
        """Nextech counts per user: every practice on the same service user shares buckets."""
        return "nextech-" + sha256(f"{self.token_url}|{self.username}".encode()).hexdigest()[:16]

    @property
    def credential_scope(self) -> str:
        """Tokens (and a 'reset required' verdict) belong to these exact credentials."""
        material = f"{self.token_url}|{self.client_id}|{self.username}|{self.password}"
        return sha256(material.encode()).hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        material = json.dumps(
            [
                self.practice_id,
                self.api_base_url,
                self.credential_scope,
                self.client_secret,
                self.health_key,
                self.limit,
                self.window_seconds,
                self.default_location_id,
                self.timezone,
            ]
        )
        return sha256(material.encode()).hexdigest()[:16]

    @classmethod
    def from_connection(cls, connection: EHRConnection) -> NextechConfig:
        """A Nextech connection keeps its credentials as encrypted JSON in ``api_key``
        (``client_id``, ``client_secret``, ``username``, ``password``, optional ``token_url``),
        ``nx-practice-id`` in ``subdomain`` and the Select API's base URL in ``base_url``."""
        try:
            creds = json.loads(connection.api_key or "{}")
        except ValueError as exc:
            raise ValueError("a Nextech connection's credentials must be JSON") from exc
        missing = [
            k for k in ("client_id", "client_secret", "username", "password") if not creds.get(k)
        ]
        if missing:
            raise ValueError(f"Nextech credentials missing: {', '.join(missing)}")
        return cls(
            practice_id=connection.subdomain,
            client_id=str(creds["client_id"]),
            client_secret=str(creds["client_secret"]),
            username=str(creds["username"]),
            password=str(creds["password"]),
            api_base_url=(connection.base_url or SELECT_API_URL).rstrip("/"),
            token_url=str(creds.get("token_url") or TOKEN_URL),
            health_key=connection.health_key,
            default_location_id=(
                str(connection.ehr_location_id) if connection.ehr_location_id is not None else None
            ),
            timezone=str(connection.location.practice.timezone or "UTC"),
        )

    def __repr__(self) -> str:  # never the password or secret in a log line
        return f"NextechConfig(practice_id={self.practice_id!r}, api={self.api_base_url!r})"
