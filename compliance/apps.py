from django.apps import AppConfig, apps


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance: BAAs, PHI gate, audit trail, encryption keys"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from compliance import capture, checks, signals  # noqa: F401
        from compliance.audit import register_model

        # Each app registers its own audited models in its ready(); an app below compliance
        # (accounts) cannot import it, so it names them on its AppConfig (`audited_models`).
        for config in apps.get_app_configs():
            for name in getattr(config, "audited_models", ()):
                register_model(config.get_model(name))
        # Ours: the agreements (the signed PDF left out: binary) and the practices' data keys.
        for model in self.get_models():
            if model._meta.label in AUDITED:
                register_model(model)
        # Capture triggers for every audited table (after all apps registered theirs), and the
        # audit context carried into each connection's audited writes (compliance.capture).
        post_migrate.connect(
            capture.install_after_migrate, sender=self, dispatch_uid="compliance.capture"
        )
        connection_created.connect(
            capture.add_wrapper, weak=False, dispatch_uid="compliance.capture_context"
        )


AUDITED = frozenset({"compliance.BusinessAssociateAgreement", "compliance.PracticeDataKey"})
