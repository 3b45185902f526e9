"""The whole state of a schedule as one immutable value.

A primitive computes a new `ScheduleData`, the legality check runs on it, and
only then does the `Schedule` adopt it: a refused primitive leaves the
schedule exactly as it was (notebook users retry the cell).

Stages are keyed by the operation they were created for. Primitives that
rewrite operations (cache_read, cache_write, rfactor) give a stage a new
current op; every op that ever stood for a stage stays an alias of its key, so
`s[C]` and loads of `C` keep resolving to the stage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ..lang.expr import IterVar
from ..lang.tensor import Operation, PlaceholderOp, Tensor
from .state import StageState


@dataclass(frozen=True)
class ScheduleData:
    outputs: tuple[Tensor, ...]
    placeholders: tuple[PlaceholderOp, ...]
    order: tuple[Operation, ...]                    # stage keys, producers first
    states: dict                                     # key -> StageState (never mutated)
    aliases: tuple[tuple[Operation, Operation], ...]  # (op, key): every op standing for a key

    def key_of(self, op: Operation) -> Operation | None:
        for alias, key in self.aliases:
            if alias is op:
                return key
        return None

    def ops_of(self, key: Operation) -> list[Operation]:
        return [alias for alias, k in self.aliases if k is key]

    def attached_at(self, key: Operation, leaf: IterVar) -> list[Operation]:
        return [k for k in self.order if isinstance(self.states[k].attach, tuple)
                and self.states[k].attach[0] is key and self.states[k].attach[1] is leaf]

    def with_state(self, key: Operation, state: StageState) -> "ScheduleData":
        states = dict(self.states)
        states[key] = state
        aliases = self.aliases
        if self.key_of(state.op) is None:
            aliases = aliases + ((state.op, key),)
        return replace(self, states=states, aliases=aliases)

    def with_stage(self, key: Operation, state: StageState, before: Operation) -> "ScheduleData":
        """A new stage `key`, placed just before the stage `before` in the order."""
        position = self.order.index(before)
        order = self.order[:position] + (key,) + self.order[position:]
        states = dict(self.states)
        states[key] = state
        return replace(self, order=order, states=states,
                       aliases=self.aliases + ((key, key),))
