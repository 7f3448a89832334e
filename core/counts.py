"""What one pass of writes did to a kind of row: the EHR sync's report and the configuration
import's both count in it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted
