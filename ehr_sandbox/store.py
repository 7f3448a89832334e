"""The sandbox's own storage: plain dicts in memory behind one lock, saved to a JSON file.

Why this shape: the sandbox must survive a restart (a test or a developer stops and starts it and
expects the practice to still be there) but must not share the portal's database. One re-entrant
lock keeps request handlers and the background insertion worker consistent; every change is
written through to ``sandbox-state.json`` atomically (temp file + rename) when the outermost
transaction ends, so a kill -9 loses at most the change in flight.

Records are stored in their public JSON shape; keys starting with ``_`` are internal (the owning
subdomain, stored document content...) and are stripped by :func:`public`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .timeutil import iso_utc, utc_now

Record = dict[str, Any]

STATE_VERSION = 1

# Different id ranges per resource (shaped like the guides' ids) so a client that mixes up a
# provider id with an operatory id gets a 404 instead of a silent wrong match.
ID_BASES: dict[str, int] = {
    "institutions": 1001,
    "locations": 21241,
    "providers": 158936024,
    "operatories": 1,
    "patients": 415,
    "appointment_types": 1001,
    "descriptors": 9815469,
    "labels": 52187,
    "working_hours": 96878614,
    "appointments": 1484450509,
    "documents": 7001,
    "webhook_endpoints": 1,
    "webhook_subscriptions": 1,
}
TABLES = tuple(ID_BASES)


def public(record: Record) -> Record:
    """A deep copy without internal (``_``-prefixed) keys, safe to serialise outside the lock."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """All sandbox data. Methods take the lock themselves; use :meth:`tx` for multi-step changes."""

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._path = path
        self._depth = 0
        self._dirty = False
        self.tables: dict[str, dict[int, Record]] = {}
        self.counters: dict[str, int] = {}
        self.tokens: dict[str, Record] = {}
        self.extra_api_keys: list[str] = []
        self.jwt_secret = secrets.token_hex(32)
        self._clear()
        if path is not None and path.exists():
            self._load(path)

    # -- transactions and persistence -------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator[Store]:
        """Hold the lock across several steps; save once when the outermost block ends."""
        with self.lock:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0 and self._dirty:
                    self._save()

    def touch(self) -> None:
        """Mark the state changed (saved when the current transaction ends)."""
        with self.lock:
            self._dirty = True
            if self._depth == 0:
                self._save()

    def _clear(self) -> None:
        self.tables = {name: {} for name in TABLES}
        self.counters = dict(ID_BASES)
        self.tokens = {}

    def reset(self) -> None:
        """Forget every record and token (API keys added at run time and the secret stay)."""
        with self.tx():
            self._clear()
            self._dirty = True

    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "saved_at": iso_utc(utc_now()),
            "jwt_secret": self.jwt_secret,
            "counters": self.counters,
            "extra_api_keys": self.extra_api_keys,
            "tokens": self.tokens,
            "tables": {name: list(rows.values()) for name, rows in self.tables.items()},
        }

    def _save(self) -> None:
        self._dirty = False
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self._snapshot(), separators=(",", ":"), sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=self._path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _load(self, path: Path) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"{path}: unsupported state version {raw.get('version')!r}")
        self.jwt_secret = raw.get("jwt_secret") or self.jwt_secret
        self.counters.update({k: int(v) for k, v in raw.get("counters", {}).items()})
        self.extra_api_keys = list(raw.get("extra_api_keys", []))
        self.tokens = dict(raw.get("tokens", {}))
        for name, rows in raw.get("tables", {}).items():
            if name in self.tables:
                self.tables[name] = {int(row["id"]): row for row in rows}

    # -- generic record operations ----------------------------------------------------------

    def next_id(self, table: str) -> int:
        with self.lock:
            value = self.counters[table]
            self.counters[table] = value + 1
            return value

    def insert(self, table: str, record: Record) -> Record:
        """Add a record with a fresh id and timestamps; returns the stored dict (not a copy)."""
        with self.lock:
            now = iso_utc(utc_now())
            stored = {"id": self.next_id(table), **record}
            stored.setdefault("created_at", now)
            stored.setdefault("updated_at", now)
            self.tables[table][stored["id"]] = stored
            self.touch()
            return stored

    def get(self, table: str, record_id: int | None) -> Record | None:
        if record_id is None:
            return None
        with self.lock:
            return self.tables[table].get(record_id)

    def update(self, table: str, record_id: int, changes: Record) -> Record:
        with self.lock:
            stored = self.tables[table][record_id]
            stored.update(changes)
            stored["updated_at"] = iso_utc(utc_now())
            self.touch()
            return stored

    def delete(self, table: str, record_id: int) -> Record | None:
        with self.lock:
            removed = self.tables[table].pop(record_id, None)
            if removed is not None:
                self.touch()
            return removed

    def rows(self, table: str, where: Callable[[Record], bool] | None = None) -> list[Record]:
        """Matching records in id order (the stored dicts: copy with :func:`public`)."""
        with self.lock:
            found = [r for r in self.tables[table].values() if where is None or where(r)]
        return sorted(found, key=lambda r: r["id"])

    # -- things that are not tables ---------------------------------------------------------

    def subdomains(self) -> set[str]:
        with self.lock:
            return {loc["_subdomain"] for loc in self.tables["locations"].values()}

    def institution_for(self, subdomain: str) -> Record:
        """The institution of a subdomain, created on first use (a set-up convenience)."""
        with self.lock:
            for inst in self.tables["institutions"].values():
                if inst["subdomain"] == subdomain:
                    return inst
            return self.insert("institutions", {"subdomain": subdomain, "name": subdomain})

    def add_token(self, token: str, api_key: str, issued_at: float, expires_at: float) -> None:
        with self.lock:
            # Forget tokens that expired more than a day ago so the file does not grow forever.
            for digest in [
                d for d, t in self.tokens.items() if t["expires_at"] < issued_at - 86400
            ]:
                del self.tokens[digest]
            self.tokens[token_digest(token)] = {
                "api_key": api_key,
                "issued_at": issued_at,
                "expires_at": expires_at,
            }
            self.touch()

    def token_info(self, token: str) -> Record | None:
        with self.lock:
            info = self.tokens.get(token_digest(token))
            return dict(info) if info else None

    def expire_tokens(self, now: float, api_key: str | None = None) -> int:
        with self.lock:
            count = 0
            for info in self.tokens.values():
                if (api_key is None or info["api_key"] == api_key) and info["expires_at"] > now:
                    info["expires_at"] = now
                    count += 1
            self.touch()
            return count
