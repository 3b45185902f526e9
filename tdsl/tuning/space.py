"""Candidates: a configuration of the rules' knobs, realized as a schedule.

The space is what the rules offer (`tdsl/auto/knobs.py`): realizing a configuration runs
the rules with it and records every knob they asked about, so the space grows as
choices open rules (a stage left un-inlined gets loops, and knobs, of its own). Every
primitive a rule applies is checked by isl as it is applied; a candidate in which isl
refused a chosen primitive is counted as refused and never reaches the compiler.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from ..auto.knobs import Knobs
from ..auto.rules import apply_rules


@dataclass
class Candidate:
    choices: dict                  # every knob the rules asked about -> the value taken
    schedule: object
    key: str                       # the schedule's canonical text, hashed
    refused: list = field(default_factory=list)
    offered: dict = field(default_factory=dict)   # knob -> (options, default)
    features: dict = field(default_factory=dict)  # what the cost model sees (features.py)
    config_key: str = ""                          # the configuration it was realized from


class Space:
    """The knobs seen so far, and how to realize, mutate and cross configurations."""

    def __init__(self, workload):
        self.workload = workload
        self.knobs: dict[str, tuple] = {}          # name -> (options, default)

    def realize(self, config: dict) -> Candidate:
        from ..schedule.fingerprint import fingerprint
        knobs = Knobs(config)
        # the defaults are td.auto_schedule's schedule exactly (a rule isl refuses is undone
        # alone); other candidates are proven legal once, as a whole, which is much faster
        s = apply_rules(self.workload.outputs, self.workload.target, knobs,
                        checked=not config)
        for name, offer in knobs.space.items():
            self.knobs.setdefault(name, offer)
        text = fingerprint(s.data, self.workload.args, "kernel").split("\n", 1)[1]
        key = hashlib.sha256(text.encode()).hexdigest()[:24]
        return Candidate(dict(knobs.chosen), s, key, list(knobs.refused), dict(knobs.space))

    def random(self, rng: np.random.Generator) -> dict:
        return {name: _pick(options, rng) for name, (options, _) in self.knobs.items()}

    def mutate(self, config: dict, rng: np.random.Generator, changes: int = 1) -> dict:
        out = dict(config)
        names = sorted(n for n, (options, _) in self.knobs.items() if len(options) > 1)
        if not names:
            return out
        for name in rng.choice(names, size=min(changes, len(names)), replace=False):
            options = self.knobs[name][0]
            others = [o for o in options if o != out.get(name, self.knobs[name][1])]
            out[str(name)] = _pick(others or options, rng)
        return out

    def cross(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        names = set(a) | set(b)
        return {n: (a if (n in a and (n not in b or rng.random() < 0.5)) else b)[n]
                for n in sorted(names)}


def config_key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def _pick(options, rng):
    return options[int(rng.integers(len(options)))]
