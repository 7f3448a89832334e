"""Compliance tasks. Tasks take ids and are safe to run twice."""

from celery import shared_task

from compliance import services


@shared_task(name="compliance.expire_agreements")
def expire_agreements() -> int:
    """Daily sweep: executed BAAs past their last day become `expired` (the gate reads dates,
    so this is bookkeeping, never the thing that stops PHI)."""
    return services.expire_due()
