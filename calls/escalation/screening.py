"""Screening: the practice's live protocols applied to what a caller says, with the procedure
context, decide whether to escalate, how, and to whom.

Rules, in order:
1. A protocol applies to the call unless the context rules it out. It is ruled out when the
   caller's appointment type is known and is not one the protocol covers, or when the procedure
   date is known and the call is not within `within_days_of_procedure` days after it (a
   procedure in the future is not "after" either). Unknown context rules nothing out: a missed
   escalation costs more than an unnecessary one.
2. An applying protocol matches when any of its triggers is heard (`matching`: concepts,
   paraphrases, slips, negation).
0. Emergencies the caller reports (cannot breathe, chest pain, heavy bleeding, stroke signs;
   `matching.emergency_heard`) are answered "call 911" first, whatever the protocols say: with
   the practice's matching emergency protocol when there is one, else with a built-in decision
   (no protocol). Its instructions always start with dialling 911.
3. Emergencies beat everything: the decision is the matching protocol of the highest severity
   (emergency > urgent > routine), then the one that names the caller's appointment type, then
   the most specific match ("calf pain" says more than "swelling"), then the surest, then the
   oldest protocol.
4. No match: `escalate` is false and nothing else is said.
5. Route `on_call`: the provider the protocol names, else whoever is on call now for the
   protocol's group (none named: the default group; `selectors.on_call_at`). The appointment
   type picks the protocol (rule 3), and so the group. Nobody on call is a
   gap in the rota: the decision still escalates, `route_to` is null and `on_call_missing` true
   (the agent falls back to the front desk; the dashboard shows the gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from accounts.models import Practice
from calls.escalation import selectors
from calls.escalation.matching import (
    TriggerCheck,
    TriggerMatch,
    best_trigger,
    check_trigger,
    emergency_heard,
)
from calls.models import Route, Severity
from calls.models.escalation import SEVERITY_RANK
from scheduling.models import Provider

__all__ = [
    "EMERGENCY_INSTRUCTIONS",
    "Decision",
    "ProtocolExplanation",
    "RouteTo",
    "explain",
    "screen",
]

EMERGENCY_INSTRUCTIONS = "Tell the caller to hang up and call 911 now."


@dataclass(frozen=True)
class RouteTo:
    provider_id: int
    name: str
    phone: str


@dataclass(frozen=True)
class Decision:
    escalate: bool
    protocol_id: int | None = None
    version_id: int | None = None
    version_number: int | None = None
    protocol_name: str = ""
    severity: str | None = None
    route: str | None = None
    route_to: RouteTo | None = None
    instructions: str | None = None
    matched_trigger: str = ""
    heard: str = ""
    confidence: float = 0.0
    on_call_missing: bool = False
    considered: int = 0  # protocols whose context applied
    qualifiers: tuple[str, ...] = ()  # the caller's words that played the symptom up
    emergency: str = ""  # the emergency heard ("chest pain"), answered with 911 first

    def as_api(self) -> dict[str, Any]:
        """The response body docs/receptionist-api.md describes, plus a few explanatory fields."""
        return {
            "escalate": self.escalate,
            "protocol_id": self.protocol_id,
            "severity": self.severity,
            "route_to": (
                {
                    "provider_id": self.route_to.provider_id,
                    "name": self.route_to.name,
                    "phone": self.route_to.phone,
                }
                if self.route_to
                else None
            ),
            "instructions": self.instructions,
            "route": self.route,
            "protocol_version": self.version_number,
            "protocol_name": self.protocol_name or None,
            "matched_trigger": self.matched_trigger or None,
            "on_call_missing": self.on_call_missing,
            "emergency": self.emergency or None,
            "qualifiers": list(self.qualifiers),
        }


def _applies(
    rule: selectors.ProtocolRule,
    appointment_type_id: int | None,
    procedure_date: date | None,
    today: date,
) -> bool:
    if (
        rule.appointment_type_ids
        and appointment_type_id is not None
        and appointment_type_id not in rule.appointment_type_ids
    ):
        return False
    if rule.within_days is not None and procedure_date is not None:
        since = (today - procedure_date).days
        if since < 0 or since > rule.within_days:
            return False
    return True


def screen(
    practice: Practice,
    text: str,
    appointment_type_id: int | None = None,
    procedure_date: date | None = None,
    now: datetime | None = None,
    *,
    drafts: bool = False,
) -> Decision:
    """Apply the live protocols (with `drafts`, drafts in place of live versions: the test
    console) to the caller's words and procedure context. Two queries, three when routing to
    the on-call provider."""
    now = now or timezone.now()
    today = now.astimezone(practice.tz).date()
    rules = selectors.protocol_rules(practice, drafts=drafts)
    applying = [r for r in rules if _applies(r, appointment_type_id, procedure_date, today)]
    found: list[tuple[tuple[Any, ...], selectors.ProtocolRule, TriggerMatch]] = []
    for rule in applying:
        match = best_trigger(rule.triggers, text)
        if match is None:
            continue
        names_type = appointment_type_id is not None and appointment_type_id in (
            rule.appointment_type_ids
        )
        rank = (
            SEVERITY_RANK.get(rule.severity, 0),
            names_type,
            match.specificity,
            match.confidence,
            -rule.protocol_id,
        )
        found.append((rank, rule, match))
    emergency = emergency_heard(text)
    if emergency is not None:
        return _emergency(rules, found, emergency.kind, emergency.heard, len(applying))
    if not found:
        return Decision(escalate=False, considered=len(applying))
    _, rule, match = max(found, key=lambda f: f[0])
    route_to: RouteTo | None = None
    missing = False
    if rule.route == Route.ON_CALL:
        route_to = _taker(practice, rule, now)
        missing = route_to is None
    return Decision(
        escalate=True,
        protocol_id=rule.protocol_id,
        version_id=rule.version_id,
        version_number=rule.number,
        protocol_name=rule.name,
        severity=rule.severity,
        route=rule.route,
        route_to=route_to,
        instructions=rule.instructions,
        matched_trigger=match.trigger,
        heard=match.heard,
        confidence=match.confidence,
        on_call_missing=missing,
        considered=len(applying),
        qualifiers=match.qualifiers,
    )


def _taker(practice: Practice, rule: selectors.ProtocolRule, now: datetime) -> RouteTo | None:
    """Who the protocol says takes it: its provider (when they have an on-call phone), else
    whoever is on call now for its group."""
    if rule.route_provider_id is not None:
        provider = (
            Provider.objects.for_practice(practice)
            .filter(pk=rule.route_provider_id, active=True)
            .exclude(on_call_phone="")
            .first()
        )
        if provider is not None:
            return RouteTo(provider.pk, provider.name, provider.on_call_phone)
    shift = selectors.on_call_at(practice, now, rule.on_call_group_id)
    if shift is None:
        return None
    return RouteTo(shift.provider_id, shift.provider.name, shift.provider.on_call_phone)


def _emergency(
    rules: list[selectors.ProtocolRule],
    found: list[tuple[tuple[Any, ...], selectors.ProtocolRule, TriggerMatch]],
    kind: str,
    heard: str,
    considered: int,
) -> Decision:
    """911 first: the practice's own emergency protocol when one matched (or, failing that,
    any of its emergency protocols, which context may have ruled out), else the built-in one."""
    emergencies = [f for f in found if f[1].severity == Severity.EMERGENCY]
    rule: selectors.ProtocolRule | None = None
    trigger = kind
    if emergencies:
        _, rule, match = max(emergencies, key=lambda f: f[0])
        trigger, heard = match.trigger, match.heard
    else:
        rule = next((r for r in rules if r.severity == Severity.EMERGENCY), None)
    instructions = rule.instructions if rule and rule.instructions else EMERGENCY_INSTRUCTIONS
    if "911" not in instructions:
        instructions = f"{EMERGENCY_INSTRUCTIONS} {instructions}"
    return Decision(
        escalate=True,
        protocol_id=rule.protocol_id if rule else None,
        version_id=rule.version_id if rule else None,
        version_number=rule.number if rule else None,
        protocol_name=rule.name if rule else "Emergency (built in)",
        severity=Severity.EMERGENCY,
        route=Route.EMERGENCY_SERVICES,
        instructions=instructions,
        matched_trigger=trigger,
        heard=heard,
        confidence=1.0,
        considered=considered,
        emergency=kind,
    )


@dataclass(frozen=True)
class ProtocolExplanation:
    """One protocol as the test console shows it: whether the context let it apply, and for
    each trigger whether it fired and which of the caller's words qualified it."""

    protocol_id: int
    name: str
    status: str
    applies: bool
    checks: tuple[TriggerCheck, ...]


def explain(
    practice: Practice,
    text: str,
    appointment_type_id: int | None = None,
    procedure_date: date | None = None,
    now: datetime | None = None,
    *,
    drafts: bool = False,
) -> list[ProtocolExplanation]:
    """Every protocol's triggers against the caller's words, so a clinician sees why a
    decision was made (or not) before approving. One query."""
    now = now or timezone.now()
    today = now.astimezone(practice.tz).date()
    return [
        ProtocolExplanation(
            rule.protocol_id,
            rule.name,
            rule.status,
            _applies(rule, appointment_type_id, procedure_date, today),
            tuple(check_trigger(t, text) for t in rule.triggers),
        )
        for rule in sorted(
            selectors.protocol_rules(practice, drafts=drafts), key=lambda r: r.name.casefold()
        )
    ]
