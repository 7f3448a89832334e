"""Vendor compliance: export the audit trail of one practice or all, with a manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from accounts.models import Practice
from compliance import audit, export
from compliance.context import audit_context
from compliance.models import AuditAction
from core.tenancy import cross_tenant


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise CommandError(f"{value!r}: give a time zone (e.g. 2026-01-01T00:00+00:00)")
    return moment


class Command(BaseCommand):
    help = (
        "Stream the audit trail (access events and change entries) to FILE as CSV or JSON Lines "
        "with FILE.manifest.json beside it (filters, chain heads, the file's SHA-256). The export "
        "is itself recorded. Cross-tenant: for vendor compliance."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="file to write")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
        parser.add_argument("--practice", metavar="SLUG", help="one practice (default: all)")
        parser.add_argument(
            "--global",
            dest="include_global",
            action="store_true",
            help="include vendor-level events (sign-ins) of the global chain",
        )
        parser.add_argument("--since", help="ISO time with offset")
        parser.add_argument("--until", help="ISO time with offset (exclusive)")
        parser.add_argument("--action", default="")
        parser.add_argument("--actor", default="")
        parser.add_argument("--object-type", default="")
        parser.add_argument("--reason", required=True, help="why this export is made (recorded)")

    def handle(self, *args: Any, **options: Any) -> None:
        practice_id = None
        if options["practice"]:
            practice = Practice.objects.filter(slug=options["practice"]).first()
            if practice is None:
                raise CommandError(f"no practice {options['practice']!r}")
            practice_id = practice.pk
        filters = export.AuditFilters(
            practice_id=practice_id,
            since=_when(options["since"]),
            until=_when(options["until"]),
            actor=options["actor"],
            action=options["action"],
            object_type=options["object_type"],
            include_global=options["include_global"],
        )
        out = Path(options["out"])
        digest = hashlib.sha256()
        with (
            audit_context(
                request_id=f"export-{datetime.now().strftime('%Y%m%d%H%M%S')}",
                actor_label="manage.py export_audit",
                via="command:export_audit",
            ),
            cross_tenant(f"audit export: {options['reason']}"),
        ):
            event = audit.record(  # first, in its own transaction: the export is on record
                AuditAction.AUDIT_EXPORT,
                practice=practice_id,
                reason=options["reason"],
                object_type="compliance.audit",
                details={"format": options["format"], "filters": filters.describe()},
            )
            # Written beside the target and renamed once whole: a failed export never leaves a
            # file by the name asked for.
            partial = out.with_name(f"{out.name}.partial")
            outermost = not connection.in_atomic_block
            try:
                with transaction.atomic(), partial.open("wb") as fh:
                    if outermost:  # the manifest's heads and the rows from one snapshot
                        with connection.cursor() as cur:
                            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    manifest = export.manifest(
                        filters,
                        options["format"],
                        exported_by="manage.py export_audit",
                        request_id="",
                    )
                    for chunk in export.stream(filters, options["format"]):
                        digest.update(chunk)
                        fh.write(chunk)
            except export.ExportFailed as failure:
                export.record_failure(event, failure)
                raise CommandError(
                    f"{failure}; {partial} is incomplete (no trailer) and was not renamed"
                ) from failure
        partial.replace(out)
        manifest["sha256"] = digest.hexdigest()
        manifest["reason"] = options["reason"]
        Path(f"{out}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        self.stdout.write(f"wrote {out} and {out}.manifest.json (sha256 {manifest['sha256']})")
