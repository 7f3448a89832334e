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
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.tasks import full_jitter
from ehr.errors import (
    EHRAuthError,
    EHRError,
    EHRNotFound,
    EHRRateLimited,
    EHRTransientError,
    EHRUnavailable,
    EHRValidationError,
    EHRWriteUncertain,
)
from ehr.health import HealthRecorder
from ehr.http import RetryPolicy, default_timeouts

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


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


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


class NextechClient:
    """One per practice connection; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        config: NextechConfig,
        *,
        timeout: httpx.Timeout | None = None,
        max_attempts: int | None = None,
        rate_wait: float | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        policy = RetryPolicy.from_settings(
            max_attempts=max_attempts,
            rate_wait=rate_wait,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
        )
        self.max_attempts, self.rate_wait = policy.max_attempts, policy.rate_wait
        self.backoff_base, self.backoff_cap = policy.backoff_base, policy.backoff_cap
        self.http = httpx.Client(
            base_url=config.api_base_url.rstrip("/"),
            timeout=timeout or default_timeouts(),
            headers={
                "Accept": FHIR_JSON,
                "nx-practice-id": config.practice_id,
                "User-Agent": USER_AGENT,
            },
            transport=transport,
            follow_redirects=False,
        )
        self.read_timeout = timeout or default_timeouts("EHR_READ_TIMEOUTS")
        t = self.http.timeout
        self._in_flight = sum(x or 0.0 for x in (t.connect, t.write, t.read, t.pool)) + 1.0
        self.tokens = TokenManager(config, self.http, sleep=sleep)
        self.governor = RateGovernor(config, sleep=sleep)
        self.health = HealthRecorder(config.health_key)
        self._sleep = sleep

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NextechClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        return full_jitter(attempt, base=self.backoff_base, cap=self.backoff_cap)

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
        safe_to_repeat = method in IDEMPOTENT
        bucket = endpoint_key(method, httpx.URL(path).path if "://" in path else path)
        route = bucket.split(" ", 1)[1]  # for error messages: no ids, no query
        attempts = max_attempts or self.max_attempts
        refreshed = False
        attempt = 0
        throttled = 0
        while True:
            attempt += 1
            admission = uuid.uuid4().hex
            waited = self.governor.acquire(
                bucket, member=admission, in_flight=self._in_flight, max_wait=self.rate_wait
            )
            if waited:
                self.health.rate_wait(waited)
            token = self.tokens.access_token()
            headers = {"Authorization": f"Bearer {token}"}
            if json is not None:
                headers["Content-Type"] = FHIR_JSON
            started = time.monotonic()
            failure: EHRError
            ambiguous = False
            retry_after: float | None = None
            try:
                response = self._send(
                    bucket,
                    admission,
                    method,
                    path,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=self.read_timeout if safe_to_repeat else self.http.timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self.health.call(time.monotonic() - started, error_kind="connect")
                failure = EHRTransientError(
                    f"could not reach Nextech: {exc!r}", method=method, path=route
                )
            except httpx.TimeoutException as exc:
                self.health.call(time.monotonic() - started, error_kind="timeout")
                failure = EHRTransientError(
                    f"Nextech did not answer in time: {exc!r}", method=method, path=route
                )
                ambiguous = True
            except httpx.TransportError as exc:
                self.health.call(time.monotonic() - started, error_kind="transport")
                failure = EHRTransientError(
                    f"the connection to Nextech failed: {exc!r}", method=method, path=route
                )
                ambiguous = True
            else:
                elapsed = time.monotonic() - started
                status = response.status_code
                if 200 <= status < 300:
                    self.health.call(elapsed)
                    return self._parse_ok(response, method, route)
                text = _diagnostics(response)
                if status == 401 and not refreshed:
                    self.health.call(elapsed, error_kind="auth_refresh")
                    self.tokens.invalidate(token)
                    refreshed = True
                    attempt -= 1  # a refresh is not a retry
                    continue
                if status == 429:
                    self.health.call(elapsed, error_kind="429")
                    self.health.incr("429")
                    throttled += 1
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    self.governor.cool_down(bucket, retry_after)
                    failure = EHRRateLimited(
                        f"Nextech rate-limited us: {text}",
                        retry_after=retry_after,
                        status=status,
                        method=method,
                        path=route,
                    )
                elif status >= 500:
                    self.health.call(elapsed, error_kind="5xx")
                    failure = EHRTransientError(
                        f"Nextech server error: {text}", status=status, method=method, path=route
                    )
                    ambiguous = True
                else:
                    error = self._permanent(response, status, text, method, route)
                    self.health.call(elapsed, error_kind=error.kind)
                    raise error
            if ambiguous and not safe_to_repeat:
                if lookup is None:
                    raise EHRWriteUncertain(
                        f"{failure} - the write may have landed; look it up before retrying",
                        status=failure.status,
                        method=method,
                        path=route,
                    ) from failure
                found = lookup()
                if found is not None:
                    self.health.incr("lookup_found")
                    log.info("%s %s: no answer, but the lookup found what it made", method, bucket)
                    return found
                self.health.incr("lookup_empty")
            if attempt >= attempts:
                if isinstance(failure, EHRRateLimited):
                    raise failure
                raise EHRUnavailable(
                    f"gave up after {attempt} attempt(s): {failure}",
                    status=failure.status,
                    method=method,
                    path=route,
                ) from failure
            if retry_after is not None:
                # Honour Retry-After; if Nextech keeps saying 429, back off further, with jitter
                # so the waiters of one endpoint do not all come back in the same instant.
                pause = max(retry_after, self._backoff(throttled)) + random.uniform(0, 0.25)  # noqa: S311
                if pause > self.rate_wait:
                    raise failure
                self.health.rate_wait(pause)
            else:
                pause = self._backoff(attempt)
            self.health.incr("retries")
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2fs",
                method,
                bucket,
                failure.summary(),
                attempt,
                attempts - 1,
                pause,
            )
            self._sleep(pause)

    def _send(
        self, bucket: str, admission: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """The HTTP call; its admission counts as in flight until this returns or fails, then a
        window from now (best effort: without Redis it lapses after the in-flight bound)."""
        try:
            return self.http.request(method, path, **kwargs)
        finally:
            try:
                self.governor.complete(bucket, admission)
            except Exception:
                log.warning("could not complete a rate-governor admission", exc_info=True)

    def _permanent(
        self, response: httpx.Response, status: int, text: str, method: str, path: str
    ) -> EHRError:
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
