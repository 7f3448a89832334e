"""Statements prepared on the server once per database session, for hot paths.

Django turns psycopg's own statement preparation off, and psycopg's would not do here anyway:
once it has prepared anything it sends DEALLOCATE ALL after every ROLLBACK (a savepoint's too),
which a 409 or any failed request on a pooled connection is. These are SQL-level PREPAREs made
by us, named uniquely per process, and recorded per session: PostgreSQL then skips parsing,
rewriting and (once it settles on a generic plan) planning, which cost more than running the
narrow reads and single-row INSERTs they are used for. Row-level security is unaffected: its
policies read the tenant setting when the statement runs. Needs a session per connection, as
this deployment has (no transaction-pooling proxy).

The PREPARE is sent on the driver's connection, not through Django's cursor: like the SET
commands Django sends when it connects, it is plumbing of the session, so it is not in the query
log and a request's query count does not depend on whether its connection has served that
statement before.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: tuple[tuple[bool, Any], ...]  # (named, name) or (False, constant)
    # Set for statements on hot paths: prepared on the server once per session.
    prepared_as: str | None = None

    def args(self, values: Mapping[Any, Any] | Sequence[Any]) -> list[Any]:
        return [values[v] if named else v for named, v in self.params]

    def rows(self, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return run_batch([(self, values)])[0]

    def prepare(self) -> CompiledQuery:
        """This statement, to be prepared on the server (a name unique in this process)."""
        return replace(self, prepared_as=f"hpp_{next(_PREPARED_NAMES)}")

    def prepare_sql(self) -> str:
        """PREPARE text: Django's `%s` placeholders become `$1..$n` (a literal `%` stays
        doubled: the statement still goes through the driver's client-side binding)."""
        numbers = iter(range(1, len(self.params) + 1))
        body = _PLACEHOLDER.sub(lambda m: m[0] if m[0] == "%%" else f"${next(numbers)}", self.sql)
        return f"PREPARE {self.prepared_as} AS {body}"

    def execute_sql(self) -> str:
        marks = ", ".join(["%s"] * len(self.params))
        return f"EXECUTE {self.prepared_as}({marks})" if marks else f"EXECUTE {self.prepared_as}"


_PLACEHOLDER = re.compile(r"%%|%s")
_PREPARED_NAMES = itertools.count(1)
# psycopg connection -> names of the statements prepared in its session. Prepared statements
# live as long as the session (they are not transactional), and a new connection is a new key.
_PREPARED_ON: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

Batch = Sequence[tuple[CompiledQuery, Mapping[str, Any]]]


def _ensure_prepared(db: Any, statement: CompiledQuery) -> None:
    """PREPARE the statement on the session of this Django connection (`db`) the first time it
    is used there. Alone: a PREPARE either registers or fails, so the record of what a session
    has prepared is never wrong."""
    session = db.connection
    prepared = _PREPARED_ON.get(session)
    if prepared is None:
        prepared = _PREPARED_ON[session] = set()
    name = statement.prepared_as
    if name is not None and name not in prepared:
        session_execute(db, statement.prepare_sql().replace("%%", "%"))
        prepared.add(name)


def session_execute(db: Any, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """A statement that is plumbing of the session (a PREPARE, a block of ids drawn ahead),
    sent on the driver's connection: like Django's own health check and connection set-up, it
    stays out of the query log, so a request's query count does not depend on what earlier
    requests left behind. Django's broken-transaction check and error classes still apply."""
    db.ensure_connection()
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        cursor = db.connection.execute(sql, params, prepare=False)
        return cursor.fetchall() if cursor.description is not None else []


def run_batch(statements: Batch) -> list[list[tuple[Any, ...]]]:
    """Compiled statements in ONE round trip, their rows in order.

    Django's psycopg cursor binds parameters client-side and sends a parameterised statement
    as a simple query, which may hold several statements: they run one after the other, each
    with its own snapshot (READ COMMITTED), inside the caller's transaction if there is one
    (otherwise in one implicit transaction). Every round trip is a wait for the server and, in
    a threaded worker, a fresh wait for the GIL: the hold path reads five things at once.

    A statement with `prepared_as` is sent as EXECUTE (see the module's docstring). With
    server-side binding configured, statements go one by one, unprepared.
    """
    with connection.cursor() as cursor:
        if not isinstance(cursor.cursor, psycopg.ClientCursor):
            results = []
            for statement, values in statements:
                cursor.execute(statement.sql, statement.args(values))
                results.append(cursor.fetchall())
            return results
        parts: list[str] = []
        args: list[Any] = []
        for statement, values in statements:
            if statement.prepared_as is None:
                parts.append(statement.sql)
            else:
                _ensure_prepared(connection, statement)
                parts.append(statement.execute_sql())
            args += statement.args(values)
        cursor.execute(";\n".join(parts), args)
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
    if len(results) != len(statements):  # cannot happen: one result per SELECT or EXECUTE
        raise RuntimeError(f"{len(statements)} statements, {len(results)} results")
    return results


_BY_TEXT: dict[str, CompiledQuery] = {}


def execute_prepared(sql: str, params: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> int:
    """One statement written with `%s` placeholders (an INSERT, say), prepared once per session
    by its text; its row count."""
    statement = _BY_TEXT.get(sql)
    if statement is None:
        count = sum(1 for m in _PLACEHOLDER.finditer(sql) if m[0] == "%s")
        statement = CompiledQuery(sql, tuple((True, n) for n in range(count))).prepare()
        statement = _BY_TEXT.setdefault(sql, statement)
    db = connections[using]
    with db.cursor() as cursor:
        if not isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute(sql, params)
        else:
            _ensure_prepared(db, statement)
            cursor.execute(statement.execute_sql(), params)
        return int(cursor.rowcount)


_INSERT_SQL: dict[tuple[type[models.Model], tuple[str, ...]], str] = {}


def insert_sql(model: type[models.Model], fields: Sequence[models.Field], conn: Any) -> str:
    """`INSERT INTO <table> (<columns>) VALUES (<placeholders>)` for these fields, built once
    per model and column list: the ORM's compiler rebuilds it for every row, and on the hot
    paths (audit rows, holds) that cost more than the statement."""
    key = (model, tuple(f.column for f in fields))
    sql = _INSERT_SQL.get(key)
    if sql is None:
        quote = conn.ops.quote_name
        marks = [
            f.get_placeholder(None, None, conn) if hasattr(f, "get_placeholder") else "%s"
            for f in fields
        ]
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - identifiers only
            quote(model._meta.db_table),
            ", ".join(quote(f.column) for f in fields),
            ", ".join(marks),
        )
        _INSERT_SQL[key] = sql
    return sql
