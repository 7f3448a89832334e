"""Onboarding's worker task: a large configuration upload, imported off the request."""

from __future__ import annotations

from celery import shared_task

from onboarding import services


# The name predates the onboarding app; queued messages and routes carry it, so it stays.
@shared_task(name="scheduling.run_config_import", acks_late=True)
def run_config_import(import_id: int, practice_id: int) -> str:
    """A large configuration upload, imported by a worker (`services.run_config_import`)."""
    return services.run_config_import(import_id, practice_id)
