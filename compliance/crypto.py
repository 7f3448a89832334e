"""PHI at rest: AES-256-GCM field encryption under per-practice data keys, and blind indexes.

Usage, for a model that holds PHI (patients, transcripts, encounter notes, EHR credentials)::

    from compliance.crypto import (
        BlindIndexField, EncryptedJSONField, EncryptedTextField, PHIModel, blind_index,
    )

    class Patient(PHIModel):                # a TenantModel plus a per-row `row_key` (UUID)
        last_name = EncryptedTextField()
        phone = EncryptedTextField(blank=True, default="")
        insurance = EncryptedJSONField(null=True, blank=True)
        phone_index = BlindIndexField(source="phone", kind="phone")
        last_name_index = BlindIndexField(source="last_name", kind="name")

    patient = Patient.objects.create(practice=practice, last_name="Lopez", phone="555-555-0101")
    patient.last_name                       # "Lopez": decrypted lazily, on first access
    Patient.objects.for_practice(practice).filter(
        phone_index=blind_index(practice, "+1 (555) 555-0101", kind="phone"))

- The column is `bytea`; the attribute holds plaintext. Values are encrypted in `pre_save` (so
  `save()` and `bulk_create()` work) with the row's practice (`instance.practice_id`) and row
  (`instance.row_key`) bound into the AES-GCM associated data together with table and column: a
  ciphertext copied to another column, row or practice fails to decrypt (`DecryptionError`).
- `QuerySet.update(field=...)` and `filter(field=...)` with plaintext raise `TypeError`: there is
  no practice to encrypt with, and no plaintext search. Look rows up by a `BlindIndexField`
  (keyed HMAC-SHA256 of the normalised value, per-practice key), exact match only.
- `values()` / `values_list()` return opaque `Sealed` ciphertext for these columns: use instances.
- Do not move a PHI row to another practice; its ciphertexts are bound to the practice.
- Register PHI models with auditlog through `compliance.audit.register_model`, which redacts these
  fields in change entries.
- The model's migration needs `EnableRowLevelSecurity("<model>")` like any tenant table.

Keys: each practice has a data key (versioned; the active version encrypts, any version decrypts)
and a separate blind-index key, random 256-bit keys stored wrapped (AES-GCM) by a key-encryption
key derived with HKDF from `settings.PHI_MASTER_KEY`. `manage.py rotate_keys` re-wraps them under
a new master key (see its help) and can start new data-key versions; unwrapped keys are cached per
process. Ciphertext layout: format byte 0x01 | key version (4 bytes, big-endian) | nonce (12) |
AES-GCM ciphertext and tag; the header is authenticated too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django import forms
from django.conf import settings
from django.core import checks
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction

from compliance.scoping import practice_scope
from core.phone import to_e164
from core.tenancy import TenantModel, tenant_context

if TYPE_CHECKING:
    from accounts.models import Practice
    from compliance.models import PracticeDataKey

FORMAT_V1 = 0x01
NONCE_BYTES = 12
HEADER_BYTES = 1 + 4
MIN_CIPHERTEXT = HEADER_BYTES + NONCE_BYTES + 16
KEY_BYTES = 32
ACTIVE_VERSION_TTL_SECONDS = 300.0

PURPOSE_DATA = "data"
PURPOSE_INDEX = "index"


class CryptoError(Exception):
    """Base for PHI encryption failures."""


class DecryptionError(CryptoError):
    """The ciphertext was altered, moved to another row/column/practice, or its key is unknown."""


class KeyUnavailable(CryptoError):
    """No usable key: missing row, or wrapped by a master key this process is not given."""


# --- master key ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterKey:
    """A key-encryption key derived from one configured master secret, and its public id."""

    kek: bytes
    kek_id: str

    @classmethod
    def derive(cls, secret: str) -> MasterKey:
        if not secret:
            raise KeyUnavailable("empty PHI master key")
        kek = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=b"hello-practice-portal/phi-master-key",
            info=b"key-encryption-key/v1",
        ).derive(secret.encode())
        kek_id = hmac.new(kek, b"kek-id", hashlib.sha256).hexdigest()[:16]
        return cls(kek=kek, kek_id=kek_id)


def current_master_key() -> MasterKey:
    """The master key new data keys are wrapped under (`PHI_MASTER_KEY`)."""
    return MasterKey.derive(settings.PHI_MASTER_KEY)


def rotation_target_key() -> MasterKey:
    """What `rotate_keys` wraps under: `PHI_MASTER_KEY_NEW` during a rotation, else the current."""
    new = getattr(settings, "PHI_MASTER_KEY_NEW", "")
    return MasterKey.derive(new) if new else current_master_key()


def accepted_master_keys() -> dict[str, MasterKey]:
    """Every master key this process may unwrap with: current, new (rotation) and previous."""
    secrets = [
        settings.PHI_MASTER_KEY,
        getattr(settings, "PHI_MASTER_KEY_NEW", ""),
        *getattr(settings, "PHI_MASTER_KEYS_PREVIOUS", []),
    ]
    keys = [MasterKey.derive(s) for s in secrets if s]
    return {k.kek_id: k for k in keys}


def _wrap_aad(practice_id: int, purpose: str, version: int) -> bytes:
    return f"hello-phi/data-key/v1|practice={practice_id}|{purpose}|version={version}".encode()


def wrap_key(master: MasterKey, key: bytes, practice_id: int, purpose: str, version: int) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master.kek).encrypt(nonce, key, _wrap_aad(practice_id, purpose, version))


def unwrap_key(row: PracticeDataKey) -> bytes:
    master = accepted_master_keys().get(row.kek_id)
    if master is None:
        raise KeyUnavailable(
            f"{row.purpose} key v{row.version} of practice {row.practice_id} is wrapped by master "
            f"key {row.kek_id}, which this process is not configured with"
        )
    blob = bytes(row.wrapped_key)
    try:
        return AESGCM(master.kek).decrypt(
            blob[:NONCE_BYTES],
            blob[NONCE_BYTES:],
            _wrap_aad(row.practice_id, row.purpose, row.version),
        )
    except InvalidTag as exc:
        raise KeyUnavailable(
            f"{row.purpose} key v{row.version} of practice {row.practice_id} does not unwrap"
        ) from exc


# --- data keys: store and per-process cache --------------------------------------------------

_lock = threading.Lock()
_material: dict[tuple[int, str, int], bytes] = {}
_active: dict[tuple[int, str], tuple[int, float]] = {}
# Keys created lazily inside a transaction that has not committed yet: never cached until it does
# (a rolled-back key must not live on in this process's cache).
_pending: set[tuple[int, str]] = set()


def clear_key_cache() -> None:
    """Forget unwrapped keys (tests, and after a rotation in this process)."""
    with _lock:
        _material.clear()
        _active.clear()


def _key_model() -> type[PracticeDataKey]:
    from compliance.models import PracticeDataKey

    return PracticeDataKey


def _remember(practice_id: int, purpose: str, version: int, key: bytes, active: bool) -> None:
    if (practice_id, purpose) in _pending:
        return
    with _lock:
        _material[(practice_id, purpose, version)] = key
        if active:
            _active[(practice_id, purpose)] = (version, time.monotonic())


def _insert_new_key(
    practice_id: int, purpose: str, version: int, master: MasterKey
) -> PracticeDataKey:
    """A fresh random key, stored wrapped under `master`, as the active version."""
    raw = AESGCM.generate_key(bit_length=256)
    return _key_model().objects.create(
        practice_id=practice_id,
        purpose=purpose,
        version=version,
        wrapped_key=wrap_key(master, raw, practice_id, purpose, version),
        kek_id=master.kek_id,
        active=True,
    )


def _create_active_key(practice_id: int, purpose: str) -> PracticeDataKey | None:
    """Insert version 1 (or next) as the active key; None if a concurrent writer won the race."""
    model = _key_model()
    latest = (
        model.objects.filter(practice_id=practice_id, purpose=purpose)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    version = (latest or 0) + 1
    try:
        with transaction.atomic():
            row = _insert_new_key(practice_id, purpose, version, current_master_key())
    except IntegrityError:
        return None
    if connection.in_atomic_block:
        _pending.add((practice_id, purpose))

        def committed() -> None:
            _pending.discard((practice_id, purpose))

        transaction.on_commit(committed)
    return row


def provision_keys(practice: Practice | int) -> None:
    """Give a practice its data and blind-index keys (idempotent; on practice creation)."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    for purpose in (PURPOSE_DATA, PURPOSE_INDEX):
        _active_key(practice_id, purpose)


def _active_key(practice_id: int, purpose: str) -> tuple[int, bytes]:
    cached = _active.get((practice_id, purpose))
    if cached and time.monotonic() - cached[1] < ACTIVE_VERSION_TTL_SECONDS:
        key = _material.get((practice_id, purpose, cached[0]))
        if key is not None:
            return cached[0], key
    model = _key_model()
    with practice_scope(practice_id):
        for _attempt in range(3):
            row = model.objects.filter(
                practice_id=practice_id, purpose=purpose, active=True
            ).first()
            if row is None:
                row = _create_active_key(practice_id, purpose)
            if row is not None:
                break
        else:  # pragma: no cover - three lost races in a row
            raise KeyUnavailable(f"could not create a {purpose} key for practice {practice_id}")
    key = unwrap_key(row)
    _remember(practice_id, purpose, row.version, key, active=True)
    return row.version, key


def _key_version(practice_id: int, purpose: str, version: int) -> bytes:
    key = _material.get((practice_id, purpose, version))
    if key is not None:
        return key
    with practice_scope(practice_id):
        row = (
            _key_model()
            .objects.filter(practice_id=practice_id, purpose=purpose, version=version)
            .first()
        )
    if row is None:
        raise KeyUnavailable(f"practice {practice_id} has no {purpose} key v{version}")
    key = unwrap_key(row)
    _remember(practice_id, purpose, version, key, active=False)
    return key


# --- encryption ------------------------------------------------------------------------------


def _aad(header: bytes, practice_id: int, context: str) -> bytes:
    return b"hello-phi/v1|" + header + f"|practice={practice_id}|{context}".encode()


def encrypt(practice_id: int, context: str, plaintext: bytes) -> bytes:
    """Encrypt for one practice under its active data key, bound to `context` (table.column|row)."""
    version, key = _active_key(practice_id, PURPOSE_DATA)
    header = bytes([FORMAT_V1]) + version.to_bytes(4, "big")
    nonce = os.urandom(NONCE_BYTES)
    return (
        header + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(header, practice_id, context))
    )


def decrypt(practice_id: int, context: str, blob: bytes) -> bytes:
    """Decrypt what `encrypt` produced for the same practice and context, or raise."""
    blob = bytes(blob)
    if len(blob) < MIN_CIPHERTEXT or blob[0] != FORMAT_V1:
        raise DecryptionError("not a PHI ciphertext (unknown format)")
    header = blob[:HEADER_BYTES]
    version = int.from_bytes(blob[1:HEADER_BYTES], "big")
    try:
        key = _key_version(practice_id, PURPOSE_DATA, version)
    except KeyUnavailable as exc:
        raise DecryptionError(str(exc)) from exc
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(
            nonce, blob[HEADER_BYTES + NONCE_BYTES :], _aad(header, practice_id, context)
        )
    except InvalidTag as exc:
        raise DecryptionError(
            "PHI ciphertext failed authentication: altered, or moved from another row, "
            "column or practice"
        ) from exc


# --- blind index -----------------------------------------------------------------------------


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def normalize_phone(value: str) -> str:
    """E.164 (US numbers without a country code); unparseable input keeps its digits."""
    text = _nfkc(str(value)).strip()
    number = to_e164(text)
    if number is not None:
        return number
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" if text.startswith("+") else "") + digits


def normalize_email(value: str) -> str:
    return _nfkc(str(value)).strip().casefold()


def normalize_name(value: str) -> str:
    return " ".join(_nfkc(str(value)).casefold().split())


def normalize_date(value: str | date) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value).strip()).isoformat()


def normalize_text(value: str) -> str:
    return _nfkc(str(value)).strip()


NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "phone": normalize_phone,
    "email": normalize_email,
    "name": normalize_name,
    "date": normalize_date,
    "text": normalize_text,
}


def blind_index(practice: Practice | int, value: Any, kind: str = "text") -> bytes | None:
    """The keyed HMAC-SHA256 of a normalised value for exact-match lookups; None for empty input.

    `kind` picks the normaliser (phone, email, name, date, text) and is part of the MAC input, so
    equal strings of different kinds do not match. Each practice has its own index key: the same
    phone number indexes differently in two practices.
    """
    if value is None or value == "":
        return None
    if kind not in NORMALIZERS:
        raise ValueError(f"unknown blind index kind {kind!r}; one of {sorted(NORMALIZERS)}")
    normalized = NORMALIZERS[kind](value)
    if not normalized:
        return None
    practice_id = practice if isinstance(practice, int) else practice.pk
    _version, key = _active_key(practice_id, PURPOSE_INDEX)
    return hmac.new(key, f"{kind}\x00{normalized}".encode(), hashlib.sha256).digest()


# --- model fields ----------------------------------------------------------------------------


class Sealed(bytes):
    """Ciphertext as loaded from, or headed for, the database. Never plaintext."""

    def __repr__(self) -> str:
        return f"<Sealed {len(self)} bytes>"

    __str__ = __repr__


class _DecryptingAttribute:
    """Holds plaintext on the instance; decrypts a loaded ciphertext on first access."""

    def __init__(self, field: EncryptedField) -> None:
        self.field = field

    def __get__(self, instance: models.Model | None, owner: type) -> Any:
        if instance is None:
            return self
        value = instance.__dict__.get(self.field.attname)
        if isinstance(value, Sealed):
            value = self.field.open(instance, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedField(models.BinaryField):
    """Base for encrypted columns (bytea); subclasses say how plaintext becomes bytes and back."""

    description = "Encrypted (AES-256-GCM, per-practice key)"

    def __init__(
        self,
        *args: Any,
        practice_attr: str = "practice_id",
        row_attr: str = "row_key",
        **kwargs: Any,
    ) -> None:
        self.practice_attr = practice_attr
        self.row_attr = row_attr
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.practice_attr != "practice_id":
            kwargs["practice_attr"] = self.practice_attr
        if self.row_attr != "row_key":
            kwargs["row_attr"] = self.row_attr
        if self.editable:
            kwargs.pop("editable", None)
        else:
            kwargs["editable"] = False
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        model = getattr(self, "model", None)
        if model is not None and not model._meta.abstract:
            names = {f.attname for f in model._meta.concrete_fields}
            for attr in (self.practice_attr, self.row_attr):
                if attr not in names and attr != "pk":
                    errors.append(
                        checks.Error(
                            f"{model.__name__}.{self.name} binds ciphertexts to {attr!r}, which "
                            "the model lacks (subclass compliance.crypto.PHIModel)",
                            obj=self,
                            id="compliance.E001",
                        )
                    )
        return errors

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _DecryptingAttribute(self))

    # plaintext <-> bytes
    def encode_plaintext(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode_plaintext(self, data: bytes) -> Any:
        raise NotImplementedError

    def context(self, instance: models.Model) -> tuple[int, str]:
        practice_id = getattr(instance, self.practice_attr)
        row = getattr(instance, self.row_attr)
        if practice_id is None or row is None:
            raise CryptoError(
                f"{type(instance).__name__}.{self.name}: encrypting needs "
                f"{self.practice_attr} and {self.row_attr}"
            )
        return int(practice_id), f"{self.model._meta.db_table}.{self.column}|row={row}"

    def seal(self, instance: models.Model, value: Any) -> Sealed:
        practice_id, context = self.context(instance)
        return Sealed(encrypt(practice_id, context, self.encode_plaintext(value)))

    def open(self, instance: models.Model, blob: bytes) -> Any:
        practice_id, context = self.context(instance)
        return self.decode_plaintext(decrypt(practice_id, context, blob))

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        raw = model_instance.__dict__.get(self.attname)
        if raw is None or isinstance(raw, Sealed):
            return raw  # unchanged since loaded: the stored ciphertext is still bound right
        return self.seal(model_instance, raw)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return None if value is None else Sealed(bytes(value))

    def get_prep_value(self, value: Any) -> Any:
        if value is None or isinstance(value, Sealed):
            return value
        raise TypeError(
            f"{self.model.__name__}.{self.name} is encrypted: write it through save() or "
            "bulk_create() (which encrypt with the row's practice), and look rows up by a "
            "BlindIndexField, never by plaintext"
        )

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        return "[encrypted]"  # serializers (dumpdata, auditlog snapshots) never see plaintext

    empty_value: Any = None

    def get_default(self) -> Any:
        if self.has_default():
            return self._get_default()  # type: ignore[attr-defined]
        return None if self.null else self.empty_value


class EncryptedTextField(EncryptedField):
    empty_value = ""

    def encode_plaintext(self, value: Any) -> bytes:
        return str(value).encode()

    def decode_plaintext(self, data: bytes) -> str:
        return data.decode()

    def formfield(self, **kwargs: Any) -> forms.Field:  # type: ignore[override]
        defaults: dict[str, Any] = {"required": not self.blank, "widget": forms.Textarea}
        defaults.update(kwargs)
        return forms.CharField(**defaults)


class EncryptedJSONField(EncryptedField):
    def encode_plaintext(self, value: Any) -> bytes:
        return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True).encode()

    def decode_plaintext(self, data: bytes) -> Any:
        return json.loads(data)

    def formfield(self, **kwargs: Any) -> forms.Field:  # type: ignore[override]
        defaults: dict[str, Any] = {"required": not self.blank}
        defaults.update(kwargs)
        return forms.JSONField(**defaults)


class BlindIndexField(models.BinaryField):
    """HMAC of another field's normalised plaintext, computed on save, for exact-match lookup.

    `source` names the (encrypted) field on the same model; `kind` the normaliser. Filter with
    `blind_index(practice, value, kind=...)`, or `Model.<field>.lookup(practice, value)`.
    """

    description = "Blind index (HMAC-SHA256, per-practice key)"

    def __init__(
        self,
        *args: Any,
        source: str = "",
        kind: str = "text",
        practice_attr: str = "practice_id",
        **kwargs: Any,
    ) -> None:
        if kind not in NORMALIZERS:
            raise ValueError(f"unknown blind index kind {kind!r}")
        self.source = source
        self.kind = kind
        self.practice_attr = practice_attr
        kwargs.setdefault("null", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs["kind"] = self.kind
        if self.practice_attr != "practice_id":
            kwargs["practice_attr"] = self.practice_attr
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        if isinstance(model_instance.__dict__.get(self.source), Sealed):
            return getattr(model_instance, self.attname)  # source unchanged since loaded
        value = getattr(model_instance, self.source)
        digest = blind_index(int(getattr(model_instance, self.practice_attr)), value, self.kind)
        setattr(model_instance, self.attname, digest)
        return digest

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        return None if value is None else bytes(value)

    def lookup(self, practice: Practice | int, value: Any) -> bytes | None:
        return blind_index(practice, value, self.kind)


class PHIModel(TenantModel):
    """A tenant row with encrypted fields: `row_key` is the per-row identity ciphertexts bind to."""

    row_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True


# --- rotation (manage.py rotate_keys) --------------------------------------------------------


def rewrap_practice_keys(practice_id: int, target: MasterKey | None = None) -> int:
    """Re-wrap every key of a practice under `target` (default: the rotation target); returns how
    many rows changed. Idempotent, and row by row in short transactions: a reader unwraps with
    whichever accepted master key a row names, so nothing waits and nothing breaks meanwhile."""
    from django.utils import timezone

    target = target or rotation_target_key()
    model = _key_model()
    changed = 0
    with tenant_context(practice_id):
        ids = list(
            model.objects.filter(practice_id=practice_id)
            .exclude(kek_id=target.kek_id)
            .values_list("pk", flat=True)
        )
        for pk in ids:
            with transaction.atomic():
                row = model.objects.select_for_update().get(pk=pk)
                if row.kek_id == target.kek_id:
                    continue
                raw = unwrap_key(row)
                row.wrapped_key = wrap_key(target, raw, practice_id, row.purpose, row.version)
                row.kek_id = target.kek_id
                row.rewrapped_at = timezone.now()
                row.save(update_fields=["wrapped_key", "kek_id", "rewrapped_at"])
                changed += 1
    return changed


def start_new_data_key(practice_id: int) -> int:
    """Make a fresh data key version the active one (new writes use it; old versions still
    decrypt what they encrypted). Returns the new version."""
    model = _key_model()
    target = rotation_target_key()
    with tenant_context(practice_id), transaction.atomic():
        current = (
            model.objects.select_for_update()
            .filter(practice_id=practice_id, purpose=PURPOSE_DATA)
            .order_by("-version")
            .first()
        )
        version = (current.version if current else 0) + 1
        model.objects.filter(practice_id=practice_id, purpose=PURPOSE_DATA, active=True).update(
            active=False
        )
        _insert_new_key(practice_id, PURPOSE_DATA, version, target)
    with _lock:
        _active.pop((practice_id, PURPOSE_DATA), None)
    return version


def keys_not_under(practice_id: int, target: MasterKey | None = None) -> list[str]:
    """Describe this practice's keys that are not yet wrapped by `target` (for `--check`)."""
    target = target or rotation_target_key()
    with tenant_context(practice_id):
        return [
            str(row)
            for row in _key_model()
            .objects.filter(practice_id=practice_id)
            .exclude(kek_id=target.kek_id)
            .order_by("purpose", "version")
        ]
