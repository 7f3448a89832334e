"""Escalation protocols (versioned, clinician-approved), the on-call rota and screening."""

from __future__ import annotations

__all__: list[str] = []
