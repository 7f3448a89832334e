from typing import Any

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        from compliance.audit import register_model
        from scheduling.models import Booking, Patient, TestScenario

        register_model(Patient)
        register_model(Booking)
        # Configuration: the practice's acceptance tests (compliance registers every scheduling
        # model at start-up too; registering is idempotent, this keeps it explicit).
        register_model(TestScenario)
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
