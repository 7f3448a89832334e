from django.apps import AppConfig, apps


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance: BAAs, PHI gate, audit trail, encryption keys"

    def ready(self) -> None:
        from compliance import checks, signals  # noqa: F401
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


AUDITED = frozenset({"compliance.BusinessAssociateAgreement", "compliance.PracticeDataKey"})
