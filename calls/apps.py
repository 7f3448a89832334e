from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from calls import signals
        from calls.models import Call, CallRetention, EncounterNote
        from compliance.audit import register_model
        from scheduling.models import Booking

        for model in (Call, EncounterNote, CallRetention):
            register_model(model)
        # Escalation: protocols and the rota are clinical configuration, screenings hold PHI.
        from calls.models import (
            ApprovalPolicy,
            EscalationProtocol,
            OnCallShift,
            ProtocolVersion,
            Screening,
        )

        for escalation_model in (EscalationProtocol, OnCallShift, Screening, ApprovalPolicy):
            register_model(escalation_model)
        register_model(ProtocolVersion, m2m_fields={"appointment_types"})
        # A booking confirmed after its call's transcript arrived queues the encounter note.
        post_save.connect(signals.booking_saved, sender=Booking, dispatch_uid="calls.booking")
