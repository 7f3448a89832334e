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
