"""PHI at rest: field encryption, tamper and swap resistance, blind indexes, key rotation."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from compliance import crypto
from compliance.models import PracticeDataKey
from core.tenancy import cross_tenant, tenant_context
from tests.factories import PracticeFactory

pytestmark = pytest.mark.django_db

PLAINTEXTS = ("Anabelle", "555-867-5309", "anabelle@example.test", "Blue Cross PPO")


def make_patient(model, practice, **overrides):
    values = {
        "practice_id": practice.pk,
        "first_name": "Anabelle",
        "phone": "(555) 867-5309",
        "email": "Anabelle@Example.test",
        "insurance": {"carrier": "Blue Cross PPO", "member_id": "XQ-1234", "since": "2021-03-01"},
    }
    values.update(overrides)
    return model.objects.create(**values)


def read(value):
    return value


def raw_row(model, pk) -> dict:
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {model._meta.db_table} WHERE id = %s", [pk])
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def set_raw(model, pk, column, value) -> None:
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s", [value, pk])


def test_round_trip_through_the_database(phi_model):
    practice = PracticeFactory()
    created = make_patient(phi_model, practice)
    loaded = phi_model.objects.get(pk=created.pk)
    assert loaded.first_name == "Anabelle"
    assert loaded.phone == "(555) 867-5309"
    assert loaded.email == "Anabelle@Example.test"
    assert loaded.insurance == {
        "carrier": "Blue Cross PPO",
        "member_id": "XQ-1234",
        "since": "2021-03-01",
    }
    loaded.first_name = "Ana"
    loaded.save()
    assert phi_model.objects.get(pk=created.pk).first_name == "Ana"


def test_bulk_create_encrypts_too_and_empty_values_survive(phi_model):
    practice = PracticeFactory()
    phi_model.objects.bulk_create(
        [
            phi_model(practice_id=practice.pk, first_name="Zoë", email=None, insurance=None),
            phi_model(practice_id=practice.pk, first_name="Ōtani", phone="", insurance=[1, 2.5]),
        ]
    )
    rows = {p.first_name: p for p in phi_model.objects.all()}
    assert set(rows) == {"Zoë", "Ōtani"}
    assert rows["Zoë"].email is None and rows["Zoë"].insurance is None
    assert rows["Ōtani"].phone == "" and rows["Ōtani"].insurance == [1, 2.5]


def test_raw_sql_sees_only_ciphertext(phi_model):
    practice = PracticeFactory()
    patient = make_patient(phi_model, practice)
    row = raw_row(phi_model, patient.pk)
    for column in ("first_name", "phone", "email", "insurance"):
        blob = bytes(row[column])
        assert blob[0] == crypto.FORMAT_V1
        assert len(blob) >= crypto.MIN_CIPHERTEXT
    dump = b"".join(
        bytes(v) if isinstance(v, memoryview | bytes) else str(v).encode() for v in row.values()
    )
    for secret in (*PLAINTEXTS, "Example.test", "XQ-1234", "8675309"):
        assert secret.encode() not in dump
        assert secret.lower().encode() not in dump.lower()
    with connection.cursor() as cur:  # and as text, the way psql or a dump would show it
        cur.execute(
            f"SELECT row_to_json(t)::text, position('Anabelle'::bytea in t.first_name) "
            f"FROM {phi_model._meta.db_table} t WHERE id = %s",
            [patient.pk],
        )
        text, position = cur.fetchone()
    assert position == 0
    for secret in PLAINTEXTS:
        assert secret.lower() not in text.lower()


def test_values_list_gives_sealed_ciphertext_not_plaintext(phi_model):
    patient = make_patient(phi_model, PracticeFactory())
    (value,) = phi_model.objects.filter(pk=patient.pk).values_list("first_name", flat=True)
    assert isinstance(value, crypto.Sealed)
    assert "Anabelle" not in str(value)


def test_tampered_ciphertext_fails(phi_model):
    patient = make_patient(phi_model, PracticeFactory())
    blob = bytearray(raw_row(phi_model, patient.pk)["first_name"])
    blob[-5] ^= 0x01
    set_raw(phi_model, patient.pk, "first_name", bytes(blob))
    with pytest.raises(crypto.DecryptionError, match="failed authentication"):
        read(phi_model.objects.get(pk=patient.pk).first_name)
    # a forged header (another key version) fails as well
    blob = bytearray(raw_row(phi_model, make_patient(phi_model, PracticeFactory()).pk)["phone"])
    blob[4] = 9
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(1, "x", bytes(blob))
    with pytest.raises(crypto.DecryptionError, match="format"):
        crypto.decrypt(1, "x", b"\x02" + bytes(40))


def test_ciphertext_copied_to_another_row_column_or_practice_fails(phi_model):
    alpha, beta = PracticeFactory(), PracticeFactory()
    first = make_patient(phi_model, alpha, first_name="First")
    second = make_patient(phi_model, alpha, first_name="Second")
    foreign = make_patient(phi_model, beta, first_name="Foreign")
    stolen = bytes(raw_row(phi_model, first.pk)["first_name"])

    set_raw(phi_model, second.pk, "first_name", stolen)  # another row, same practice and column
    with pytest.raises(crypto.DecryptionError):
        read(phi_model.objects.get(pk=second.pk).first_name)

    set_raw(phi_model, foreign.pk, "first_name", stolen)  # another practice
    with pytest.raises(crypto.DecryptionError):
        read(phi_model.objects.get(pk=foreign.pk).first_name)

    set_raw(phi_model, first.pk, "phone", stolen)  # another column of the same row
    with pytest.raises(crypto.DecryptionError):
        read(phi_model.objects.get(pk=first.pk).phone)

    # moving the practice id instead of the ciphertext fails the same way
    set_raw(phi_model, first.pk, "practice_id", beta.pk)
    with pytest.raises(crypto.DecryptionError):
        read(phi_model.objects.get(pk=first.pk).first_name)


def test_plaintext_updates_and_searches_are_refused(phi_model):
    patient = make_patient(phi_model, PracticeFactory())
    with pytest.raises(TypeError, match="encrypted"):
        phi_model.objects.filter(pk=patient.pk).update(first_name="Mallory")
    with pytest.raises(TypeError, match="BlindIndexField"):
        list(phi_model.objects.filter(first_name="Anabelle"))


def test_blind_index_matches_normalised_equal_inputs(phi_model):
    practice = PracticeFactory()
    patient = make_patient(phi_model, practice, first_name="  María  José ")
    by = phi_model.objects.filter
    phone = phi_model._meta.get_field("phone_index")
    assert by(phone_index=phone.lookup(practice, "+1 555 867 5309")).get() == patient
    assert by(phone_index=crypto.blind_index(practice, "555.867.5309", "phone")).get() == patient
    assert by(email_index=crypto.blind_index(practice, " anabelle@EXAMPLE.TEST", "email")).get()
    assert by(name_index=crypto.blind_index(practice, "maría josé", "name")).get() == patient
    assert not by(phone_index=crypto.blind_index(practice, "555-867-5308", "phone")).exists()
    assert crypto.blind_index(practice, "", "phone") is None
    # kinds are separated: the same digits as text do not collide with the phone index
    assert crypto.blind_index(practice, "+15558675309", "text") != crypto.blind_index(
        practice, "+15558675309", "phone"
    )
    assert crypto.blind_index(practice, dt.date(1980, 2, 3), "date") == crypto.blind_index(
        practice, "1980-02-03", "date"
    )


def test_blind_index_differs_across_practices_and_is_not_a_plain_hash(phi_model):
    alpha, beta = PracticeFactory(), PracticeFactory()
    a = make_patient(phi_model, alpha)
    b = make_patient(phi_model, beta)
    assert a.phone_index != b.phone_index
    assert len(a.phone_index) == 32
    import hashlib

    assert a.phone_index != hashlib.sha256(b"+15558675309").digest()
    # an index key lookup for one practice never finds the other practice's row
    assert not phi_model.objects.filter(
        practice_id=beta.pk, phone_index=crypto.blind_index(alpha, "5558675309", "phone")
    ).exists()


def test_normalisers():
    assert crypto.normalize_phone("(555) 867-5309") == "+15558675309"
    assert crypto.normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert crypto.normalize_phone("ext 12") == "12"
    assert crypto.normalize_email("  Ana@Example.COM ") == "ana@example.com"
    assert crypto.normalize_name("  STRAẞE   Lopez") == "strasse lopez"


def test_keys_are_stored_only_wrapped_and_behind_row_level_security():
    practice = PracticeFactory()  # keys are provisioned with the practice
    assert PracticeDataKey.objects.count() == 0  # no tenant scope: nothing visible
    with tenant_context(practice):
        keys = {k.purpose: k for k in PracticeDataKey.objects.all()}
    assert set(keys) == {"data", "index"}
    version, material = crypto._active_key(practice.pk, "data")
    assert version == 1
    assert material not in bytes(keys["data"].wrapped_key)
    assert keys["data"].kek_id == crypto.current_master_key().kek_id


def test_master_key_rotation_keeps_data_readable(phi_model):
    old, new = "old-master-key-for-tests-0123456789", "new-master-key-for-tests-9876543210"
    with override_settings(PHI_MASTER_KEY=old, PHI_MASTER_KEY_NEW="", PHI_MASTER_KEYS_PREVIOUS=[]):
        alpha, beta = PracticeFactory(slug="alpha"), PracticeFactory(slug="beta")
        a = make_patient(phi_model, alpha, first_name="Alpha patient")
        b = make_patient(phi_model, beta, first_name="Beta patient")
    old_id = crypto.MasterKey.derive(old).kek_id
    new_id = crypto.MasterKey.derive(new).kek_id

    # step 1+2: every process accepts the new key; rotate_keys re-wraps (one practice first)
    with override_settings(PHI_MASTER_KEY=old, PHI_MASTER_KEY_NEW=new):
        call_command("rotate_keys", "--practice", "alpha", stdout=io.StringIO())
        crypto.clear_key_cache()
        with cross_tenant("test: inspect key wrapping"):
            by_practice = dict(
                PracticeDataKey.objects.values_list("practice__slug", "kek_id").distinct()
            )
        assert by_practice["alpha"] == new_id and by_practice["beta"] == old_id
        assert phi_model.objects.get(pk=a.pk).first_name == "Alpha patient"  # under the new key
        assert phi_model.objects.get(pk=b.pk).first_name == "Beta patient"  # still the old one
        with pytest.raises(CommandError, match="not under master key"):
            call_command("rotate_keys", "--check", stdout=io.StringIO())
        call_command("rotate_keys", stdout=io.StringIO())
        call_command("rotate_keys", stdout=io.StringIO())  # idempotent: nothing to do
        assert crypto.rewrap_practice_keys(alpha.pk) == 0
        call_command("rotate_keys", "--check", stdout=io.StringIO())

    # step 3+4: the new key becomes current; the old one can go
    with override_settings(PHI_MASTER_KEY=new, PHI_MASTER_KEY_NEW="", PHI_MASTER_KEYS_PREVIOUS=[]):
        crypto.clear_key_cache()
        assert phi_model.objects.get(pk=a.pk).first_name == "Alpha patient"
        assert phi_model.objects.get(pk=b.pk).first_name == "Beta patient"
        c = make_patient(phi_model, alpha, first_name="After rotation")
        assert phi_model.objects.get(pk=c.pk).first_name == "After rotation"

    # a process that was never given the new key cannot unwrap anything any more
    with override_settings(PHI_MASTER_KEY=old, PHI_MASTER_KEY_NEW="", PHI_MASTER_KEYS_PREVIOUS=[]):
        crypto.clear_key_cache()
        with pytest.raises(crypto.DecryptionError, match="not configured"):
            read(phi_model.objects.get(pk=a.pk).first_name)


def test_a_new_data_key_version_encrypts_new_writes_and_old_ones_still_decrypt(phi_model):
    practice = PracticeFactory(slug="alpha")
    before = make_patient(phi_model, practice, first_name="Before")
    call_command("rotate_keys", "--new-data-key", "--practice", "alpha", stdout=io.StringIO())
    after = make_patient(phi_model, practice, first_name="After")
    assert bytes(raw_row(phi_model, before.pk)["first_name"])[1:5] == (1).to_bytes(4, "big")
    assert bytes(raw_row(phi_model, after.pk)["first_name"])[1:5] == (2).to_bytes(4, "big")
    crypto.clear_key_cache()
    assert phi_model.objects.get(pk=before.pk).first_name == "Before"
    assert phi_model.objects.get(pk=after.pk).first_name == "After"
    # blind indexes are unaffected by data-key versions
    assert before.phone_index == after.phone_index


def test_a_practice_without_keys_gets_them_lazily(phi_model):
    practice = PracticeFactory()
    with tenant_context(practice):
        PracticeDataKey.objects.filter(practice=practice).delete()
    crypto.clear_key_cache()
    patient = make_patient(phi_model, practice)
    assert phi_model.objects.get(pk=patient.pk).first_name == "Anabelle"
    with tenant_context(practice):
        assert PracticeDataKey.objects.filter(practice=practice, active=True).count() == 2
