from typing import Any

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        from compliance import impersonation
        from compliance.audit import register_model

        # Audited: the catalogue, the practice's API clients and scenarios, the mirror of the
        # EHR, patients and bookings (PHI). Not audited, on purpose: a hold is a few minutes'
        # claim on a slot (the booking that uses it is audited and points at it), an outbox row
        # the relay's queue; auditing them would slow every hold and serialise concurrent holds
        # on the chain lock.
        for model in self.get_models():
            if model._meta.label not in OPERATIONAL_MODELS:
                register_model(model)
        impersonation.session_ended.connect(
            _revoke_support_clients, dispatch_uid="scheduling.revoke_support_clients"
        )
        self.forget_evidence_on_change()

    def forget_evidence_on_change(self) -> None:
        """The intent resolver caches a practice's types and phrases: any change to one, or to
        the practice (its lay terms), drops that practice's copy."""
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Practice
        from scheduling.intents import forget_evidence
        from scheduling.models import AppointmentType, CallerPhrase

        def owned(sender: Any, instance: Any, **kwargs: Any) -> None:
            forget_evidence(instance.practice_id)

        def practice(sender: Any, instance: Any, **kwargs: Any) -> None:
            forget_evidence(instance.pk)

        for model in (AppointmentType, CallerPhrase):
            post_save.connect(owned, sender=model, weak=False, dispatch_uid=f"intents-{model}")
            post_delete.connect(owned, sender=model, weak=False, dispatch_uid=f"intents-d-{model}")
        post_save.connect(practice, sender=Practice, weak=False, dispatch_uid="intents-practice")


# The EHR's free slots are a cache the change poll replaces every few seconds, no PHI: auditing
# them would flood the trail with the EHR's own bookkeeping.
OPERATIONAL_MODELS = frozenset(
    {"scheduling.Hold", "scheduling.OutboxMessage", "scheduling.NativeSlot"}
)


def _revoke_support_clients(sender: Any, session: Any, **_: Any) -> None:
    """What support made in a session it ended does not outlive it."""
    from scheduling.services import revoke_clients_of_support_session

    revoke_clients_of_support_session(session)
