"""Nextech's OAuth2 password grant (Azure AD), one service user per practice, with the tokens
kept in Redis so every web and worker process shares one pair.

Why a shared pair and a lock: each password grant is a sign-in of the service user; a hundred
workers signing in at once on a cold start would look like an attack to Azure AD (smart lockout)
and waste the first second of every caller. So one process refreshes at a time (a Redis lock);
the others wait briefly for its token and use it.

Refresh happens before expiry (10% of the lifetime, between 5 s and 5 minutes early), with the
refresh token while it lasts (14 days) and the password grant after. A 401 on a call drops the
refused access token (only if it is still the cached one: another worker may have refreshed)
and the client asks once more with a fresh one.

A service user whose password must be changed (Azure AD's AADSTS50055 and relatives) is a
``NextechCredentialsNeedReset``. That verdict is remembered in Redis for these exact credentials
for a few minutes, so workers do not keep signing in with a password Azure AD has refused (which
counts towards its lockout); new credentials are a new scope and are tried at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from core.redis import get_redis
from ehr.errors import EHRAuthError, EHRTransientError
from ehr.ratelimit import redis_prefix

from .config import NextechConfig
from .errors import NextechCredentialsNeedReset

log = logging.getLogger("ehr.nextech.auth")

# Azure AD codes meaning "the password must be changed before this user can sign in".
RESET_CODES = frozenset({50055, 50056, 50133, 50144})
RESET_VERDICT_SECONDS = 300
LOCK_SECONDS = 10.0

# Drop the cached pair's access token only if it is still the refused one.
_DROP_ACCESS = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local pair = cjson.decode(raw)
if pair['access_token'] ~= ARGV[1] then return 0 end
pair['access_token'] = ''
pair['expires_at'] = 0
redis.call('SET', KEYS[1], cjson.encode(pair), 'KEEPTTL')
return 1
"""


def refresh_margin(lifetime: float) -> float:
    return min(300.0, max(5.0, 0.1 * lifetime)) if lifetime > 0 else 30.0


class TokenManager:
    """The access token of one practice's service user, shared through Redis."""

    def __init__(
        self,
        config: NextechConfig,
        http: httpx.Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 3,
    ) -> None:
        self.config = config
        self.http = http
        self._sleep = sleep
        self.max_attempts = max_attempts
        base = f"{redis_prefix()}:nextech:token:{config.practice_id}:{config.credential_scope}"
        self.key = base
        self.lock_key = f"{base}:lock"
        self.reset_key = f"{base}:reset"
        self.redis = get_redis()
        self._drop = self.redis.register_script(_DROP_ACCESS)

    # -- the cache ----------------------------------------------------------------------------

    def _cached(self) -> dict[str, Any] | None:
        raw = self.redis.get(self.key)
        if not raw:
            return None
        try:
            return dict(json.loads(raw))
        except ValueError:
            return None

    @staticmethod
    def _fresh(pair: dict[str, Any] | None) -> str | None:
        if not pair or not pair.get("access_token"):
            return None
        if float(pair.get("refresh_at", 0)) <= time.time():
            return None
        return str(pair["access_token"])

    def _store(self, answer: dict[str, Any]) -> str:
        try:
            lifetime = float(answer.get("expires_in") or 3600)
            access = str(answer["access_token"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EHRTransientError("Nextech's token endpoint answered without a token") from exc
        now = time.time()
        pair = {
            "access_token": access,
            "refresh_token": str(answer.get("refresh_token") or ""),
            "expires_at": now + lifetime,
            "refresh_at": now + lifetime - refresh_margin(lifetime),
            # Azure AD's refresh tokens last 14 days; keep ours a little less.
            "refresh_until": now + 13 * 86400,
        }
        self.redis.set(self.key, json.dumps(pair), ex=14 * 86400)
        return access

    def invalidate(self, access_token: str) -> None:
        """Nextech refused this token (401): the next ``access_token()`` gets a new one."""
        self._drop(keys=[self.key], args=[access_token])

    def forget(self) -> None:
        self.redis.delete(self.key, self.reset_key)

    # -- getting a token ----------------------------------------------------------------------

    def access_token(self) -> str:
        """A token valid for a while yet: the shared one, or a fresh one (one process at a time)."""
        token = self._fresh(self._cached())
        if token:
            return token
        if self.redis.get(self.reset_key):
            raise NextechCredentialsNeedReset()
        if self.redis.set(self.lock_key, "1", nx=True, px=int(LOCK_SECONDS * 1000)):
            try:
                token = self._fresh(self._cached())  # someone may have finished meanwhile
                return token or self._renew()
            finally:
                self.redis.delete(self.lock_key)
        deadline = time.monotonic() + LOCK_SECONDS / 2
        while time.monotonic() < deadline:
            self._sleep(0.05)
            token = self._fresh(self._cached())
            if token:
                return token
            if self.redis.get(self.reset_key):
                raise NextechCredentialsNeedReset()
        return self._renew()  # the holder seems stuck: do it ourselves

    def _renew(self) -> str:
        pair = self._cached()
        refresh = (pair or {}).get("refresh_token")
        if refresh and float((pair or {}).get("refresh_until", 0)) > time.time():
            try:
                return self._store(
                    self._grant({"grant_type": "refresh_token", "refresh_token": refresh})
                )
            except NextechCredentialsNeedReset:
                raise
            except EHRAuthError:
                log.info("Nextech refresh token refused; signing in with the password")
        return self._store(
            self._grant(
                {
                    "grant_type": "password",
                    "username": self.config.username,
                    "password": self.config.password,
                    "resource": self.config.resource,
                    "scope": "user_impersonation",
                }
            )
        )

    def _grant(self, form: dict[str, str]) -> dict[str, Any]:
        form = {
            **form,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.http.post(self.config.token_url, data=form)
            except httpx.TransportError as exc:  # asking for a token twice is harmless
                if attempt == self.max_attempts:
                    raise EHRTransientError(
                        f"Nextech's token endpoint is unreachable: {exc!r}"
                    ) from exc
                self._sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 500:
                if attempt == self.max_attempts:
                    raise EHRTransientError(
                        "Nextech's token endpoint keeps failing", status=response.status_code
                    )
                self._sleep(0.2 * 2**attempt)
                continue
            try:
                body = dict(response.json())
            except ValueError:
                body = {}
            if response.status_code == 200:
                return body
            codes = {int(c) for c in body.get("error_codes") or [] if str(c).isdigit()}
            if codes & RESET_CODES:
                self.redis.set(self.reset_key, "1", ex=RESET_VERDICT_SECONDS)
                self.redis.delete(self.key)
                raise NextechCredentialsNeedReset(status=response.status_code)
            error = str(body.get("error") or "refused")
            raise EHRAuthError(
                f"Nextech sign-in refused ({error}, codes {sorted(codes)})",
                status=response.status_code,
            )
        raise EHRTransientError("Nextech's token endpoint did not answer")  # pragma: no cover
