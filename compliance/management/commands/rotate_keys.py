"""Re-wrap practices' PHI keys under a new master key, or start new data-key versions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Practice
from compliance import crypto

HELP = """Re-wrap the per-practice PHI keys under a master key, without downtime.

Master-key rotation, step by step:
  1. Generate a new secret (>= 32 random bytes, e.g. `python -c "import secrets;
     print(secrets.token_urlsafe(32))"`) and give it to EVERY process (web, workers, cron) as
     PHI_MASTER_KEY_NEW, keeping PHI_MASTER_KEY as it is. Restart them one by one: each now
     unwraps keys under either master key. New practices still get keys under the old one.
  2. Run `manage.py rotate_keys`. It re-wraps every key not yet under PHI_MASTER_KEY_NEW, one row
     per short transaction; readers are never blocked. It is idempotent: run it again after an
     interruption, or to catch keys created meanwhile.
  3. Swap: PHI_MASTER_KEY=<new>, PHI_MASTER_KEYS_PREVIOUS=<old>, unset PHI_MASTER_KEY_NEW; restart
     one by one. Run `manage.py rotate_keys` once more (it now targets PHI_MASTER_KEY and catches
     keys wrapped under the old key during the swap), then `manage.py rotate_keys --check`.
  4. When --check reports nothing left, remove PHI_MASTER_KEYS_PREVIOUS and destroy the old secret.

Ciphertexts are never re-encrypted by a master-key rotation: only the data keys' wrapping changes.
With --new-data-key, each practice instead gets a fresh data key version for new writes; existing
ciphertexts keep decrypting under the versions they name. Blind-index keys never change.
"""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--practice", metavar="SLUG", help="only this practice")
        parser.add_argument(
            "--new-data-key",
            action="store_true",
            help="start a new data key version per practice instead of re-wrapping",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; list keys not under the target master key (exit 1 if any)",
        )
        parser.add_argument(
            "--audit-signing-key",
            action="store_true",
            help="instead: a new Ed25519 key for the audit checkpoints (the local key file is "
            "replaced; with AUDIT_SIGNING_KEY set, prints a new key to set). Old public keys "
            "stay on record, so earlier checkpoints still verify",
        )

    def _rotate_audit_signing_key(self) -> None:
        import secrets
        from pathlib import Path

        from django.conf import settings

        from compliance import checkpoints

        old = checkpoints.signing_key()
        checkpoints.register_public_key(old)  # kept even if it never signed
        if settings.AUDIT_SIGNING_KEY:
            seed = secrets.token_bytes(32)
            self.stdout.write(
                "Set AUDIT_SIGNING_KEY to this new key in every process and restart them (the "
                f"current key {old.key_id} stays on record):\n{seed.hex()}"
            )
            return
        path = Path(settings.AUDIT_SIGNING_KEY_FILE)
        path.replace(path.with_name(f"{path.name}.{old.key_id}.retired"))
        new_id = checkpoints.generate_key_file(path)
        checkpoints.register_public_key(checkpoints.signing_key())
        self.stdout.write(f"audit signing key {old.key_id} retired; {new_id} signs from now on")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["audit_signing_key"]:
            self._rotate_audit_signing_key()
            return
        practices = Practice.objects.order_by("pk")
        if options["practice"]:
            practices = practices.filter(slug=options["practice"])
            if not practices.exists():
                raise CommandError(f"no practice {options['practice']!r}")
        target = crypto.rotation_target_key()
        self.stdout.write(f"target master key: {target.kek_id}")
        leftovers = 0
        for practice in practices:
            if options["check"]:
                pending = crypto.keys_not_under(practice.pk, target)
                leftovers += len(pending)
                for description in pending:
                    self.stdout.write(f"{practice.slug}: {description} not yet re-wrapped")
            elif options["new_data_key"]:
                version = crypto.start_new_data_key(practice.pk)
                self.stdout.write(f"{practice.slug}: data key v{version} is now active")
            else:
                changed = crypto.rewrap_practice_keys(practice.pk, target)
                self.stdout.write(f"{practice.slug}: {changed} key(s) re-wrapped")
        crypto.clear_key_cache()
        if options["check"]:
            if leftovers:
                raise CommandError(f"{leftovers} key(s) not under master key {target.kek_id}")
            self.stdout.write("all keys are under the target master key")
