"""Fixtures for compliance tests: a throwaway PHI model built on the real field classes, and a
vendor support person signed in with both factors."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from accounts.models import VendorRole
from compliance import crypto
from tests.conftest import verify_second_factor
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """Each test starts with an empty per-process key cache, as a new worker process would."""
    crypto.clear_key_cache()
    yield
    crypto.clear_key_cache()


@pytest.fixture
def phi_model(db):
    """A model shaped like the ones other apps will write (patients, transcripts), with its table
    created inside the test's transaction (PostgreSQL DDL rolls back with it)."""
    with isolate_apps("compliance"):

        class Patient(models.Model):
            practice_id = models.BigIntegerField()
            row_key = models.UUIDField(default=uuid.uuid4, unique=True)
            first_name = crypto.EncryptedTextField()
            phone = crypto.EncryptedTextField(blank=True, default="")
            email = crypto.EncryptedTextField(null=True, blank=True)
            insurance = crypto.EncryptedJSONField(null=True, blank=True)
            phone_index = crypto.BlindIndexField(source="phone", kind="phone")
            email_index = crypto.BlindIndexField(source="email", kind="email")
            name_index = crypto.BlindIndexField(source="first_name", kind="name")

            class Meta:
                app_label = "compliance"
                db_table = "compliance_test_patient"

            def __str__(self) -> str:
                return f"patient {self.pk}"

        with connection.schema_editor(atomic=True) as editor:
            editor.create_model(Patient)
        yield Patient


@pytest.fixture
def support(client):
    """Vendor support, signed in on `client` with both factors."""
    user = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    verify_second_factor(client, user)
    return user


@pytest.fixture
def support_client(client, support):
    return client
