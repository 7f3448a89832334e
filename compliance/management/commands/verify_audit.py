"""Verify the audit hash chains and report the first broken link of each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Practice
from compliance import audit, export
from core.tenancy import cross_tenant


class Command(BaseCommand):
    help = (
        "Walk every audit chain (one per practice, plus the global chain) from its first "
        "entry and report the first broken link: an altered, deleted, unsealed or reordered "
        "entry. With anchors (chain heads from export manifests kept outside the database) it "
        "also reports entries cut off the end or a rewritten chain. Exit status 1 if any chain "
        "is broken. With --file, checks export files offline instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--practice", metavar="SLUG", help="only this practice's chain")
        parser.add_argument(
            "--file",
            action="append",
            default=[],
            metavar="EXPORT",
            help="check an export file offline instead (repeatable), as "
            "scripts/verify_audit_export.py does: rows against the trailer, each sealed "
            "entry's hash and chain links, the signed checkpoints, the manifest's chain heads",
        )
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="CHAIN=SEQ:HASH",
            help="a head the chain must still hold (repeatable)",
        )
        parser.add_argument(
            "--manifest",
            action="append",
            default=[],
            metavar="FILE",
            help="an export manifest whose chain heads are anchors (repeatable)",
        )

    def _anchors(self, options: dict[str, Any]) -> dict[str, audit.Anchor]:
        anchors: dict[str, audit.Anchor] = {}
        try:
            for text in options["anchor"]:
                chain, anchor = audit.parse_anchor(text)
                anchors[chain] = anchor
            for path in options["manifest"]:
                data = json.loads(Path(path).read_text())
                heads = data.get("manifest", data).get("chain_heads", {})
                for chain, head in heads.items():
                    anchor = (int(head["seq"]), bytes.fromhex(head["hash"]))
                    if anchor[0] > anchors.get(chain, (0, b""))[0]:
                        anchors[chain] = anchor  # the newest head known for the chain
        except (ValueError, KeyError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        return anchors

    def _check_files(self, paths: list[str]) -> None:
        bad = []
        for path in paths:
            try:
                report = export.verify_file(Path(path))
            except OSError as exc:
                raise CommandError(str(exc)) from exc
            if report.ok:
                self.stdout.write(f"{path}: {report.fmt}, {report.rows} rows, whole and unaltered")
            else:
                bad.append(path)
                self.stdout.write(f"{path}: BAD: {report.problem}")
        if bad:
            raise CommandError(f"{len(bad)} export file(s) failed the check; first: {bad[0]}")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["file"]:
            self._check_files(options["file"])  # offline: no database needed
            return
        anchors = self._anchors(options)
        if options["practice"]:
            practice = Practice.objects.filter(slug=options["practice"]).first()
            if practice is None:
                raise CommandError(f"no practice {options['practice']!r}")
            names = [audit.chain_name(practice.pk)]
        else:
            names = sorted(set(audit.all_chains()) | set(anchors))
        broken = []
        from compliance import sealer

        self.stdout.write(
            f"{sealer.awaiting()} entries await sealing (sealed now, before the chains are walked)"
        )
        with cross_tenant("audit verification (manage.py verify_audit)"):
            for name in names:
                report = audit.verify_chain(name, anchors.get(name))
                if report.ok:
                    self.stdout.write(
                        f"{name}: {report.entries} entries, intact (head seq {report.head_seq} "
                        f"{report.head_hash.hex()[:16]}…"
                        f"{', anchored' if name in anchors else ''})"
                    )
                else:
                    broken.append(report.first_break)
                    self.stdout.write(f"{name}: BROKEN: {report.first_break}")
        if broken:
            raise CommandError(f"{len(broken)} chain(s) broken; first: {broken[0]}")
        self.stdout.write(f"all {len(names)} chain(s) intact")
