from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from compliance.audit import register_integration_models

        register_integration_models()  # which models, and why not the others: see there
