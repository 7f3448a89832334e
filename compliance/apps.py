from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance: BAAs, PHI gate, audit trail, encryption keys"

    def ready(self) -> None:
        from compliance import checks, signals  # noqa: F401
        from compliance.audit import register_configuration_models

        register_configuration_models()
