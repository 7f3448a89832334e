"""A practice's scheduling set-up as one JSON or YAML document (../shared/PRACTICE_CONFIG.md).

    validate_config(data) -> list[str]          every problem, each with its path
    import_config(data) -> ImportResult         validated whole, then written in one transaction
    export_config(practice) -> dict             the same format back

`schema` validates into typed specs, `importer` applies them (see its docstring for what the file
owns and what happens to rows it no longer mentions), `exporter` writes them back, `files` reads
and writes JSON/YAML.
"""

from scheduling.config.exporter import export_config
from scheduling.config.files import dump_text, format_of, load_file, parse_text
from scheduling.config.importer import (
    Counts,
    ImportResult,
    apply_config,
    ehr_gate_errors,
    import_config,
)
from scheduling.config.schema import ConfigError, PracticeConfig, parse_config, validate_config

__all__ = [
    "ConfigError",
    "Counts",
    "ImportResult",
    "PracticeConfig",
    "apply_config",
    "dump_text",
    "ehr_gate_errors",
    "export_config",
    "format_of",
    "import_config",
    "load_file",
    "parse_config",
    "parse_text",
    "validate_config",
]
