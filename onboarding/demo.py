"""Demo practices and one demo user per role, for `make run` on a laptop. Never in production."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Practice, Role, User, VendorRole
from onboarding.nextech_provisioning import connect_sandbox_locations, ensure_sandbox_user
from onboarding.services import import_document, load_file, parse_config

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
PRACTICE_ROLES = [
    ("manager", Role.PRACTICE_MANAGER),
    ("clinician", Role.CLINICIAN),
    ("frontdesk", Role.FRONT_DESK),
    ("compliance", Role.COMPLIANCE_OFFICER),
]
VENDOR_USERS = [
    ("support@hello.demo", VendorRole.SUPPORT),
    ("compliance@hello.demo", VendorRole.VENDOR_COMPLIANCE),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    practice: str


def demo_files() -> list[Path]:
    return sorted(DEMO_DIR.glob("*.json"))


def _demo_user(username: str, password: str, **fields: object) -> User:
    user, created = User.objects.get_or_create(
        username=username, defaults={"email": username, **fields}
    )
    if created or not user.check_password(password):
        user.set_password(password)
        user.save()
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
    return user


def _ehr_kind(data: object) -> object:
    ehr = data.get("ehr") if isinstance(data, dict) else None
    return ehr.get("kind") if isinstance(ehr, dict) else None


class DemoLoadFailed(Exception):
    """A demo file was refused, or its sandbox set-up failed (loading again retries it)."""


def load_demo(password: str | None = None) -> tuple[str, list[DemoLogin]]:
    """Load every demo practice and its users; returns the shared demo password and the logins.

    Each file goes through the one import path (as `manage.py import_practice` and the upload
    page): the practice is written in its own transaction and the sandbox is set up after that
    commit, never inside it. Everything here is idempotent, so loading again repairs a failure.
    """
    password = password or secrets.token_urlsafe(12)
    logins: list[DemoLogin] = []
    for path in demo_files():
        data = load_file(path)
        nextech = _ehr_kind(data) == "nextech"
        if nextech:
            ensure_sandbox_user(data["practice"]["slug"])
        outcome = import_document(data)
        if outcome.errors or outcome.warnings or outcome.result is None:
            raise DemoLoadFailed(f"{path.name}: " + "; ".join(outcome.errors + outcome.warnings))
        practice = Practice.objects.get(pk=outcome.result.practice_id)
        if nextech:
            # Credentials come from here, as `manage.py connect_nextech` takes them: never
            # from the file.
            problems = connect_sandbox_locations(practice, parse_config(data))
            if problems:
                raise DemoLoadFailed(f"{path.name}: " + "; ".join(problems))
        with transaction.atomic():
            for handle, role in PRACTICE_ROLES:
                username = f"{handle}@{practice.slug}.demo"
                user = _demo_user(
                    username,
                    password,
                    first_name=handle.title(),
                    last_name=practice.name.split()[0],
                )
                Membership.objects.get_or_create(user=user, practice=practice, role=role)
                logins.append(DemoLogin(username, role.label, practice.name))
    with transaction.atomic():
        for username, vendor_role in VENDOR_USERS:
            _demo_user(username, password, vendor_role=vendor_role, is_staff=True)
            logins.append(DemoLogin(username, vendor_role.label, "(Hello staff)"))
    return password, logins
