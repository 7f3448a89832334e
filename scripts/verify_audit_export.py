#!/usr/bin/env python3
"""Check a Hello Practice Portal audit export on its own: no Django, no database.

    python3 verify_audit_export.py EXPORT [--public-key HEX ...]

Needs Python 3.11+ and the `cryptography` package (pip install cryptography). EXPORT is a CSV or
JSON Lines file as the portal exports it, with its trailer as the last line. Checked:
1. The file is whole: the trailer is there and last, its row count and the SHA-256 of the rows
   (in file order) match, the last row is the one it names.
2. Every sealed row's hash: SHA-256 over "version|chain|seq|table|id|prev_hash|payload", where
   the payload is the entry as it was sealed (the `sealed` column), and the row's own columns
   agree with that payload (an edit to either is caught).
3. The chains: within each chain the rows' seqs are distinct, and a row's prev_hash is the hash
   of the row before it in the chain (rows in any file order); an export must hold every seq
   from 1 to the head. A filtered export holds, for each entry its filters leave out, a stub
   (source `omitted`): its chain, seq, prev_hash and hash, no content; the trailer counts them.
4. The signed checkpoints in the trailer: each signature verifies (Ed25519) under its key, and
   each chain's head in the export is the head a checkpoint signed, with that many entries.
   Keys come from the export; give the key the portal's compliance page shows with
   --public-key to pin it (an export whose checkpoints were signed by another key is then
   refused).
5. The trailer's own signature, by one of those keys: its counts and the digest of the rows
   are the portal's, not recomputed by whoever edited the file.
Prints "OK ..." and exits 0, or prints the first problem found and its row and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

COLUMNS = (
    "source",
    "id",
    "occurred_at",
    "practice_id",
    "action",
    "actor_user_id",
    "actor_label",
    "api_client_id",
    "impersonation_session_id",
    "object_type",
    "object_ids",
    "request_id",
    "ip",
    "user_agent",
    "reason",
    "details",
    "sealed",
    "seal_version",
    "prev_hash",
    "chain",
    "seq",
    "hash",
)
NUMBERS = {"id", "practice_id", "actor_user_id", "impersonation_session_id", "seq"}
CSV_HEADER = ",".join(COLUMNS) + "\n"
NEUTRALISE_PREFIX = "'"
TABLES = {"access": "compliance_accessevent", "change": "compliance_changeentry"}
CHANGE_ACTIONS = {0: "change.create", 1: "change.update", 2: "change.delete", 3: "change.access"}
GENESIS = "0" * 64
UNFILTERED = {"since": None, "until": None, "actor": "", "action": "", "object_type": ""}
OMITTED = "omitted"  # a stub: an entry the export's filters leave out
STUB_EMPTY = COLUMNS[2 : COLUMNS.index("seal_version")]  # no content in a stub
TRAILER_CONTEXT = "hello-portal audit export trailer v1\n"
HEX64 = re.compile(r"[0-9a-f]{64}")


class Bad(Exception):
    def __init__(self, problem: str, row: int | None = None, entry: str = "") -> None:
        super().__init__(problem)
        self.problem, self.row, self.entry = problem, row, entry

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{where}{f' ({self.entry})' if self.entry else ''}: {self.problem}"


# --- reading the file -----------------------------------------------------------------------

_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)
_CSV_CELL = re.compile(r'"((?:[^"]|"")*)"(,|\n)|(,|\n)')


def copy_text(value: str | None) -> str:
    """A value as PostgreSQL's COPY text format writes it: what the trailer's digest covers."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def csv_cells(row: str) -> list[str | None]:
    cells: list[str | None] = []
    pos = 0
    while True:
        match = _CSV_CELL.match(row, pos)
        if match is None:
            raise Bad(f"malformed CSV row: {row[:60]!r}")
        if match[1] is not None:
            cells.append(match[1].replace('""', '"'))
            sep = match[2]
        else:
            cells.append(None)
            sep = match[3]
        pos = match.end()
        if sep == "\n":
            if pos != len(row):
                raise Bad("malformed CSV row")
            return cells


def csv_rows(lines: Iterator[str]) -> Iterator[list[str | None]]:
    pending = ""
    for line in lines:
        pending += line
        if pending.count('"') % 2 == 0 and pending.endswith("\n"):
            yield csv_cells(pending)
            pending = ""
    if pending:
        raise Bad("the file ends inside a row (truncated)")


def raw_csv(cells: list[str | None]) -> list[str | None]:
    """Cells back to their stored values (the spreadsheet neutralisation undone)."""
    out: list[str | None] = []
    for cell in cells:
        if cell is not None and cell.startswith(("=", "+", "-", "@", "\t", "\r")):
            raise Bad(f"a cell is not neutralised (a spreadsheet formula): {cell[:20]!r}")
        out.append(cell[1:] if cell is not None and cell.startswith(NEUTRALISE_PREFIX) else cell)
    return out


def raw_jsonl(record: dict[str, Any]) -> list[str | None]:
    if list(record) != list(COLUMNS):
        raise Bad(f"a line's keys are not the export's columns: {list(record)[:4]}")
    fields: list[str | None] = []
    for col in COLUMNS:
        value = record[col]
        if col in NUMBERS:
            fields.append("null" if value is None else str(int(value)))
        else:
            fields.append(None if value is None else str(value))
    return fields


def read(path: Path) -> tuple[list[list[str | None]], dict[str, Any], dict[str, Any] | None]:
    """(rows as raw fields, trailer, manifest or None)."""
    with path.open(encoding="utf-8", newline="") as fh:
        first = fh.readline()
        rows: list[list[str | None]] = []
        trailer: dict[str, Any] | None = None
        manifest: dict[str, Any] | None = None
        if first == CSV_HEADER:
            for cells in csv_rows(fh):
                if trailer is not None:
                    raise Bad("rows follow the trailer")
                if len(cells) != len(COLUMNS):
                    raise Bad(f"a row has {len(cells)} cells, not {len(COLUMNS)}", len(rows) + 1)
                if cells[0] == "trailer":
                    trailer = json.loads(cells[COLUMNS.index("details")] or "null")["trailer"]
                else:
                    rows.append(raw_csv(cells))
        else:
            lines = [first, *fh] if first else []
            for number, line in enumerate(lines):
                if not line.endswith("\n"):
                    raise Bad("the last line is cut off (truncated)")
                if trailer is not None:
                    raise Bad("rows follow the trailer")
                obj = json.loads(line)
                if number == 0 and "manifest" in obj:
                    manifest = obj["manifest"]
                elif "trailer" in obj:
                    trailer = obj["trailer"]
                else:
                    rows.append(raw_jsonl(obj))
    if not isinstance(trailer, dict):
        raise Bad(f"no trailer after {len(rows)} rows: the export is incomplete (truncated)")
    return rows, trailer, manifest


# --- the checks -------------------------------------------------------------------------------


def check_whole(rows: list[list[str | None]], trailer: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    for fields in rows:
        digest.update(("\t".join(map(copy_text, fields)) + "\n").encode())
    if not trailer.get("complete") or trailer.get("rows") != len(rows):
        raise Bad(f"the trailer counts {trailer.get('rows')} rows, the file holds {len(rows)}")
    if trailer.get("sha256") != digest.hexdigest():
        raise Bad("the rows do not match the trailer's digest (changed, lost or reordered)")
    if rows:
        last = rows[-1]
        named = {"source": last[0], "id": int(last[1] or 0), "hash": last[-1]}
        if trailer.get("last") != named:
            raise Bad("the last row is not the trailer's last entry", len(rows))


def _same_time(exported: str | None, sealed: Any) -> bool:
    if exported is None or sealed is None:
        return exported is None and sealed is None
    text = exported.replace(" ", "T")
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    return datetime.fromisoformat(text) == datetime.fromisoformat(str(sealed))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def check_row_against_payload(row: dict[str, str | None], payload: dict[str, Any]) -> str:
    """The exported columns must say what the sealed entry says; '' or the first difference."""
    source = row["source"]

    def number(col: str) -> str:
        value = row[col]
        return "null" if value in (None, "null") else str(value)

    def num(value: Any) -> str:
        return "null" if value is None else str(int(value))

    if str(payload.get("id")) != row["id"]:
        return "the row's id is not its sealed entry's"
    if source == "access":
        expected: dict[str, Any] = {
            "practice_id": num(payload.get("practice_id")),
            "action": payload.get("action"),
            "actor_user_id": num(payload.get("actor_user_id")),
            "actor_label": payload.get("actor_label"),
            "api_client_id": payload.get("api_client_id"),
            "impersonation_session_id": num(payload.get("impersonation_session_id")),
            "object_type": payload.get("object_type"),
            "object_ids": " ".join(payload.get("object_ids") or []),
            "request_id": payload.get("request_id"),
            "ip": _text(payload.get("ip")),
            "user_agent": payload.get("user_agent"),
            "reason": payload.get("reason"),
        }
        details = payload.get("details")
        time_key = "occurred_at"
    else:
        changes = payload.get("changes")
        expected = {
            "practice_id": num(payload.get("practice_id")),
            "action": CHANGE_ACTIONS.get(int(payload.get("action", -1)), ""),
            "actor_user_id": num(payload.get("actor_id")),
            "actor_label": payload.get("actor_email") or "",
            "api_client_id": payload.get("api_client_id"),
            "impersonation_session_id": num(payload.get("impersonation_session_id")),
            "object_ids": payload.get("object_pk"),
            "request_id": payload.get("cid") or "",
            "ip": _text(payload.get("remote_addr")),
        }
        details = changes if changes is not None else payload.get("changes_text")
        time_key = "timestamp"
    for col, value in expected.items():
        got = number(col) if col in NUMBERS else row[col]
        if got != value:
            return f"column {col} differs from the sealed entry"
    exported_details = row["details"]
    if source == "access" or payload.get("changes") is not None:
        try:
            same = json.loads(exported_details or "null") == details
        except ValueError:
            same = False
    else:
        same = exported_details == details
    if not same:
        return "column details differs from the sealed entry"
    if not _same_time(row["occurred_at"], payload.get(time_key)):
        return "column occurred_at differs from the sealed entry"
    return ""


def entry_hash(row: dict[str, str | None]) -> str:
    text = "|".join(
        [
            str(row["seal_version"]),
            str(row["chain"]),
            str(row["seq"]),
            TABLES[str(row["source"])],
            str(row["id"]),
            str(row["prev_hash"]),
            str(row["sealed"]),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def check_signature(
    what: str, key_id: str, signature: str, text: str, keys: dict[str, str], pinned: set[str]
) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = keys.get(key_id)
    if public is None:
        raise Bad(f"{what} is signed by key {key_id}, which the export does not carry")
    if pinned and public not in pinned:
        raise Bad(f"{what} is signed by key {key_id}, not by the key you gave")
    if hashlib.sha256(bytes.fromhex(public)).hexdigest()[:16] != key_id:
        raise Bad(f"public key {key_id} is not the key its id names")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(signature), text.encode()
        )
    except (InvalidSignature, ValueError) as exc:
        raise Bad(f"{what}'s signature does not verify (altered or forged)") from exc


def check_checkpoint(
    checkpoint: dict[str, Any], keys: dict[str, str], pinned: set[str]
) -> dict[str, Any]:
    key_id = checkpoint.get("key_id", "")
    body = str(checkpoint.get("body", ""))
    signature = str(checkpoint.get("signature", ""))
    check_signature("a checkpoint", key_id, signature, body, keys, pinned)
    parsed = json.loads(body)
    if parsed.get("key_id") != key_id:
        raise Bad("a checkpoint's body names another key than the one that signed it")
    return dict(parsed)


def check_trailer_signature(
    trailer: dict[str, Any], keys: dict[str, str], pinned: set[str]
) -> None:
    signed = trailer.get("trailer_signature")
    if not isinstance(signed, dict):
        raise Bad("the trailer is not signed")
    body = {k: v for k, v in trailer.items() if k != "trailer_signature"}
    text = TRAILER_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":"))
    check_signature(
        "the trailer",
        str(signed.get("key_id", "")),
        str(signed.get("signature", "")),
        text,
        keys,
        pinned,
    )


def check_stub(row: dict[str, str | None], number: int, label: str) -> None:
    """A left-out entry's stub: its place in a chain and hashes, and nothing of its content."""
    if any(row[col] not in (None, "null") for col in STUB_EMPTY):
        raise Bad("a stub of a left-out entry carries content", number, label)
    if row["chain"] is None or row["seq"] in (None, "null"):
        raise Bad("a stub lacks its chain or seq", number, label)
    if not all(HEX64.fullmatch(str(row[col])) for col in ("hash", "prev_hash")):
        raise Bad("a stub's hashes are not SHA-256 digests", number, label)


def verify(path: Path, pinned: set[str]) -> str:
    return f"OK {path.name}: {check(*read(path), pinned)}"


def check(
    rows: list[list[str | None]],
    trailer: dict[str, Any],
    manifest: dict[str, Any] | None,
    pinned: set[str],
) -> str:
    """Every check on a file's rows, trailer and manifest line (see the module's docstring);
    raises Bad on the first problem, else says what was checked. The portal's
    `manage.py verify_audit --file` runs this too."""
    check_whole(rows, trailer)
    filters = (manifest or {}).get("filters") or trailer.get("filters")
    unfiltered = filters is not None and all(filters.get(k, v) == v for k, v in UNFILTERED.items())
    with_stubs = "omitted" in trailer
    complete = unfiltered or with_stubs  # every chain whole from seq 1 to its signed head

    chains: dict[str, dict[int, tuple[int, dict[str, str | None]]]] = {}
    unsealed = stubs = 0
    for number, fields in enumerate(rows, start=1):
        row = dict(zip(COLUMNS, fields, strict=True))
        label = f"{row['source']} #{row['id']}"
        if row["source"] == OMITTED and with_stubs:
            check_stub(row, number, label)
            stubs += 1
        elif row["source"] not in TABLES:
            raise Bad(f"unknown source {row['source']!r}", number, label)
        elif row["hash"] is None:
            unsealed += 1
            continue
        else:
            if row["sealed"] is None or row["chain"] is None or row["seq"] in (None, "null"):
                raise Bad("a sealed row lacks its payload, chain or seq", number, label)
            if entry_hash(row) != row["hash"]:
                raise Bad("content does not match its hash (altered)", number, label)
            problem = check_row_against_payload(row, json.loads(str(row["sealed"])))
            if problem:
                raise Bad(problem + " (altered)", number, label)
        seq = int(str(row["seq"]))
        chain = chains.setdefault(str(row["chain"]), {})
        if seq in chain:
            raise Bad(f"seq {seq} of {row['chain']} appears twice", number, label)
        chain[seq] = (number, row)

    for name, entries in sorted(chains.items()):
        previous_seq, previous_hash = 0, GENESIS
        for seq in sorted(entries):
            number, row = entries[seq]
            label = f"{row['source']} #{row['id']}"
            if seq == previous_seq + 1 and row["prev_hash"] != previous_hash:
                raise Bad(f"{name} seq {seq}: prev_hash is not the hash before it", number, label)
            if complete and seq != previous_seq + 1:
                raise Bad(
                    f"{name}: seq {previous_seq + 1} is missing (entries dropped)", number, label
                )
            if seq == 1 and row["prev_hash"] != GENESIS:
                raise Bad(f"{name} seq 1 does not start from the genesis", number, label)
            previous_seq, previous_hash = seq, str(row["hash"])

    keys = dict(trailer.get("public_keys") or {})
    pinned_ids = {k for k, v in keys.items() if v in pinned}
    if pinned and not pinned_ids:
        raise Bad("none of the export's keys is the key you gave")
    signed: dict[str, dict[str, Any]] = {}
    for checkpoint in trailer.get("checkpoints") or []:
        body = check_checkpoint(checkpoint, keys, pinned)
        for name, head in (body.get("heads") or {}).items():
            if name not in signed or int(head["seq"]) > int(signed[name]["seq"]):
                signed[name] = head
    heads = trailer.get("chain_heads") or {}
    for name, head in sorted(heads.items()):
        if name not in signed:
            raise Bad(f"{name}: no signed checkpoint names its head seq {head['seq']}")
        if int(signed[name]["seq"]) != int(head["seq"]) or signed[name]["hash"] != head["hash"]:
            raise Bad(f"{name}: the trailer's head is not the signed checkpoint's")
        present = chains.get(name, {})
        top = max(present) if present else 0
        if present and top > int(head["seq"]):
            number, row = present[top]
            raise Bad(f"{name}: seq {top} is beyond the signed head", number)
        if complete:
            if top != int(head["seq"]):
                raise Bad(
                    f"{name}: the export ends at seq {top}, the signed head is {head['seq']} "
                    "(entries cut off the end)"
                )
            if present[top][1]["hash"] != head["hash"]:
                number, row = present[top]
                raise Bad(f"{name}: the head entry is not the one the checkpoint signed", number)
            if len(present) != int(head["seq"]):
                raise Bad(f"{name}: {len(present)} entries, the signed head counts {head['seq']}")
        elif top == int(head["seq"]) and present[top][1]["hash"] != head["hash"]:
            number, row = present[top]
            raise Bad(f"{name}: the head entry is not the one the checkpoint signed", number)
    for name in chains:
        if name not in heads:
            raise Bad(f"rows of chain {name}, which the trailer's heads do not name")
    if with_stubs and trailer["omitted"] != stubs:
        raise Bad(f"the trailer counts {trailer['omitted']} left-out entries, the file {stubs}")
    check_trailer_signature(trailer, keys, pinned)
    sealed = sum(len(c) for c in chains.values()) - stubs
    if unfiltered:
        scope = "complete chains"
    elif with_stubs:
        scope = f"filtered, complete chains ({stubs} left-out entries as stubs)"
    else:
        scope = "filtered: rows and links checked"
    return (
        f"{len(rows)} rows ({sealed} sealed, {unsealed} awaiting sealing), "
        f"{len(chains)} chain(s), {len(trailer.get('checkpoints') or [])} signed checkpoint(s) "
        f"by key(s) {', '.join(sorted(keys)) or '-'}; {scope}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="HEX",
        help="the portal's checkpoint key (64 hex digits, from its compliance page); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        print(verify(args.export, {k.strip().lower() for k in args.public_key}))
    except Bad as exc:
        print(f"BAD {args.export.name}: {exc}")
        return 1
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        print(f"BAD {args.export.name}: unreadable ({type(exc).__name__}: {exc})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
