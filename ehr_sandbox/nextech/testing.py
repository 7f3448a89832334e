"""Run the Nextech sandbox as a real subprocess for tests (the same way as the NexHealth one:
a socket bound here and handed to the child, start-up waited on ``/_admin/health``).

Nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ehr_sandbox.testing import SandboxServer

TEST_ADMIN_TOKEN = "test-admin-token"
TEST_CLIENT_ID = "test-client"
TEST_CLIENT_SECRET = "test-client-secret"


class NextechServer(SandboxServer):
    """The Nextech surface in its own process on a free port. Use as a context manager."""

    def __init__(
        self,
        *,
        admin_token: str = TEST_ADMIN_TOKEN,
        client_id: str = TEST_CLIENT_ID,
        client_secret: str = TEST_CLIENT_SECRET,
        extra_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(admin_token=admin_token, api_keys=(), extra_args=extra_args, **kwargs)
        self.client_id = client_id
        self.client_secret = client_secret

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/sandbox-tenant/oauth2/token"

    module = "ehr_sandbox.nextech"

    def surface_args(self) -> list[str]:
        return ["--client-id", self.client_id, "--client-secret", self.client_secret]

    # -- conveniences --------------------------------------------------------------------------

    def token(self, api_key: str | None = None) -> str:  # username in place of an API key
        raise NotImplementedError("use password_token(username, password)")

    def password_token(self, username: str, password: str) -> dict[str, Any]:
        response = httpx.post(
            self.token_url,
            data={
                "grant_type": "password",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "username": username,
                "password": password,
                "resource": "select-api",
            },
            timeout=10.0,
        )
        response.raise_for_status()
        return dict(response.json())

    def api(self, username: str, password: str, practice_id: str) -> httpx.Client:
        """A raw httpx client signed in as the user for the practice (for set-up and checks)."""
        token = self.password_token(username, password)["access_token"]
        headers = {"Authorization": f"Bearer {token}", "nx-practice-id": practice_id}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=10.0)

    def stats(self) -> dict[str, Any]:
        return dict(self.admin("GET", "/_admin/stats").json())
