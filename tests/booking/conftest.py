"""The booking tests issue API credentials for the voice agent's requests: hashed cheaply."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cheap_secret_hashing(fast_secret_hashing):
    pass
