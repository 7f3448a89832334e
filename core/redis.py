"""The process's Redis client: one connection pool per process and URL, shared by everything
that counts in Redis (sign-in throttling, the EHR rate limiter, token cache and health)."""

from __future__ import annotations

import os
import threading

import redis
from django.conf import settings

__all__ = ["REDIS_MAX_CONNECTIONS", "get_redis"]

REDIS_MAX_CONNECTIONS = 50
_clients: dict[tuple[int, str], redis.Redis] = {}
_clients_lock = threading.Lock()


def get_redis() -> redis.Redis:
    """One client (connection pool) per process and URL; safe after fork (keyed by pid)."""
    url = getattr(settings, "REDIS_URL", settings.CELERY_BROKER_URL)
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                # A blocking pool: a burst of threads in one process (a gthread web worker, a
                # storm of reads) waits briefly for a free connection instead of failing the
                # call with redis-py's "Too many connections" at its default of 100.
                pool = redis.BlockingConnectionPool.from_url(
                    url,
                    max_connections=REDIS_MAX_CONNECTIONS,
                    timeout=5,
                    socket_timeout=5,
                    socket_connect_timeout=3,
                    health_check_interval=30,
                )
                client = redis.Redis(connection_pool=pool)
                _clients[key] = client
    return client
