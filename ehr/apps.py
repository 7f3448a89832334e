from django.apps import AppConfig


class EhrConfig(AppConfig):
    """The EHR port and its adapters.

    The label stays "integrations": tables, migration history and task names were named when this
    code lived in the integrations package.
    """

    name = "ehr"
    label = "integrations"
    verbose_name = "EHR integrations"

    def ready(self) -> None:
        from compliance.audit import register_integration_models

        register_integration_models()  # which models, and why not the others: see there
