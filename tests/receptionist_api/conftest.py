"""Every test here issues API credentials (client secrets, tokens): hashed cheaply."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cheap_secret_hashing(fast_secret_hashing):
    pass
