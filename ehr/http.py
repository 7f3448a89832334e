"""What every adapter's HTTP client shares: timeouts and the retry policy, from settings, and
the request loop itself (`EHRHttpClient`).

Each adapter keeps its own client for what differs (auth, headers, rate-limit buckets, error
mapping); the numbers that say how long to wait and how often to try again are the deployment's,
the same for every EHR, and so is the way a call is admitted, retried and mapped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypedDict, TypeVar, Unpack

import httpx
from django.conf import settings

from core.tasks import full_jitter
from ehr.errors import (
    EHRError,
    EHRRateLimited,
    EHRTransientError,
    EHRUnavailable,
    EHRWriteUncertain,
)
from ehr.health import Figure, HealthRecorder
from ehr.types import EHRTrouble

log = logging.getLogger("ehr.http")
R = TypeVar("R")


def default_timeouts(name: str = "EHR_TIMEOUTS") -> httpx.Timeout:
    t = getattr(settings, name, None) or getattr(settings, "EHR_TIMEOUTS", {})
    return httpx.Timeout(
        connect=float(t.get("connect", 3.0)),
        read=float(t.get("read", 15.0)),
        write=float(t.get("write", 10.0)),
        pool=float(t.get("pool", 5.0)),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per call, the longest wait for the rate limiter, and the backoff between tries;
    a value given by the caller (tests, benchmarks) wins over the setting."""

    max_attempts: int
    rate_wait: float
    backoff_base: float
    backoff_cap: float

    @classmethod
    def from_settings(
        cls,
        *,
        max_attempts: int | None = None,
        rate_wait: float | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
    ) -> RetryPolicy:
        return cls(
            max_attempts=max_attempts or int(getattr(settings, "EHR_MAX_ATTEMPTS", 5)),
            rate_wait=(
                float(getattr(settings, "EHR_RATE_LIMIT_MAX_WAIT_SECONDS", 5.0))
                if rate_wait is None
                else rate_wait
            ),
            backoff_base=backoff_base or float(getattr(settings, "EHR_BACKOFF_BASE_SECONDS", 0.25)),
            backoff_cap=backoff_cap or float(getattr(settings, "EHR_BACKOFF_CAP_SECONDS", 8.0)),
        )


class ClientOptions(TypedDict, total=False):
    """What a caller (a test, a benchmark) may set on a client; each unset one comes from
    settings (`RetryPolicy`, `default_timeouts`)."""

    timeout: httpx.Timeout | None
    max_attempts: int | None
    rate_wait: float | None
    backoff_base: float | None
    backoff_cap: float | None
    transport: httpx.BaseTransport | None
    sleep: Callable[[float], None]


class EHRHttpClient(Generic[R]):
    """What every adapter's HTTP client does the same way: the httpx client with the
    deployment's timeouts and retry policy, and the request loop (admit, sign, send, map the
    answer, retry only what is safe to retry). The adapter says how: the hooks below admit an
    attempt against its rate limits, sign it in, read an error's text and map a refusal.

    Writes: a non-idempotent call whose answer is lost (a read/write timeout, a dropped
    connection, a 5xx) may have landed, so it is never blindly repeated: with `lookup` the
    loop first looks for what it would have made (found: that is the answer), else it raises
    `EHRWriteUncertain`."""

    log = log  # each adapter logs under its own name
    ehr_name = "the EHR"  # for error messages: "could not reach the EHR"
    server_name = "EHR"  # "EHR server error"

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        health_key: str,
        **options: Unpack[ClientOptions],
    ) -> None:
        policy = RetryPolicy.from_settings(
            max_attempts=options.get("max_attempts"),
            rate_wait=options.get("rate_wait"),
            backoff_base=options.get("backoff_base"),
            backoff_cap=options.get("backoff_cap"),
        )
        timeout = options.get("timeout")
        self.max_attempts, self.rate_wait = policy.max_attempts, policy.rate_wait
        self.backoff_base, self.backoff_cap = policy.backoff_base, policy.backoff_cap
        self.http = httpx.Client(
            base_url=base_url,
            timeout=timeout or default_timeouts(),
            headers=headers,
            transport=options.get("transport"),
            follow_redirects=False,
        )
        self.read_timeout = timeout or default_timeouts("EHR_READ_TIMEOUTS")
        # The longest an admitted attempt can be travelling (every timeout of one call).
        t = self.http.timeout
        self._in_flight = sum(x or 0.0 for x in (t.connect, t.write, t.read, t.pool)) + 1.0
        self.health = HealthRecorder(health_key)
        self._sleep = options.get("sleep", time.sleep)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        return full_jitter(attempt, base=self.backoff_base, cap=self.backoff_cap)

    # -- the hooks ----------------------------------------------------------------------------

    def _admit(self, limit_key: Any, member: str) -> float:
        """Wait for the rate limit to admit one attempt; the seconds waited."""
        raise NotImplementedError

    def _complete(self, limit_key: Any, member: str) -> None:
        """The admitted attempt's answer is back (or it failed)."""
        raise NotImplementedError

    def _sign(self, headers: dict[str, str], limit_key: Any) -> str | None:
        """Add the credentials to `headers`; the token used (None: the call is not signed)."""
        raise NotImplementedError

    def _invalidate(self, token: str) -> None:
        """The EHR refused `token` (401): drop it so the next `_sign` gets a fresh one."""
        raise NotImplementedError

    def _error_text(self, response: httpx.Response) -> tuple[list[str], str]:
        """(the EHR's messages, one line of text) of a refusal; neither goes to logs."""
        raise NotImplementedError

    def _permanent(
        self, response: httpx.Response, text: str, messages: list[str], method: str, path: str
    ) -> EHRError:
        """The error for a refusal that no retry will change (4xx other than 401 and 429)."""
        raise NotImplementedError

    def _parse_ok(self, response: httpx.Response, method: str, path: str) -> R:
        raise NotImplementedError

    def _rate_limited(self, limit_key: Any, retry_after: float) -> None:
        """The EHR answered 429 with `retry_after` (by default nothing more to do)."""

    def _throttled(self, limit_key: Any, retry_after: float, times: int) -> float | None:
        """A 429 (the `times`-th of this call): the pause before trying again, or None to give
        the caller `EHRRateLimited` (a task re-queues rather than sleeping in a worker)."""
        raise NotImplementedError

    def _trouble(self, kind: EHRTrouble) -> None:
        """Tell whoever watches the connection's health (by default nobody)."""

    # -- the loop -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        limit_key: Any,
        error_path: str,
        safe_to_repeat: bool,
        attempts: int,
        lookup: Callable[[], R | None] | None,
        **send: Any,
    ) -> R:
        """One call with rate limiting, auth, retries and error mapping. `error_path` is what
        errors and logs name (never more than the route: no ids, no query). Its outcome is
        counted once: answered on the first attempt, answered later, or failed and why."""
        tries = [0]
        try:
            result = self._attempts(
                method,
                path,
                tries,
                limit_key=limit_key,
                error_path=error_path,
                safe_to_repeat=safe_to_repeat,
                attempts=attempts,
                lookup=lookup,
                **send,
            )
        except EHRError as exc:
            self.health.record(Figure.CALL, tries[0], exc.kind)
            raise
        self.health.record(Figure.CALL, tries[0])
        return result

    def _attempts(
        self,
        method: str,
        path: str,
        tries: list[int],
        *,
        limit_key: Any,
        error_path: str,
        safe_to_repeat: bool,
        attempts: int,
        lookup: Callable[[], R | None] | None,
        **send: Any,
    ) -> R:
        """The request loop of `_call`; `tries[0]` counts the attempts sent (refreshes and
        lookups included: a call answered after either was not answered on the first try)."""
        base_headers: dict[str, str] = send.pop("headers", None) or {}
        refreshed = False
        attempt = 0
        throttled = 0
        while True:
            attempt += 1
            tries[0] += 1
            admission = uuid.uuid4().hex  # in flight until `_send` hands back the answer
            try:
                waited = self._admit(limit_key, admission)
            except EHRRateLimited as refused:
                if refused.waited:
                    self.health.record(Figure.RATE_WAIT, refused.waited)
                raise
            if waited:
                self.health.record(Figure.RATE_WAIT, waited)
                if waited >= 1.0:
                    self._trouble(EHRTrouble.RATE_LIMITED)
            headers = dict(base_headers)
            token = self._sign(headers, limit_key)
            started = time.monotonic()
            failure: EHRError
            trouble = EHRTrouble.FAILING
            ambiguous = False
            retry_after: float | None = None
            try:
                response = self._send(
                    limit_key,
                    admission,
                    method,
                    path,
                    headers=headers,
                    timeout=self.read_timeout if safe_to_repeat else self.http.timeout,
                    **send,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the EHR: always safe to try again.
                self.health.record(Figure.ATTEMPT, time.monotonic() - started, "connect")
                failure = EHRTransientError(
                    f"could not reach {self.ehr_name}: {exc!r}", method=method, path=error_path
                )
            except httpx.TimeoutException as exc:  # read/write timeout: it may have run
                self.health.record(Figure.ATTEMPT, time.monotonic() - started, "timeout")
                trouble = EHRTrouble.SLOW
                failure = EHRTransientError(
                    f"{self.ehr_name} did not answer in time: {exc!r}",
                    method=method,
                    path=error_path,
                )
                ambiguous = True
            except httpx.TransportError as exc:  # dropped mid-way: it may have run
                self.health.record(Figure.ATTEMPT, time.monotonic() - started, "transport")
                failure = EHRTransientError(
                    f"the connection to {self.ehr_name} failed: {exc!r}",
                    method=method,
                    path=error_path,
                )
                ambiguous = True
            else:
                elapsed = time.monotonic() - started
                status = response.status_code
                if 200 <= status < 300:
                    self.health.record(Figure.ATTEMPT, elapsed)
                    return self._parse_ok(response, method, error_path)
                messages, text = self._error_text(response)
                if status == 401 and token is not None and not refreshed:
                    self.health.record(Figure.ATTEMPT, elapsed, "auth_refresh")
                    # Expired or revoked token: drop it and sign in again, once.
                    self._invalidate(token)
                    refreshed = True
                    attempt -= 1  # a refresh is not a retry
                    continue
                if status == 429:
                    self.health.record(Figure.ATTEMPT, elapsed, "429")
                    self.health.record(Figure.COUNT, reason="429")
                    throttled += 1
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    self._rate_limited(limit_key, retry_after)
                    trouble = EHRTrouble.RATE_LIMITED
                    failure = EHRRateLimited(
                        f"{self.ehr_name} rate-limited us: {text}",
                        retry_after=retry_after,
                        status=status,
                        messages=messages,
                        method=method,
                        path=error_path,
                    )
                elif status >= 500:
                    self.health.record(Figure.ATTEMPT, elapsed, "5xx")
                    failure = EHRTransientError(
                        f"{self.server_name} server error: {text}",
                        status=status,
                        messages=messages,
                        method=method,
                        path=error_path,
                    )
                    ambiguous = True
                else:
                    error = self._permanent(response, text, messages, method, error_path)
                    self.health.record(Figure.ATTEMPT, elapsed, error.kind)
                    raise error
            # A transient failure: say so, then decide whether and when to try again.
            self._trouble(trouble)
            if ambiguous and not safe_to_repeat:
                if lookup is None:
                    raise EHRWriteUncertain(
                        f"{failure} - the write may have landed; look it up before retrying",
                        status=failure.status,
                        method=method,
                        path=error_path,
                    ) from failure
                tries[0] += 1
                found = lookup()
                if found is not None:
                    self.health.record(Figure.COUNT, reason="lookup_found")
                    self.log.info(
                        "%s %s: no answer, but the lookup found what it made", method, error_path
                    )
                    return found
                self.health.record(Figure.COUNT, reason="lookup_empty")
            if attempt >= attempts:
                if isinstance(failure, EHRRateLimited):
                    raise failure
                raise EHRUnavailable(
                    f"gave up after {attempt} attempt(s): {failure}",
                    status=failure.status,
                    messages=failure.messages,
                    method=method,
                    path=error_path,
                ) from failure
            if retry_after is not None:
                pause = self._throttled(limit_key, retry_after, throttled)
                if pause is None:
                    raise failure  # EHRRateLimited: re-queue instead of sleeping in a worker
                self.health.record(Figure.RATE_WAIT, pause)
            else:
                pause = self._backoff(attempt)
            self.health.record(Figure.COUNT, reason="retries")
            self.log.info(
                "%s %s failed (%s); retry %d/%d in %.2fs",
                method,
                error_path,
                failure.summary(),  # never the EHR's text: it can quote patient fields
                attempt,
                attempts - 1,
                pause,
            )
            self._sleep(pause)

    def _send(
        self, limit_key: Any, admission: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """The HTTP call itself; its rate-limit admission is completed when it returns or fails
        (best effort: if Redis is away, the admission lapses after the in-flight bound)."""
        try:
            return self.http.request(method, path, **kwargs)
        finally:
            try:
                self._complete(limit_key, admission)
            except Exception:
                self.log.warning("could not complete a rate-limit admission", exc_info=True)


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date is read as 1 s)."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0
