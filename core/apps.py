from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Tenancy, database plumbing and request helpers every other app builds on."""

    name = "core"

    def ready(self) -> None:
        from core import checks, tenancy  # noqa: F401  (tenancy: registers new sessions)
