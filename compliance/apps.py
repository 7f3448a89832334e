from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance: BAAs, PHI gate, audit trail, encryption keys"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from compliance import capture, checks, signals  # noqa: F401
        from compliance.audit import register_configuration_models

        register_configuration_models()
        # Capture triggers for every audited table (after all apps registered theirs), and the
        # audit context carried into each connection's audited writes (compliance.capture).
        post_migrate.connect(
            capture.install_after_migrate, sender=self, dispatch_uid="compliance.capture"
        )
        connection_created.connect(
            capture.add_wrapper, weak=False, dispatch_uid="compliance.capture_context"
        )
