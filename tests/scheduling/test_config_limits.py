"""Configuration files refused up front: an EHR without a BAA, and files over the size caps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command

from portal.tenancy import cross_tenant

pytestmark = pytest.mark.django_db

DEMO = Path(settings.BASE_DIR) / "demo" / "happy-smiles.json"


def demo() -> dict:
    return json.loads(DEMO.read_text())


def row_counts() -> dict[str, int]:
    """Every table's row count: "nothing was written" means all of them are unchanged."""
    with cross_tenant("test: nothing was written anywhere"):
        return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "practice.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("status", ["draft", "sent", None])
def test_import_practice_refuses_an_ehr_without_an_executed_baa_and_writes_nothing(
    tmp_path, status
):
    doc = demo()
    assert doc["ehr"]["kind"] == "sandbox"
    if status is None:
        doc.pop("baa")
    else:
        doc["baa"] = {"status": status}
    before = row_counts()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 error\\(s\\); nothing was imported"):
        call_command("import_practice", str(write(tmp_path, doc)), stderr=err)
    assert err.getvalue().strip() == "ehr: connecting an EHR needs an executed BAA"
    assert row_counts() == before
    with pytest.raises(CommandError):
        call_command("import_practice", str(write(tmp_path, doc)), "--check", stderr=err)


def test_a_baa_that_is_no_longer_in_force_does_not_connect_an_ehr(tmp_path):
    doc = demo()
    doc["baa"]["expires_on"] = "2026-01-06"
    before = row_counts()
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_practice", str(write(tmp_path, doc)), stderr=err)
    assert "ehr: connecting an EHR needs an executed BAA" in err.getvalue()
    assert row_counts() == before


def test_a_baa_already_in_force_lets_a_file_without_one_connect_the_ehr():
    from portal.models import Practice
    from scheduling.config import ehr_gate_errors, import_config, parse_config
    from tests.factories import sign_baa

    doc = demo()
    doc.pop("baa")
    doc["ehr"]["kind"] = "none"
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    doc["ehr"]["kind"] = "sandbox"
    assert ehr_gate_errors(parse_config(doc)) == ["ehr: connecting an EHR needs an executed BAA"]
    sign_baa(practice)
    assert ehr_gate_errors(parse_config(doc)) == []
