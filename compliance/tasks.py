"""Compliance tasks. Tasks take ids and are safe to run twice."""

from celery import shared_task

from compliance import impersonation, services


@shared_task(name="compliance.expire_agreements")
def expire_agreements() -> int:
    """Daily sweep: executed BAAs past their last day become `expired` (the gate reads dates,
    so this is bookkeeping, never the thing that stops PHI)."""
    return services.expire_due()


@shared_task(name="compliance.close_expired_support_sessions")
def close_expired_support_sessions() -> int:
    """Every minute: support sessions past their end are closed, and what they made revoked."""
    return impersonation.close_expired()


@shared_task(name="compliance.seal_audit", ignore_result=True)
def seal_audit() -> int:
    """Every few seconds: seal what was written since (one sealer at a time: a run that finds
    another at work returns at once)."""
    from compliance import sealer

    return sealer.seal_pending(wait=False)
