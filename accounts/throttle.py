"""Sign-in throttling, counted in Redis so every web worker sees the same numbers.

Two counters guard the password step:

* per account name and client address: a few free failures, then each further one must wait
  twice as long as the last (capped). Keyed by the name as typed, whether or not such an
  account exists, so a stranger learns nothing about which accounts exist; and by address, so a
  stranger's failures elsewhere never slow the owner signing in from their usual address.
* per client address, over every account: a sliding window of password checks, which bounds
  password spraying and the hashing work one address can cause.

An admitted attempt counts as a failure at once (in the same atomic step) and is cleared when
the password proves right, so parallel guesses cannot slip in before a failure is recorded.
Times come from this process's clock (passed in), not Redis's, so tests can move them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from ehr.nexhealth.ratelimit import get_redis

# KEYS: account hash, address sorted set. ARGV: now_ms, free failures, base_ms, max_ms,
# memory_ms, address limit, address window_ms, member. Returns 0 when admitted, else the ms to
# wait (and which counter said so: 1 account, 2 address) as {wait, which}.
_ADMIT = """
local now = tonumber(ARGV[1])
local free, base = tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, memory = tonumber(ARGV[4]), tonumber(ARGV[5])
local limit, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local wait, which = 0, 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2])
if n >= limit then
  local edge = redis.call('ZRANGE', KEYS[2], n - limit, n - limit, 'WITHSCORES')
  wait, which = tonumber(edge[2]) + window - now, 2
end
local state = redis.call('HMGET', KEYS[1], 'failures', 'last')
local failures, last = tonumber(state[1]) or 0, tonumber(state[2]) or 0
if failures > 0 and now - last >= memory then failures = 0 end
if failures >= free then
  local delay = math.min(cap, base * 2 ^ (failures - free))
  local w = last + delay - now
  if w > wait then wait, which = w, 1 end
end
if wait > 0 then return {math.max(1, math.ceil(wait)), which} end
redis.call('ZADD', KEYS[2], now, ARGV[8])
redis.call('PEXPIRE', KEYS[2], window + 1000)
redis.call('HSET', KEYS[1], 'failures', failures + 1, 'last', now)
redis.call('PEXPIRE', KEYS[1], memory + cap)
return {0, 0}
"""


@dataclass(frozen=True)
class Admission:
    """`retry_after` 0: go ahead and check the password; otherwise seconds to wait."""

    retry_after: float
    by: str = ""  # "account" or "address" when refused


def _prefix() -> str:
    return str(getattr(settings, "SIGN_IN_REDIS_PREFIX", "hpp:signin"))


def account_key(username: str, ip: str) -> str:
    """The name is hashed: Redis holds no account names (they are e-mail addresses)."""
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"{_prefix()}:acct:{name}:{ip}"


def address_key(ip: str) -> str:
    return f"{_prefix()}:ip:{ip}"


def admit(username: str, ip: str, *, now: float | None = None) -> Admission:
    """Admit one password check for `username` from `ip` (counted as a failure until
    `succeeded`), or say how long to wait."""
    at_ms = int((time.time() if now is None else now) * 1000)
    client = get_redis()
    script = client.register_script(_ADMIT)
    wait_ms, which = script(
        keys=[account_key(username, ip), address_key(ip)],
        args=[
            at_ms,
            settings.SIGN_IN_FREE_FAILURES,
            int(settings.SIGN_IN_BACKOFF_BASE_SECONDS * 1000),
            int(settings.SIGN_IN_BACKOFF_MAX_SECONDS * 1000),
            int(settings.SIGN_IN_FAILURE_MEMORY_SECONDS * 1000),
            settings.SIGN_IN_IP_LIMIT,
            int(settings.SIGN_IN_IP_WINDOW_SECONDS * 1000),
            uuid.uuid4().hex,
        ],
    )
    if int(wait_ms) <= 0:
        return Admission(0.0)
    return Admission(int(wait_ms) / 1000, "account" if int(which) == 1 else "address")


def succeeded(username: str, ip: str) -> None:
    """The password was right: this name and address start afresh."""
    get_redis().delete(account_key(username, ip))
