"""The choices the scheduling rules make, named so a search can make them differently.

Each rule asks `knobs.choose(name, options, default)` where it would otherwise fix a
number or a yes/no: a tile's rows, whether a stage is inlined, how many vectors of lanes
a reduction is factored into. `td.auto_schedule` takes every default; `td.tune` passes a
configuration (name -> value) and reads back the space the rules offered (`space`),
which grows as choices open new rules (a stage left un-inlined gets loops of its own).
Names are built from the stages' names, so a configuration applies to any program with
the same stages (a tuning log is replayed on a fresh definition of the algorithm).
"""

from __future__ import annotations


class Knobs:
    """The rules' choices: `config` where it names a knob with a valid value, else the
    default; records every knob offered (`space`) and every value taken (`chosen`)."""

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})
        self.space: dict[str, tuple] = {}        # name -> (options, default)
        self.chosen: dict[str, object] = {}
        self.refused: list[str] = []             # isl's refusals of chosen primitives

    def choose(self, name: str, options, default):
        options = tuple(dict.fromkeys((default, *options)))   # default first, no repeats
        self.space[name] = (options, default)
        value = self.config.get(name, default)
        if value not in options:
            value = default
        self.chosen[name] = value
        return value
