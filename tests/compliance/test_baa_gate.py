"""Business associate agreements: the PHI gate over time, immutability, configuration import."""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
from celery import shared_task
from django.db import IntegrityError, connection, transaction
from django.db.utils import ProgrammingError
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import services
from compliance.api import BAARequiredAPIException, PHIGatedMixin
from compliance.gate import (
    BAARequired,
    agreement_in_force,
    is_phi_gated,
    phi_allowed,
    phi_gated,
    phi_task,
    require_phi_allowed,
)
from compliance.models import AgreementImmutable, BAAStatus, BusinessAssociateAgreement
from core.tenancy import tenant_context
from tests.factories import PracticeFactory

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
PDF = b"%PDF-1.7\n% signed BAA\n%%EOF\n"


def at(day: str, clock: str = "12:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=NY)


def executed(practice, *, effective="2026-01-05", executed_on=None, expires=None):
    agreement = services.create_draft(practice)
    return services.execute(
        agreement,
        signed_pdf=PDF,
        executed_on=dt.date.fromisoformat(executed_on or effective),
        effective_on=dt.date.fromisoformat(effective),
        expires_on=dt.date.fromisoformat(expires) if expires else None,
        practice_signer_name="Dana Reyes",
        practice_signer_title="Practice Owner",
        hello_signer_name="Sam Hello",
        hello_signer_title="COO",
    )


def test_no_agreement_draft_or_sent_allows_nothing():
    practice = PracticeFactory()
    assert not phi_allowed(practice)
    draft = services.create_draft(practice, practice_signer_name="Dana Reyes")
    assert not phi_allowed(practice)
    services.mark_sent(draft)
    assert not phi_allowed(practice.pk)
    with pytest.raises(BAARequired) as refused:
        require_phi_allowed(practice)
    assert refused.value.code == "baa_required"
    assert refused.value.practice_id == practice.pk


def test_executed_agreement_is_in_force_from_its_effective_day_in_the_practice_time_zone():
    practice = PracticeFactory(timezone="America/New_York")
    agreement = executed(practice, effective="2026-03-01")
    assert not phi_allowed(practice, at("2026-02-28", "23:59"))
    assert phi_allowed(practice, at("2026-03-01", "00:00"))
    # 03:00 UTC on March 1st is still February 28th in New York
    assert not phi_allowed(practice, dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC))
    assert require_phi_allowed(practice, at("2026-06-01")) == agreement


def test_backdated_effective_date_does_not_cover_the_time_before_signature():
    practice = PracticeFactory()
    executed(practice, effective="2026-01-01", executed_on="2026-02-01")
    assert not phi_allowed(practice, at("2026-01-15"))
    assert phi_allowed(practice, at("2026-02-01"))


def test_expiry_day_is_the_last_day_in_force_even_without_the_sweep():
    practice = PracticeFactory()
    agreement = executed(practice, effective="2026-01-05", expires="2026-12-31")
    assert phi_allowed(practice, at("2026-12-31", "23:59"))
    assert not phi_allowed(practice, at("2027-01-01", "00:00"))
    assert agreement.status == BAAStatus.EXECUTED  # dates decide, not the status
    assert services.expire_due(at("2027-01-02")) == 1
    with tenant_context(practice):
        agreement.refresh_from_db()
    assert agreement.status == BAAStatus.EXPIRED
    # an expired agreement still answers for its own past
    assert phi_allowed(practice, at("2026-07-01"))
    assert not phi_allowed(practice, at("2027-02-01"))


def test_termination_ends_it_at_the_instant_recorded():
    practice = PracticeFactory()
    agreement = executed(practice)
    cut = at("2026-05-10", "14:30")
    services.terminate(agreement, reason="practice closed", at=cut)
    assert phi_allowed(practice, cut - dt.timedelta(seconds=1))
    assert not phi_allowed(practice, cut)
    assert not phi_allowed(practice)


def test_an_amendment_takes_over_and_another_practices_agreement_never_counts():
    practice, other = PracticeFactory(), PracticeFactory()
    executed(other)
    assert not phi_allowed(practice, at("2026-06-01"))
    first = executed(practice, effective="2026-01-05", expires="2026-06-30")
    second = executed(practice, effective="2026-06-15")
    assert second.version == first.version + 1
    assert agreement_in_force(practice, at("2026-06-01")) == first
    assert agreement_in_force(practice, at("2026-06-20")) == second
    assert agreement_in_force(practice, at("2027-06-20")) == second


def test_gate_answers_from_any_connection_scope():
    practice, other = PracticeFactory(), PracticeFactory()
    executed(practice)
    with tenant_context(other):  # a caller scoped elsewhere still gets the right answer
        assert phi_allowed(practice, at("2026-02-01"))
        assert not phi_allowed(other, at("2026-02-01"))
        assert BusinessAssociateAgreement.objects.count() == 0  # and its scope is back


def test_executed_agreement_is_immutable_in_the_model():
    practice = PracticeFactory()
    agreement = executed(practice)
    with tenant_context(practice):
        agreement.expires_on = dt.date(2030, 1, 1)
        with pytest.raises(AgreementImmutable, match="expires_on"):
            agreement.save()
        agreement.refresh_from_db()
        agreement.status = BAAStatus.DRAFT
        with pytest.raises(AgreementImmutable, match="status executed -> draft"):
            agreement.save()
        agreement.refresh_from_db()
        with pytest.raises(AgreementImmutable):
            agreement.delete()


def test_executed_agreement_is_immutable_in_the_database():
    practice = PracticeFactory()
    agreement = executed(practice)
    table = BusinessAssociateAgreement._meta.db_table
    with tenant_context(practice), connection.cursor() as cur:
        for sql in (
            f"UPDATE {table} SET expires_on = '2030-01-01' WHERE id = %s",
            f"UPDATE {table} SET signed_pdf = 'x'::bytea, signed_pdf_sha256 = "
            f"encode(sha256('x'::bytea), 'hex') WHERE id = %s",
            f"UPDATE {table} SET status = 'draft' WHERE id = %s",
            f"UPDATE {table} SET status = 'terminated', terminated_at = now(), "
            f"practice_signer_name = 'Someone else' WHERE id = %s",
            f"DELETE FROM {table} WHERE id = %s",
        ):
            with pytest.raises(ProgrammingError, match="is executed"), transaction.atomic():
                cur.execute(sql, [agreement.pk])
        # recording its end is the one change allowed; after that, nothing
        cur.execute(
            f"UPDATE {table} SET status = 'terminated', terminated_at = now(), "
            f"termination_reason = 'breach' WHERE id = %s",
            [agreement.pk],
        )
        with pytest.raises(ProgrammingError, match="is terminated"), transaction.atomic():
            cur.execute(f"UPDATE {table} SET status = 'executed' WHERE id = %s", [agreement.pk])


def test_drafts_stay_editable_and_the_pdf_digest_is_checked_by_the_database():
    practice = PracticeFactory()
    draft = services.create_draft(practice)
    agreement = executed(practice)
    stored = BusinessAssociateAgreement.objects.for_practice(practice)
    with tenant_context(practice):
        draft.notes = "redlines from counsel"
        draft.save()
        row = stored.get(pk=agreement.pk)
        assert bytes(row.signed_pdf) == PDF
        assert row.signed_pdf_sha256 == hashlib.sha256(PDF).hexdigest()
        draft.signed_pdf = b"%PDF- tampered"
        draft.signed_pdf_sha256 = hashlib.sha256(PDF).hexdigest()
        with pytest.raises(IntegrityError, match="baa_pdf_digest_matches"), transaction.atomic():
            draft.save()
        services.create_draft(practice).delete()  # an unsigned version may go


def test_execute_validates_its_inputs():
    practice = PracticeFactory()
    draft = services.create_draft(practice)
    common = {
        "executed_on": dt.date(2026, 1, 5),
        "effective_on": dt.date(2026, 1, 5),
        "practice_signer_name": "Dana Reyes",
        "hello_signer_name": "Sam Hello",
    }
    with pytest.raises(services.BAAError, match="PDF"):
        services.execute(draft, signed_pdf=b"not a pdf", **common)
    with pytest.raises(services.BAAError, match="signatories"):
        services.execute(draft, signed_pdf=PDF, **{**common, "hello_signer_name": " "})
    with pytest.raises(services.BAAError, match="before"):
        services.execute(draft, signed_pdf=PDF, expires_on=dt.date(2025, 1, 1), **common)


# --- configuration import --------------------------------------------------------------------

CONFIG = {
    "status": "executed",
    "signed_by": "Dana Reyes, Practice Owner",
    "executed_on": "2026-01-05",
    "effective_on": "2026-01-05",
    "expires_on": None,
}


def versions(practice):
    with tenant_context(practice):
        return list(
            BusinessAssociateAgreement.objects.order_by("version").values_list(
                "version", "status", "expires_on"
            )
        )


def test_config_import_is_idempotent_and_amends_with_new_versions():
    practice = PracticeFactory()
    first = services.upsert_baa_from_config(practice, CONFIG)
    assert (first.practice_signer_name, first.practice_signer_title) == (
        "Dana Reyes",
        "Practice Owner",
    )
    assert first.source == "config" and first.status == "executed"
    assert services.upsert_baa_from_config(practice, dict(CONFIG)) == first
    assert versions(practice) == [(1, "executed", None)]
    assert phi_allowed(practice, at("2026-02-01"))

    amended = services.upsert_baa_from_config(practice, {**CONFIG, "expires_on": "2027-01-04"})
    assert amended.version == 2
    assert versions(practice) == [(1, "executed", None), (2, "executed", dt.date(2027, 1, 4))]

    ended = services.upsert_baa_from_config(
        practice,
        {
            **CONFIG,
            "expires_on": "2027-01-04",
            "status": "terminated",
            "terminated_on": "2026-09-01",
            "termination_reason": "sold",
        },
    )
    assert ended == amended and ended.status == "terminated"
    assert ended.terminated_at == at("2026-09-01", "00:00")
    assert (
        services.upsert_baa_from_config(
            practice, {**CONFIG, "expires_on": "2027-01-04", "status": "terminated"}
        )
        == ended
    )


def test_config_import_of_drafts_never_touches_a_signed_agreement():
    practice = PracticeFactory()
    services.upsert_baa_from_config(practice, CONFIG)
    draft = services.upsert_baa_from_config(practice, {"status": "draft", "signed_by": ""})
    assert draft.version == 2 and draft.status == "draft"
    sent = services.upsert_baa_from_config(practice, {"status": "sent", "signed_by": "Dana"})
    assert sent.pk == draft.pk and sent.status == "sent"
    signed = services.upsert_baa_from_config(practice, {**CONFIG, "expires_on": "2028-01-01"})
    assert signed.pk == draft.pk and signed.status == "executed"
    assert phi_allowed(practice, at("2026-02-01"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "signed"}, "baa.status"),
        ({**CONFIG, "signed_by": ""}, "baa.signed_by"),
        ({**CONFIG, "effective_on": None}, "baa.effective_on"),
        ({**CONFIG, "executed_on": "05/01/2026"}, "baa.executed_on"),
        ({**CONFIG, "expires_on": "2025-01-01"}, "before"),
    ],
)
def test_config_import_rejects_bad_input_naming_the_field(data, message):
    with pytest.raises(services.BAAError, match=message):
        services.upsert_baa_from_config(PracticeFactory(), data)


# --- the gate in views and tasks -------------------------------------------------------------


@shared_task(name="tests.compliance.read_phi")
@phi_task
def read_phi(practice_id: int, note: str = "") -> str:
    return f"read for {practice_id} {note}".strip()


def test_phi_tasks_refuse_without_an_agreement():
    practice = PracticeFactory()
    assert is_phi_gated(read_phi)
    with pytest.raises(BAARequired):
        read_phi(practice.pk)
    with pytest.raises(BAARequired):
        read_phi.apply(kwargs={"practice_id": practice.pk}, throw=True)
    executed(practice, effective="2020-01-01")
    assert read_phi(practice.pk, note="ok") == f"read for {practice.pk} ok"
    assert read_phi.apply(kwargs={"practice_id": practice.pk}).get() == f"read for {practice.pk}"
    with pytest.raises(TypeError, match="practice_id"):
        phi_task(lambda call_id: call_id)


class TranscriptAPIView(PHIGatedMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"transcript": "..."})


@phi_gated
def transcript_page(request, practice_slug):
    return HttpResponse("PHI")


def test_api_views_answer_403_baa_required_problem():
    practice = PracticeFactory()
    view = TranscriptAPIView.as_view()
    assert is_phi_gated(view)
    request = RequestFactory().get("/api/v1/transcripts/1")
    request.practice = practice
    response = view(request).render()
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.data["type"] == "baa_required" == BAARequiredAPIException.default_code
    executed(practice, effective="2020-01-01")
    assert view(request).status_code == 200
    # no practice on the request: refused, never waved through
    assert view(RequestFactory().get("/api/v1/transcripts/1")).status_code == 403


def test_portal_views_refuse_with_a_403():
    practice = PracticeFactory()
    request = RequestFactory().get("/p/alpha/transcripts/1/")
    request.practice = practice
    assert is_phi_gated(transcript_page)
    with pytest.raises(BAARequired):
        transcript_page(request, practice_slug="alpha")
    executed(practice, effective="2020-01-01")
    assert transcript_page(request, practice_slug="alpha").content == b"PHI"
