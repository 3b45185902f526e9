"""The schedule language: `Schedule`, `Stage`, every primitive, and the lowering driver."""

from .lower import Lowered, lower
from .schedule import Schedule, Stage, create_schedule

__all__ = ["Lowered", "Schedule", "Stage", "create_schedule", "lower"]
