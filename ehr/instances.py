"""One adapter instance per connection per process, shared by its threads.

An instance holds pools and caches (an HTTP client, a token) worth keeping between calls; it is
rebuilt, and the stale one closed, when the connection's settings change (a new fingerprint).
The pid in the key keeps a forked worker from using its parent's sockets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class PerConnection(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[tuple[int, int | str, str], T] = {}
        self._lock = threading.Lock()

    def get(self, connection_key: int | str, fingerprint: str, make: Callable[[], T]) -> T:
        """The instance for this connection and settings, made (once) when there is none."""
        key = (os.getpid(), connection_key, fingerprint)
        item = self._items.get(key)
        if item is None:
            with self._lock:
                item = self._items.get(key)
                if item is None:
                    for old in [k for k in self._items if k[:2] == key[:2]]:
                        self._items.pop(old).close()
                    item = make()
                    self._items[key] = item
        return item

    def clear(self) -> None:
        """Close every instance (tests; after a fork the pid in the key already separates)."""
        with self._lock:
            for item in self._items.values():
                item.close()
            self._items.clear()
