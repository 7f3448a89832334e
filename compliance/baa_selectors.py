"""Reads for the BAA pages: every version of a practice's agreement and one version's history."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from accounts.models import Practice
from compliance.models import BusinessAssociateAgreement, ChangeEntry


def versions(practice: Practice) -> QuerySet[BusinessAssociateAgreement]:
    """All versions, newest first, without the PDF bytes."""
    return (
        BusinessAssociateAgreement.objects.for_practice(practice)
        .defer("signed_pdf")
        .order_by("-version")
    )


def agreement(practice: Practice, pk: int, *, with_pdf: bool = False) -> BusinessAssociateAgreement:
    rows = BusinessAssociateAgreement.objects.for_practice(practice)
    if not with_pdf:
        rows = rows.defer("signed_pdf")
    return rows.get(pk=pk)


def history(agreement: BusinessAssociateAgreement, limit: int = 50) -> list[ChangeEntry]:
    """The agreement's change entries (auditlog), newest first."""
    kind = ContentType.objects.get_for_model(BusinessAssociateAgreement)
    return list(
        ChangeEntry.objects.filter(content_type=kind, object_pk=str(agreement.pk))
        .select_related("actor")
        .order_by("-timestamp")[:limit]
    )
