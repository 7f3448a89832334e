"""A superuser's connection to the test database, for tests that act outside the application."""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import connection


def superuser_connection(*, triggers: bool = True) -> psycopg.Connection:
    """Autocommit, on the database the tests use. `triggers=False`: with the triggers off
    (`session_replication_role = replica`), as an intruder would tamper."""
    url = settings.DATABASE_SUPERUSER_URL
    assert url, "DATABASE_SUPERUSER_URL is needed to act as a superuser"
    conninfo = psycopg.conninfo.make_conninfo(url, dbname=connection.settings_dict["NAME"])
    conn = psycopg.connect(conninfo, autocommit=True)
    if not triggers:
        conn.execute("SET session_replication_role = replica")
    return conn
