"""The configuration file's entry points: validate, import, export (see the package docstring)."""

from onboarding.exporter import export_config
from onboarding.files import dump_text, format_of, load_file, parse_text
from onboarding.importer import (
    Counts,
    ImportResult,
    apply_config,
    config_entries,
    ehr_gate_errors,
    import_config,
)
from onboarding.schema import ConfigError, PracticeConfig, parse_config, validate_config

__all__ = [
    "ConfigError",
    "Counts",
    "ImportResult",
    "PracticeConfig",
    "apply_config",
    "config_entries",
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
