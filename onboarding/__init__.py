"""A practice's scheduling set-up as one JSON or YAML document (docs/practice-config.md).

    validate_config(data) -> list[str]          every problem, each with its path
    import_document(data) -> ImportOutcome      validated whole, written in one transaction, then
                                                the EHR set up after the commit
    import_config(data) -> ImportResult         the same, raising instead of reporting
    export_config(practice) -> dict             the same format back

`services` is the one entry point (these names; `manage.py import_practice`, the upload page,
its worker task in `tasks` and the demo loader in `demo` all use it); `schema` validates into
typed specs, `importer` applies them (see its docstring for what the file owns and what happens
to rows it no longer mentions), `exporter` writes them back, `files` reads and writes JSON/YAML,
`provisioning` writes a practice into the EHR sandbox and syncs it back.
"""
