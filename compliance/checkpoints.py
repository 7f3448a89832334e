"""Signed checkpoints: what an outsider checks an export against.

After each sealed batch, in the sealer's transaction, a checkpoint records the heads of the
chains the batch touched (seq and hash), the number of entries sealed so far, the time and the
previous checkpoint's digest, as a canonical JSON body signed with Ed25519. Someone who can
rewrite the database but does not hold the signing key cannot make the trail agree with the
checkpoints already given out (in exports), nor sign new ones for a rewritten chain.

The key: `AUDIT_SIGNING_KEY` (the 32-byte Ed25519 seed as 64 hex digits) in production; without
it, a key generated on first use into `AUDIT_SIGNING_KEY_FILE` (the local state directory, never
the repository) for development and tests. Every public key that ever signed is kept
(`AuditSigningKey`, append-only), so checkpoints signed before a rotation still verify; the
compliance page shows the active one and exports carry them all. Rotating: set a new key and
restart (`manage.py rotate_keys --audit-signing-key` makes a new local one).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

BODY_VERSION = 1


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: bytes
    key_id: str


_key: SigningKey | None = None


def key_id_of(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def _load_seed() -> bytes:
    configured = getattr(settings, "AUDIT_SIGNING_KEY", "")
    if configured:
        seed = bytes.fromhex(configured.strip())
        if len(seed) != 32:
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be 64 hex digits (32 bytes)")
        return seed
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if not (settings.DEBUG or getattr(settings, "TESTING", False)):
            raise ImproperlyConfigured(
                "AUDIT_SIGNING_KEY must be set when DEBUG is off (the audit checkpoints' key)"
            )
        generate_key_file(path)
    return bytes.fromhex(path.read_text().strip())


def generate_key_file(path: Path) -> str:
    """A new local signing key in `path` (readable by its owner only); returns its key id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(seed.hex() + "\n")
    if path.exists():  # another process made one meanwhile: theirs wins, ours is dropped
        tmp.unlink()
    else:
        tmp.replace(path)
    global _key
    _key = None
    return signing_key().key_id


def signing_key() -> SigningKey:
    global _key
    if _key is None:
        private = Ed25519PrivateKey.from_private_bytes(_load_seed())
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        _key = SigningKey(private, public, key_id_of(public))
    return _key


def forget_key() -> None:
    """Load the key again on next use (after a rotation, in tests)."""
    global _key
    _key = None


def register_public_key(key: SigningKey) -> None:
    """Keep this key's public half on record (idempotent: once per sealed batch, in its
    transaction, so a rolled-back batch never leaves a checkpoint without its key)."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO compliance_auditsigningkey (key_id, public_key, created_at) "
            "VALUES (%s, %s, %s) ON CONFLICT (key_id) DO NOTHING",
            [key.key_id, key.public, timezone.now()],
        )


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


TRAILER_CONTEXT = "hello-portal audit export trailer v1\n"  # never a checkpoint's body


def sign_trailer(trailer: dict[str, Any], key: SigningKey | None = None) -> dict[str, str]:
    """An export trailer's signature: over TRAILER_CONTEXT and its canonical JSON, so neither
    signature can stand for the other kind of document."""
    key = key or signing_key()
    text = TRAILER_CONTEXT + canonical(trailer)
    return {"key_id": key.key_id, "signature": key.private.sign(text.encode()).hex()}


def _previous() -> tuple[dict[str, Any], str] | None:
    with connection.cursor() as cur:
        cur.execute("SELECT body FROM compliance_auditcheckpoint ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
    if row is None:
        return None
    return json.loads(row[0]), hashlib.sha256(row[0].encode()).hexdigest()


def _heads(chains: list[str] | None) -> dict[str, dict[str, Any]]:
    """The heads of these chains (every chain when None), from the seals."""
    with connection.cursor() as cur:
        if chains is None:
            cur.execute(
                "SELECT DISTINCT ON (chain) chain, seq, encode(hash, 'hex') "
                "FROM compliance_auditseal ORDER BY chain, seq DESC"
            )
        else:
            cur.execute(
                "SELECT c.chain, s.seq, encode(s.hash, 'hex') FROM unnest(%s::text[]) AS c(chain) "
                "CROSS JOIN LATERAL (SELECT seq, hash FROM compliance_auditseal "
                "WHERE chain = c.chain ORDER BY seq DESC LIMIT 1) AS s",
                [chains],
            )
        return {chain: {"seq": int(seq), "hash": digest} for chain, seq, digest in cur.fetchall()}


def record(chains: list[str], sealed: int) -> dict[str, Any]:
    """Sign and store the checkpoint after a batch that sealed `sealed` entries into `chains`
    (call it in the sealer's transaction, under its lock). The first checkpoint of a database
    names every chain and counts every seal."""
    key = signing_key()
    register_public_key(key)
    previous = _previous()
    heads = _heads(chains if previous is not None else None)
    if previous is None:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM compliance_auditseal")
            entries = int(cur.fetchone()[0])
    else:
        entries = int(previous[0]["entries"]) + sealed
    created = timezone.now()
    body = {
        "v": BODY_VERSION,
        "created_at": created.isoformat(),
        "entries": entries,
        "heads": heads,
        "prev": previous[1] if previous is not None else None,
        "key_id": key.key_id,
    }
    text = canonical(body)
    signature = key.private.sign(text.encode()).hex()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO compliance_auditcheckpoint (created_at, body, signature, key_id) "
            "VALUES (clock_timestamp(), %s, %s, %s)",
            [text, signature, key.key_id],
        )
    return {"body": text, "signature": signature, "key_id": key.key_id}


def public_keys() -> dict[str, str]:
    """Every public key that signed checkpoints here, by key id (hex of the raw 32 bytes)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT key_id, encode(public_key, 'hex') FROM compliance_auditsigningkey "
            "ORDER BY created_at, key_id"
        )
        return dict(cur.fetchall())


def covering(chain_heads: dict[str, int]) -> list[dict[str, Any]]:
    """For each chain (name -> head seq), the checkpoint that names that head: the first one
    recorded after the head's seal (the sealer records it in the same transaction). Distinct
    checkpoints, in id order."""
    if not chain_heads:
        return []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT ON (k.id) k.id, k.body, k.signature, k.key_id "
            "FROM unnest(%s::text[], %s::bigint[]) AS h(chain, seq) "
            "JOIN compliance_auditseal s ON s.chain = h.chain AND s.seq = h.seq "
            "CROSS JOIN LATERAL (SELECT id, body, signature, key_id "
            "  FROM compliance_auditcheckpoint WHERE created_at >= s.sealed_at "
            "  ORDER BY created_at, id LIMIT 1) AS k ORDER BY k.id",
            [list(chain_heads), list(chain_heads.values())],
        )
        return [
            {"id": pk, "body": body, "signature": signature, "key_id": key_id}
            for pk, body, signature, key_id in cur.fetchall()
        ]
