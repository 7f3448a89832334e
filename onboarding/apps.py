from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    """The practice configuration file: schema, importer, exporter, EHR provisioning, demo."""

    name = "onboarding"
