"""Reads for vendor support: the practice directory with each practice's BAA standing.

Across practices by nature (support picks which practice to open), so the agreements are read
under `cross_tenant` with a stated reason; only their status and dates, never the PDF."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Practice
from compliance.models import SIGNED_STATUSES, BusinessAssociateAgreement
from core.tenancy import cross_tenant

PER_PAGE = 25


@dataclass(frozen=True)
class BAAStanding:
    in_force: BusinessAssociateAgreement | None
    latest: BusinessAssociateAgreement | None

    @property
    def label(self) -> str:
        if self.in_force is not None:
            return f"In force (version {self.in_force.version})"
        if self.latest is None:
            return "No agreement"
        return f"Not in force (latest: version {self.latest.version}, {self.latest.status})"


def practices(query: str = "") -> QuerySet[Practice]:
    rows = Practice.objects.order_by("name")
    query = query.strip()
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    return rows


def covers(agreement: BusinessAssociateAgreement, practice: Practice, at: datetime) -> bool:
    """The rule of `compliance.gate.agreement_in_force`, for rows already loaded."""
    if agreement.status not in SIGNED_STATUSES:
        return False
    if agreement.effective_on is None or agreement.executed_on is None:
        return False
    day = timezone.localtime(at, practice.tz).date()
    if day < max(agreement.effective_on, agreement.executed_on):
        return False
    if agreement.expires_on is not None and day > agreement.expires_on:
        return False
    return agreement.terminated_at is None or at < agreement.terminated_at


def standings(shown: list[Practice], at: datetime | None = None) -> dict[int, BAAStanding]:
    """Each shown practice's BAA standing, in one query."""
    at = at or timezone.now()
    by_practice: dict[int, list[BusinessAssociateAgreement]] = defaultdict(list)
    with cross_tenant("support directory: BAA standing of the practices listed"):
        for row in (
            BusinessAssociateAgreement.objects.filter(practice_id__in=[p.pk for p in shown])
            .only(
                "practice_id",
                "version",
                "status",
                "executed_on",
                "effective_on",
                "expires_on",
                "terminated_at",
            )
            .order_by("practice_id", "-version")
        ):
            by_practice[row.practice_id].append(row)
    out = {}
    for practice in shown:
        rows = by_practice.get(practice.pk, [])
        in_force = next((r for r in rows if covers(r, practice, at)), None)
        out[practice.pk] = BAAStanding(in_force=in_force, latest=rows[0] if rows else None)
    return out


def directory_page(
    query: str, page_number: str | None
) -> tuple[Page, list[tuple[Practice, BAAStanding]]]:
    page = Paginator(practices(query), PER_PAGE).get_page(page_number)
    shown = list(page.object_list)
    found = standings(shown)
    return page, [(p, found[p.pk]) for p in shown]
