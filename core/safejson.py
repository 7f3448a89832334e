"""JSON from outside, parsed within bounds: nesting depth, unstorable text, non-finite numbers.

`json.loads` recurses once per nesting level (5,000 levels raised RecursionError, a 500), keeps
"\\u0000" (PostgreSQL's text and jsonb refuse it) and lone surrogates such as "\\ud800" (not
UTF-8), and reads 1e999 as infinity (which cannot be written back as JSON). `loads` refuses each
with a ValueError, like any malformed JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32

# String literals (with their escapes) are skipped when counting brackets.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects, counted without parsing."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


# NUL, and lone UTF-16 surrogates ("\\ud800" alone), which cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise ValueError("a string holds a NUL or a lone surrogate")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    raise ValueError("a key holds a NUL or a lone surrogate")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON or raise ValueError (malformed, too deep, a NUL, a non-finite number)."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if _depth(data) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_constant)
    except RecursionError as exc:  # unreachable after the depth check; belt and braces
        raise ValueError("JSON nested too deeply") from exc
    _check_strings(value)
    return value
