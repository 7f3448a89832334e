"""Sorting a list page by one of its columns, from the URL's `sort` parameter.

`sort=type` sorts ascending, `sort=-type` descending; a value that names no sortable column
falls back to the page's default (never an error, never an arbitrary ORDER BY from the URL).
Every order ends in the primary key, so paging by offset is stable: a row never shows on two
pages or on none when many rows share a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool

    @property
    def param(self) -> str:
        return f"-{self.key}" if self.descending else self.key


@dataclass(frozen=True)
class Column:
    """A column header: its label, and when sortable the link that sorts by it (the other way
    if it is the current order) and its `aria-sort` state."""

    label: str
    key: str = ""
    query: str = ""
    aria_sort: str = ""

    @property
    def sortable(self) -> bool:
        return bool(self.key)


def parse(value: str | None, allowed: Mapping[str, Sequence[str]], default: str) -> Sort:
    raw = (value or "").strip()
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in allowed:
        return parse(default, allowed, next(iter(allowed)))
    return Sort(key, descending)


def order_by(sort: Sort, allowed: Mapping[str, Sequence[str]], tiebreak: str = "pk") -> list[str]:
    """The ORDER BY of `sort`: the column's fields in its direction, then the tie-break."""
    sign = "-" if sort.descending else ""
    fields = [f"{sign}{field}" for field in allowed[sort.key]]
    return [*fields, f"{sign}{tiebreak}"]


def columns(
    headers: Sequence[tuple[str, str]], sort: Sort, params: Mapping[str, str]
) -> list[Column]:
    """Headers as (label, key or "" when not sortable), with links that keep `params` (the
    page's filters) and start again at page 1."""
    kept = {k: v for k, v in params.items() if k not in ("sort", "page")}
    out = []
    for label, key in headers:
        if not key:
            out.append(Column(label))
            continue
        current = key == sort.key
        flip = Sort(key, not sort.descending) if current else Sort(key, False)
        out.append(
            Column(
                label,
                key,
                urlencode({**kept, "sort": flip.param}),
                ("descending" if sort.descending else "ascending") if current else "",
            )
        )
    return out
