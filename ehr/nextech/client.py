"""One Nextech Select API call, done properly: governed, signed in, retried, mapped.

What every call gets, in this order:

1. **Rate governor**: the endpoint's shared bucket for the service user admits the attempt,
   waiting at most ``rate_wait`` seconds, else ``EHRRateLimited(retry_after)``.
2. **Auth**: the shared access token (``auth.TokenManager``); on a 401 it is dropped and the call
   is made once more with a fresh one. ``nx-practice-id`` goes on every call.
3. **Timeouts** (``settings.EHR_TIMEOUTS``; reads use the shorter ``EHR_READ_TIMEOUTS``).
4. **Retries** for transient faults only: connect errors, timeouts and 5xx with exponential
   backoff and full jitter; a 429 honours ``Retry-After`` (plus jitter, growing with repeats)
   and cools the endpoint down for every process. Never for 4xx.
5. **Errors** mapped onto ``ehr.errors`` (409 with an AppointmentResponse becomes
   ``NextechSlotTaken``).

Writes: a POST that times out or gets a 5xx may have landed. Nextech documents no idempotency
key, so such a POST is never blindly repeated: with ``lookup`` the client first searches for
what the POST would have made (found: that is the answer), and only retries when nothing is
there; without ``lookup`` it raises ``EHRWriteUncertain``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Unpack

import httpx

from ehr.errors import (
    EHRAuthError,
    EHRError,
    EHRNotFound,
    EHRTransientError,
    EHRValidationError,
)
from ehr.http import ClientOptions, EHRHttpClient

from .auth import TokenManager
from .config import NextechConfig
from .errors import NextechSlotTaken
from .governor import RateGovernor, endpoint_key
from .resources import appointment_response_comment

log = logging.getLogger("ehr.nextech.client")

USER_AGENT = "hello-practice-portal/1.0 (+ehr.nextech)"
FHIR_JSON = "application/fhir+json"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
PAGE_SIZE = 50  # Nextech's maximum
MAX_PAGES = 200


@dataclass
class NxResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _diagnostics(response: httpx.Response) -> str:
    """Nextech's OperationOutcome text (kept out of logs: it can echo what it refused)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        issues = body.get("issue") or []
        texts = [str(i.get("diagnostics") or i.get("code") or "") for i in issues]
        if any(texts):
            return "; ".join(t for t in texts if t)
        if body.get("resourceType") == "AppointmentResponse":
            return appointment_response_comment(body)
    return response.reason_phrase


class NextechClient(EHRHttpClient[NxResponse]):
    """One per practice connection; thread-safe (httpx.Client is)."""

    log = log
    ehr_name = "Nextech"
    server_name = "Nextech"

    def __init__(
        self,
        config: NextechConfig,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.config = config
        super().__init__(
            base_url=config.api_base_url.rstrip("/"),
            headers={
                "Accept": FHIR_JSON,
                "nx-practice-id": config.practice_id,
                "User-Agent": USER_AGENT,
            },
            health_key=config.health_key,
            **options,
        )
        self.tokens = TokenManager(config, self.http, sleep=self._sleep)
        self.governor = RateGovernor(config, sleep=self._sleep)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | dict[str, str] | None = None,
        json: Any = None,
        lookup: Callable[[], NxResponse | None] | None = None,
        max_attempts: int | None = None,
    ) -> NxResponse:
        """One API call (see the module docstring). ``path`` may be a full ``next`` link."""
        method = method.upper()
        bucket = endpoint_key(method, httpx.URL(path).path if "://" in path else path)
        return self._call(
            method,
            path,
            limit_key=bucket,
            error_path=bucket.split(" ", 1)[1],  # no ids, no query
            safe_to_repeat=method in IDEMPOTENT,
            attempts=max_attempts or self.max_attempts,
            lookup=lookup,
            params=params,
            json=json,
            headers={"Content-Type": FHIR_JSON} if json is not None else None,
        )

    # -- the hooks of the request loop (ehr.http.EHRHttpClient) ---------------------------------

    def _admit(self, limit_key: str, member: str) -> float:
        return self.governor.acquire(
            limit_key, member=member, in_flight=self._in_flight, max_wait=self.rate_wait
        )

    def _complete(self, limit_key: str, member: str) -> None:
        self.governor.complete(limit_key, member)

    def _sign(self, headers: dict[str, str], limit_key: str) -> str | None:
        token = self.tokens.access_token()
        headers["Authorization"] = f"Bearer {token}"
        return token

    def _invalidate(self, token: str) -> None:
        self.tokens.invalidate(token)

    def _error_text(self, response: httpx.Response) -> tuple[list[str], str]:
        return [], _diagnostics(response)

    def _rate_limited(self, limit_key: str, retry_after: float) -> None:
        self.governor.cool_down(limit_key, retry_after)

    def _throttled(self, limit_key: str, retry_after: float, times: int) -> float | None:
        # Honour Retry-After; if Nextech keeps saying 429, back off further, with jitter so the
        # waiters of one endpoint do not all come back in the same instant.
        pause = max(retry_after, self._backoff(times)) + random.uniform(0, 0.25)  # noqa: S311
        return None if pause > self.rate_wait else pause

    def _permanent(
        self, response: httpx.Response, text: str, messages: list[str], method: str, path: str
    ) -> EHRError:
        status = response.status_code
        if status == 409:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("resourceType") == "AppointmentResponse":
                return NextechSlotTaken(
                    appointment_response_comment(body), status=status, method=method, path=path
                )
            return EHRValidationError(f"conflict: {text}", status=status, method=method, path=path)
        if status in (401, 403):
            return EHRAuthError(
                f"Nextech refused the service user: {text}", status=status, method=method, path=path
            )
        if status == 404:
            return EHRNotFound(f"not found: {text}", status=status, method=method, path=path)
        return EHRValidationError(
            f"Nextech refused the request: {text}", status=status, method=method, path=path
        )

    def _parse_ok(self, response: httpx.Response, method: str, path: str) -> NxResponse:
        try:
            body = response.json() if response.content else None
        except ValueError as exc:
            raise EHRTransientError(
                "Nextech answered 2xx without JSON",
                status=response.status_code,
                method=method,
                path=path,
            ) from exc
        return NxResponse(response.status_code, body, dict(response.headers))

    # -- searches -------------------------------------------------------------------------------

    def search(self, path: str, params: list[tuple[str, str]] | None = None) -> Iterator[Any]:
        """Every entry's resource of a search, following the Bundle's ``next`` links."""
        query = [*(params or []), ("_count", str(PAGE_SIZE))]
        target: str | None = path
        request_params: list[tuple[str, str]] | None = query
        pages = 0
        while target is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise EHRTransientError(f"{path}: more than {MAX_PAGES} pages", path=path)
            body = self.request("GET", target, params=request_params).body
            if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise EHRTransientError(f"{path}: expected a Bundle", path=path)
            for entry in body.get("entry") or []:
                if isinstance(entry, dict) and "resource" in entry:
                    yield entry["resource"]
            target = next(
                (
                    str(link.get("url"))
                    for link in body.get("link") or []
                    if link.get("relation") == "next" and link.get("url")
                ),
                None,
            )
            request_params = None  # a next link carries its own query
