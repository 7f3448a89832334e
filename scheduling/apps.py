from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        from compliance.audit import register_model
        from scheduling.models import Booking, Patient

        register_model(Patient)
        register_model(Booking)
