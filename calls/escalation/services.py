"""Writes for escalation: drafting and approving protocol versions, the on-call rota, recording
screening decisions on calls, and storing the configuration file's sections.

Approved versions are never edited: an edit opens (or updates) the protocol's single draft. Only
approval makes a version live, which supersedes the previous live one in the same transaction
(the partial unique constraint would refuse two live versions). Every approval is audited twice:
auditlog records the row changes, and an access event `escalation.protocol_approved` names the
approver, the protocol and the version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Practice, Role, User
from calls.escalation.screening import Decision, screen
from calls.models import (
    DEFAULT_GROUP_KEY,
    ApprovalPolicy,
    Call,
    CallOutcome,
    EscalationProtocol,
    OnCallGroup,
    OnCallShift,
    ProtocolVersion,
    Route,
    Screening,
    Severity,
    VersionStatus,
)
from calls.models.escalation import DEFAULT_GROUP_NAME
from compliance import audit
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.keys import unique_key
from scheduling.models import AppointmentType, Provider

__all__ = [
    "APPROVED_ACTION",
    "ApprovalError",
    "ProtocolContent",
    "add_group",
    "add_shift",
    "approval_policy",
    "approval_refusal",
    "approve_version",
    "check_content",
    "clinician_count",
    "create_protocol",
    "default_group",
    "delete_shift",
    "group_for",
    "import_on_call",
    "import_protocols",
    "record_screening",
    "save_draft",
    "screen_call",
    "set_self_approval",
    "withdraw_protocol",
]

APPROVED_ACTION = AuditAction.PROTOCOL_APPROVED
WITHDRAWN_ACTION = AuditAction.PROTOCOL_WITHDRAWN


@dataclass(frozen=True)
class ProtocolContent:
    """What a version says (everything but its identity and approval)."""

    name: str
    triggers: tuple[str, ...]
    severity: str
    route: str
    instructions: str = ""
    within_days_of_procedure: int | None = None
    appointment_type_ids: tuple[int, ...] = ()
    # who takes an on-call route: this provider, else the on-call of this group (None: default)
    route_provider_id: int | None = None
    on_call_group_id: int | None = None

    @classmethod
    def of(cls, version: ProtocolVersion) -> ProtocolContent:
        return cls(
            name=version.name,
            triggers=tuple(version.triggers),
            severity=version.severity,
            route=version.route,
            instructions=version.instructions,
            within_days_of_procedure=version.within_days_of_procedure,
            appointment_type_ids=tuple(
                ProtocolVersion.appointment_types.through.objects.filter(protocolversion=version)
                .order_by("id")
                .values_list("appointmenttype_id", flat=True)
            ),
            route_provider_id=version.route_provider_id,
            on_call_group_id=version.on_call_group_id,
        )

    def same_as(self, other: ProtocolContent) -> bool:
        """Equal as protocols: the order of covered types does not matter."""
        mine, theirs = self.normalised(), other.normalised()
        return dataclasses.replace(mine, appointment_type_ids=()) == dataclasses.replace(
            theirs, appointment_type_ids=()
        ) and set(mine.appointment_type_ids) == set(theirs.appointment_type_ids)

    def normalised(self) -> ProtocolContent:
        triggers = tuple(dict.fromkeys(t.strip() for t in self.triggers if t.strip()))
        return ProtocolContent(
            name=self.name.strip(),
            triggers=triggers,
            severity=self.severity,
            route=self.route,
            instructions=self.instructions.strip(),
            within_days_of_procedure=self.within_days_of_procedure,
            appointment_type_ids=tuple(dict.fromkeys(self.appointment_type_ids)),
            route_provider_id=self.route_provider_id if self.route == Route.ON_CALL else None,
            on_call_group_id=self.on_call_group_id if self.route == Route.ON_CALL else None,
        )


def check_content(content: ProtocolContent) -> dict[str, list[str]]:
    """Field errors (empty when the content is coherent). Emergency and 911 go together: an
    emergency tells the caller to dial 911, and only an emergency does."""
    errors: dict[str, list[str]] = {}
    if not content.name.strip():
        errors.setdefault("name", []).append("Give the protocol a name.")
    if not any(t.strip() for t in content.triggers):
        errors.setdefault("triggers", []).append("List at least one trigger phrase.")
    if content.severity not in Severity.values:
        errors.setdefault("severity", []).append("Choose a severity.")
    if content.route not in Route.values:
        errors.setdefault("route", []).append("Choose a route.")
    emergency = content.severity == Severity.EMERGENCY
    if emergency != (content.route == Route.EMERGENCY_SERVICES):
        errors.setdefault("route", []).append("Emergencies route to 911, and only emergencies do.")
    if content.within_days_of_procedure is not None and content.within_days_of_procedure < 1:
        errors.setdefault("within_days_of_procedure", []).append("Must be at least 1 day.")
    return errors


def _valid(content: ProtocolContent) -> ProtocolContent:
    content = content.normalised()
    errors = check_content(content)
    if errors:
        raise ValidationError(errors)
    return content


def _write(version: ProtocolVersion, content: ProtocolContent) -> None:
    version.name = content.name
    version.triggers = list(content.triggers)
    version.severity = content.severity
    version.route = content.route
    version.instructions = content.instructions
    version.within_days_of_procedure = content.within_days_of_procedure
    version.route_provider_id = _own(Provider, version.practice_id, content.route_provider_id)
    version.on_call_group_id = _own(OnCallGroup, version.practice_id, content.on_call_group_id)
    version.save()
    known = set(
        AppointmentType.objects.for_practice(version.practice_id)
        .filter(pk__in=content.appointment_type_ids)
        .values_list("pk", flat=True)
    )
    wanted = [pk for pk in content.appointment_type_ids if pk in known]
    current = list(
        ProtocolVersion.appointment_types.through.objects.filter(protocolversion=version)
        .order_by("id")
        .values_list("appointmenttype_id", flat=True)
    )
    if current != wanted:  # in the given order (the export writes them back in it)
        version.appointment_types.clear()
        for pk in wanted:
            version.appointment_types.add(pk)


def _own(model: Any, practice_id: int, pk: int | None) -> int | None:
    """`pk` when it is the practice's own row (another practice's id is dropped)."""
    if pk is None:
        return None
    return pk if model.objects.for_practice(practice_id).filter(pk=pk).exists() else None


def default_group(practice: Practice | int) -> OnCallGroup:
    """The group shifts and protocols naming none belong to (made on first use)."""
    return group_for(practice, DEFAULT_GROUP_KEY, DEFAULT_GROUP_NAME)


def group_for(practice: Practice | int, key: str, name: str = "") -> OnCallGroup:
    """The practice's group `key`, made when missing ("ophthalmology" -> "Ophthalmology on
    call")."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    group, _ = OnCallGroup.objects.get_or_create(
        practice_id=practice_id,
        key=key,
        defaults={"name": name or f"{key.replace('-', ' ').capitalize()} on call"},
    )
    return group


def add_group(practice: Practice, name: str) -> OnCallGroup:
    """A new line of the rota, keyed from its name (an existing key is reused)."""
    name = name.strip()
    key = slugify(name.removesuffix(" on call").removesuffix(" On call"))[:64] or "group"
    return group_for(practice, key, name)


@transaction.atomic
def create_protocol(
    practice: Practice, content: ProtocolContent, user: User | None, key: str = ""
) -> ProtocolVersion:
    """A new protocol with its first version, a draft awaiting a clinician's approval."""
    content = _valid(content)
    protocol = EscalationProtocol.objects.create(
        practice=practice,
        key=key
        or unique_key(EscalationProtocol.objects.for_practice(practice), content.name, "protocol"),
    )
    version = ProtocolVersion(
        practice=practice, protocol=protocol, number=1, created_by=user, edited_by=user
    )
    _write(version, content)
    return version


@transaction.atomic
def save_draft(
    protocol: EscalationProtocol, content: ProtocolContent, user: User | None
) -> ProtocolVersion:
    """Edit a protocol: update its open draft, or open one numbered after the latest version.
    The live version keeps answering calls until the draft is approved."""
    content = _valid(content)
    EscalationProtocol.objects.select_for_update().filter(pk=protocol.pk).first()
    draft = protocol.versions.filter(status=VersionStatus.DRAFT).first()
    if draft is None:
        latest = protocol.versions.aggregate(n=Max("number"))["n"] or 0
        draft = ProtocolVersion(
            practice_id=protocol.practice_id,
            protocol=protocol,
            number=latest + 1,
            created_by=user,
        )
    draft.edited_by = user
    _write(draft, content)
    return draft


class ApprovalError(Exception):
    pass


def clinician_count(practice: Practice | int) -> int:
    """How many people hold the clinician role in the practice."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    return (
        Membership.objects.filter(practice_id=practice_id, role=Role.CLINICIAN)
        .values("user_id")
        .distinct()
        .count()
    )


def approval_policy(practice: Practice | int) -> ApprovalPolicy:
    """The practice's policy (an unsaved default when it never chose)."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    found = ApprovalPolicy.objects.for_practice(practice_id).first()
    return found or ApprovalPolicy(practice_id=practice_id)


def self_approval_allowed(practice: Practice | int) -> bool:
    """Only while the practice said so and still has a single clinician: a second clinician
    means a second pair of eyes is there to be asked."""
    return approval_policy(practice).allow_self_approval and clinician_count(practice) <= 1


def approval_refusal(version: ProtocolVersion, user: User | None) -> str:
    """Why `user` may not approve `version` ("" when they may): nobody approves what they
    wrote unless the practice's policy allows it. Approvals without a person (none in the
    portal) are not subject to it."""
    if user is None or user.pk not in version.author_ids:
        return ""
    if self_approval_allowed(version.practice_id):
        return ""
    return (
        "You wrote this version, so another clinician approves it. A practice with a single "
        "clinician can allow self-approval in the approval policy."
    )


@transaction.atomic
@refused_in_support_session(SupportForbidden.CLINICAL_APPROVAL)
def set_self_approval(practice: Practice, allow: bool, user: User | None) -> ApprovalPolicy:
    """Record the practice's explicit choice (a tracked change: who, when, from what to what).
    Allowing it needs a practice with at most one clinician."""
    if allow and clinician_count(practice) > 1:
        raise ValidationError(
            {
                "allow_self_approval": [
                    "The practice has more than one clinician: another clinician approves."
                ]
            }
        )
    policy = ApprovalPolicy.objects.for_practice(practice).select_for_update().first()
    if policy is None:
        policy = ApprovalPolicy(practice=practice)
    if policy.pk is not None and policy.allow_self_approval == allow:
        return policy
    policy.allow_self_approval = allow
    policy.updated_by = user
    policy.save()
    return policy


def _supersede_live(protocol_id: int, keep: int | None) -> ProtocolVersion | None:
    previous = (
        ProtocolVersion.objects.filter(protocol_id=protocol_id, status=VersionStatus.LIVE)
        .exclude(pk=keep)
        .first()
    )
    if previous is not None:
        previous.status = VersionStatus.SUPERSEDED
        previous.save(update_fields=["status", "updated_at"])
    return previous


def _audit_approval(
    version: ProtocolVersion, previous: ProtocolVersion | None, user: User | None
) -> None:
    audit.record(
        APPROVED_ACTION,
        practice=version.practice_id,
        object_type="calls.ProtocolVersion",
        object_ids=[version.pk],
        reason=version.approval_note,
        actor=user,
        details={
            "protocol_id": version.protocol_id,
            "version": version.number,
            "name": version.name,
            "severity": version.severity,
            "route": version.route,
            "source": version.approval_source,
            "self_approved": version.self_approved,
            "superseded_version": previous.number if previous else None,
        },
    )


@transaction.atomic
@refused_in_support_session(SupportForbidden.CLINICAL_APPROVAL)
def approve_version(
    version: ProtocolVersion,
    user: User | None,
    *,
    source: str = "portal",
    note: str = "",
    at: datetime | None = None,
) -> ProtocolVersion:
    """Make a draft the live version (the previous live one is superseded) and audit it.
    The caller checks the approver's role (portal: clinicians only); the approver is not one
    of the version's authors unless the practice's policy allows it (`approval_refusal`)."""
    EscalationProtocol.objects.select_for_update().filter(pk=version.protocol_id).first()
    version.refresh_from_db()
    if version.status != VersionStatus.DRAFT:
        raise ApprovalError(f"Version {version.number} is {version.get_status_display().lower()}.")
    refusal = approval_refusal(version, user)
    if refusal:
        raise ApprovalError(refusal)
    version.self_approved = user is not None and user.pk in version.author_ids
    previous = _supersede_live(version.protocol_id, keep=version.pk)
    version.status = VersionStatus.LIVE
    version.approved_by = user
    version.approved_at = at or timezone.now()
    version.approval_source = source
    version.approval_note = note[:200]
    version.save(
        update_fields=[
            "status",
            "approved_by",
            "approved_at",
            "approval_source",
            "approval_note",
            "self_approved",
            "updated_at",
        ]
    )
    _audit_approval(version, previous, user)
    return version


@transaction.atomic
@refused_in_support_session(SupportForbidden.CLINICAL_APPROVAL)
def withdraw_protocol(
    protocol: EscalationProtocol, user: User | None, *, source: str = "portal"
) -> bool:
    """Take a protocol off the air (its live version withdrawn); its history stays."""
    live = protocol.versions.filter(status=VersionStatus.LIVE).first()
    if live is None:
        return False
    live.status = VersionStatus.WITHDRAWN
    live.save(update_fields=["status", "updated_at"])
    audit.record(
        WITHDRAWN_ACTION,
        practice=protocol.practice_id,
        object_type="calls.ProtocolVersion",
        object_ids=[live.pk],
        actor=user,
        details={"protocol_id": protocol.pk, "version": live.number, "source": source},
    )
    return True


# --- the on-call rota -------------------------------------------------------------------------


def add_shift(
    practice: Practice,
    provider: Provider,
    start: datetime,
    end: datetime,
    user: User | None = None,
    note: str = "",
    group: OnCallGroup | None = None,
) -> OnCallShift:
    """Put a provider on call for a group (default: the practice's default group). Refuses
    nonsense (end before start, a provider without an on-call phone, a provider overlapping
    their own shift) with field errors."""
    errors: dict[str, list[str]] = {}
    if provider.practice_id != practice.pk:
        errors["provider"] = ["Unknown provider."]
    elif not provider.on_call_phone:
        errors["provider"] = [f"{provider.name} has no on-call phone number."]
    if end <= start:
        errors["end"] = ["Must be after the start."]
    if group is not None and group.practice_id != practice.pk:
        errors["group"] = ["Unknown group."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            return OnCallShift.objects.create(
                practice=practice,
                provider=provider,
                group=group or default_group(practice),
                start=start,
                end=end,
                note=note,
                created_by=user,
            )
    except IntegrityError as exc:
        if "on_call_no_self_overlap" in str(exc):
            raise ValidationError(
                {"start": [f"{provider.name} is already on call during part of this time."]}
            ) from exc
        raise


def delete_shift(shift: OnCallShift) -> None:
    shift.delete()


# --- screening decisions on calls -------------------------------------------------------------


@transaction.atomic
def screen_call(
    call: Call,
    text: str,
    appointment_type_id: int | None = None,
    procedure_date: date | None = None,
    now: datetime | None = None,
) -> Decision:
    """Screen what the caller said on this call, record the decision (the words encrypted) and
    mark the call escalated when it escalates."""
    practice = call.practice
    now = now or timezone.now()
    decision = screen(practice, text, appointment_type_id, procedure_date, now)
    record_screening(call, text, decision, appointment_type_id, procedure_date, now)
    return decision


def record_screening(
    call: Call,
    text: str,
    decision: Decision,
    appointment_type_id: int | None,
    procedure_date: date | None,
    at: datetime,
) -> Screening:
    screening = Screening.objects.create(
        practice_id=call.practice_id,
        call=call,
        text=text,
        procedure_date=procedure_date.isoformat() if procedure_date else None,
        appointment_type_id=appointment_type_id,
        escalate=decision.escalate,
        protocol_version_id=decision.version_id,
        severity=decision.severity or "",
        matched_trigger=decision.matched_trigger[:200],
        routed_to_id=decision.route_to.provider_id if decision.route_to else None,
        screened_at=at,
    )
    if decision.escalate and call.outcome != CallOutcome.ESCALATED:
        call.outcome = CallOutcome.ESCALATED
        call.save(update_fields=["outcome", "updated_at"])
    return screening


# --- the configuration file -------------------------------------------------------------------


@dataclass
class SectionCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)


def may_approve(actor: User | None, practice: Practice) -> bool:
    """Who may put a protocol live through an import: a clinician of the practice, or nobody in
    particular (`manage.py import_practice`, run by Hello staff at go-live with the file the
    practice's clinical team wrote in the AI audit)."""
    if actor is None:
        return True
    from accounts.models import Membership, Role

    return Membership.objects.filter(user=actor, practice=practice, role=Role.CLINICIAN).exists()


IMPORT_NOTE = "approved by the practice configuration file"


def import_protocols(
    practice: Practice,
    specs: Sequence[Any],
    type_ids: dict[str, int],
    actor: User | None = None,
    provider_ids: dict[str, int] | None = None,
) -> SectionCounts:
    """Make the practice's live protocols equal the file's (keyed by `key`), idempotently.

    A protocol whose live version already says what the file says is left alone; otherwise the
    file's content becomes a new version approved by the import (source `config_import`,
    audited like any approval): the file is the practice's own, its protocols are the ones its
    clinical team defined for go-live, and landing them as drafts would leave a freshly
    imported practice with no screening at all. Open drafts are kept (a clinician's work in
    progress is not the file's to discard). Protocols missing from the file are withdrawn, not
    deleted: screenings refer to their versions.

    Only a clinician (or the command line, `actor` None) approves that way: when someone else
    uploads the file (a practice manager), changed protocols land as drafts for a clinician to
    approve, and none is withdrawn; the notes say so.
    """
    counts = SectionCounts()
    if not may_approve(actor, practice):
        return _import_as_drafts(practice, specs, type_ids, actor, provider_ids or {})
    existing = {p.key: p for p in EscalationProtocol.objects.for_practice(practice)}
    for spec in specs:
        content = _file_content(practice, spec, type_ids, provider_ids or {})
        protocol = existing.pop(spec.key, None)
        if protocol is None:
            protocol = EscalationProtocol.objects.create(practice=practice, key=spec.key)
            live = None
        else:
            live = protocol.versions.filter(status=VersionStatus.LIVE).first()
            if live is not None and ProtocolContent.of(live).same_as(content):
                continue
        latest = (
            protocol.versions.exclude(status=VersionStatus.DRAFT).aggregate(n=Max("number"))["n"]
            or 0
        )
        draft = protocol.versions.filter(status=VersionStatus.DRAFT).first()
        if draft is not None:  # a clinician's open draft stays the newest version
            draft.number = max(draft.number, latest + 1) + 1
            draft.save(update_fields=["number", "updated_at"])
        previous = _supersede_live(protocol.pk, keep=None)
        version = ProtocolVersion(
            practice=practice,
            protocol=protocol,
            number=latest + 1,
            created_by=actor,
            status=VersionStatus.LIVE,
            approved_by=actor,
            approved_at=timezone.now(),
            approval_source="config_import",
            approval_note=IMPORT_NOTE,
        )
        _write(version, content)
        _audit_approval(version, previous, actor)
        if live is None and latest == 0:
            counts.created += 1
        else:
            counts.updated += 1
    for protocol in existing.values():
        if withdraw_protocol(protocol, actor, source="config_import"):
            counts.deleted += 1
    return counts


def _file_content(
    practice: Practice, spec: Any, type_ids: dict[str, int], provider_ids: dict[str, int]
) -> ProtocolContent:
    provider = getattr(spec, "route_provider", "")
    group = getattr(spec, "on_call_group", "")
    return ProtocolContent(
        name=spec.name,
        triggers=tuple(spec.triggers),
        severity=spec.severity,
        route=spec.route,
        instructions=spec.instructions,
        within_days_of_procedure=spec.within_days_of_procedure,
        appointment_type_ids=tuple(type_ids[k] for k in spec.appointment_types),
        route_provider_id=provider_ids[provider] if provider else None,
        on_call_group_id=group_for(practice, group).pk if group else None,
    ).normalised()


def _import_as_drafts(
    practice: Practice,
    specs: Sequence[Any],
    type_ids: dict[str, int],
    actor: User | None,
    provider_ids: dict[str, int],
) -> SectionCounts:
    counts = SectionCounts()
    existing = {p.key: p for p in EscalationProtocol.objects.for_practice(practice)}
    drafted: list[str] = []
    for spec in specs:
        content = _file_content(practice, spec, type_ids, provider_ids)
        protocol = existing.pop(spec.key, None)
        if protocol is None:
            create_protocol(practice, content, actor, key=spec.key)
            counts.created += 1
            drafted.append(spec.key)
            continue
        current = [
            v
            for v in protocol.versions.filter(
                status__in=[VersionStatus.LIVE, VersionStatus.DRAFT]
            ).order_by("-number")
        ]
        if any(ProtocolContent.of(v).same_as(content) for v in current[:1]):
            continue  # the newest open version already says it
        save_draft(protocol, content, actor)
        counts.updated += 1
        drafted.append(spec.key)
    if drafted:
        counts.notes.append(
            f"escalation_protocols: {len(drafted)} saved as draft(s) for a clinician to approve "
            f"({', '.join(drafted)}); the live versions keep answering calls"
        )
    if existing:
        counts.notes.append(
            "escalation_protocols: not in the file but left live (only a clinician withdraws "
            f"a protocol): {', '.join(sorted(existing))}"
        )
    return counts


def import_on_call(
    practice: Practice, specs: Iterable[Any], provider_ids: dict[str, int]
) -> SectionCounts:
    """Make the rota equal the file's entries (provider, group, start, end): matching shifts
    are kept, missing ones created, the rest deleted. An entry naming no group covers the
    default group."""
    counts = SectionCounts()
    groups: dict[str, int] = {}

    def group_id(key: str) -> int:
        key = key or DEFAULT_GROUP_KEY
        if key not in groups:
            groups[key] = (
                default_group(practice) if key == DEFAULT_GROUP_KEY else group_for(practice, key)
            ).pk
        return groups[key]

    wanted = [
        (provider_ids[s.provider], group_id(getattr(s, "group", "")), s.start, s.end) for s in specs
    ]
    rows = list(OnCallShift.objects.for_practice(practice).order_by("id"))
    free = {r.pk: r for r in rows}
    keep: set[int] = set()
    missing: list[tuple[int, int, datetime, datetime]] = []
    for provider_id, group, start, end in wanted:
        found = next(
            (
                r
                for r in free.values()
                if r.pk not in keep
                and (r.provider_id, r.group_id, r.start, r.end) == (provider_id, group, start, end)
            ),
            None,
        )
        if found is None:
            missing.append((provider_id, group, start, end))
        else:
            keep.add(found.pk)
    stale = [pk for pk in free if pk not in keep]
    if stale:
        OnCallShift.objects.filter(pk__in=stale).delete()
        counts.deleted = len(stale)
    for provider_id, group, start, end in missing:
        OnCallShift.objects.create(
            practice=practice, provider_id=provider_id, group_id=group, start=start, end=end
        )
        counts.created += 1
    return counts
