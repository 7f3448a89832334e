"""Calls: the call record and its transcript and encounter note (`call.py`), escalation protocols,
the on-call rota and screening (`escalation.py`)."""

from calls.models.call import *  # noqa: F403
from calls.models.escalation import *  # noqa: F403
