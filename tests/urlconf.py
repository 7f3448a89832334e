"""Walk the URL conf so security tests cover every route, including ones added later."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

ROUTE_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
INT_CONVS = ("int", "api_id")  # api_id: the receptionist API's bigint-bounded id
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^()]*(?:\([^()]*\)[^()]*)*)\)")


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "p/<slug:practice_slug>/locations/<int:pk>/"
    name: str | None
    callback: object

    @property
    def int_params(self) -> list[str]:
        return [m["name"] for m in ROUTE_PARAM.finditer(self.template) if m["conv"] in INT_CONVS]

    def fill(self, **values: object) -> str:
        """A concrete path: given values, else a sample for the converter."""

        def sub(match: re.Match[str]) -> str:
            name, conv = match["name"], match["conv"] or "str"
            if name in values:
                return str(values[name])
            return {
                "int": "1",
                "api_id": "1",
                "slug": "sample",
                "uuid": "00000000-0000-0000-0000-000000000001",
                "path": "sample",
            }.get(conv, "sample")

        return "/" + ROUTE_PARAM.sub(sub, self.template)


def _regex_to_template(regex: str) -> str:
    body = regex.removeprefix("^").removesuffix("$").removesuffix(r"\Z")

    def sub(match: re.Match[str]) -> str:
        inner = match["body"]
        if re.fullmatch(r"[\w\-|]+", inner):  # an alternation of literals: take the first
            return inner.split("|")[0]
        return f"<{match['name']}>"

    body = REGEX_GROUP.sub(sub, body)
    return body.replace("\\", "").replace(".*", "sample")


def routes() -> Iterator[Route]:
    def walk(patterns, prefix: str) -> Iterator[Route]:
        for entry in patterns:
            pattern = entry.pattern
            if isinstance(pattern, RoutePattern):
                part = str(pattern)
            elif isinstance(pattern, RegexPattern):
                part = _regex_to_template(pattern.regex.pattern)
            else:  # pragma: no cover - LocalePrefixPattern and friends are unused here
                raise AssertionError(f"unknown pattern type {type(pattern)}")
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + part)
            elif isinstance(entry, URLPattern):
                yield Route(prefix + part, entry.name, entry.callback)

    yield from walk(get_resolver().url_patterns, "")


def tenant_routes() -> list[Route]:
    return [r for r in routes() if r.template.startswith("p/<slug:practice_slug>/")]
