"""A practice's scheduling set-up as one JSON or YAML document (../shared/PRACTICE_CONFIG.md).

    validate_config(data) -> list[str]          every problem, each with its path
    import_config(data) -> ImportResult         validated whole, then written in one transaction
    export_config(practice) -> dict             the same format back

`services` is the entry point (these names); `schema` validates into typed specs, `importer`
applies them (see its docstring for what the file owns and what happens to rows it no longer
mentions), `exporter` writes them back, `files` reads and writes JSON/YAML.
"""
