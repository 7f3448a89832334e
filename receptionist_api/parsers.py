"""The receptionist API's JSON parser: bounded depth, no NUL characters, finite numbers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core import safejson


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser over `core.safejson.loads`: a body it refuses is a 400."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("JSON parse error - the body is empty")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
            return safejson.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
