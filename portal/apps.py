from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal: tenancy and accounts"

    def ready(self) -> None:
        from portal import checks, tenancy  # noqa: F401  (tenancy: registers new sessions)
