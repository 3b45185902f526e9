"""The schedule language: `Schedule`, `Stage`, every primitive, and the lowering driver."""

from .lower import Lowered, lower
from .schedule import Schedule, create_schedule
from .stage import Stage

__all__ = ["Lowered", "Schedule", "Stage", "create_schedule", "lower"]
