"""Reading and writing configuration documents as JSON or YAML (chosen by file extension).

YAML is read with a loader that keeps times and dates as strings: PyYAML's default YAML 1.1
rules would turn `13:00` into the integer 780 (base-60) and `2026-05-04` into a date object.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from onboarding.schema import ConfigError

FORMATS = ("json", "yaml")


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader without timestamps and without base-60 integers or floats."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ConfigError([f"{path}: unknown file type (use .json, .yaml or .yml)"])


def parse_text(text: str, fmt: str, *, name: str = "(document)") -> Any:
    """The document in `text`; ConfigError if it is too large or not well-formed JSON/YAML."""
    from onboarding.document_schema import check_size

    too_large = check_size(len(text.encode("utf-8")), name)
    if too_large:
        raise ConfigError(too_large)
    try:
        if fmt == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{name}: not valid {fmt.upper()}: {exc}"]) from exc


def load_file(path: str | Path) -> Any:
    path = Path(path)
    fmt = format_of(path)
    from onboarding.document_schema import check_size

    try:
        too_large = check_size(path.stat().st_size, str(path))
        if too_large:
            raise ConfigError(too_large)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    return parse_text(text, fmt, name=str(path))


def dump_text(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
