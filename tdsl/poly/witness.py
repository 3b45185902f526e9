"""Concrete instances from isl sets: the smallest sizes, then the first instance.

Messages show one example ("C.update[i=0, j=0, k=1] when n=1"), which is what
a student can check by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl


@dataclass
class Witness:
    params: dict[str, int]
    coords: list[int]

    def instance(self, start: int, stop: int) -> list[int]:
        return self.coords[start:stop]


def smallest_point(s: isl.Set, param_names: list[str]) -> Witness:
    """The lexicographically smallest point of `s` over (parameters, then coordinates)."""
    if s.is_wrapping():
        s = s.flatten()
    n_par = s.dim(isl.dim_type.param)
    names = [s.get_dim_name(isl.dim_type.param, k) for k in range(n_par)]
    moved = s.move_dims(isl.dim_type.set, 0, isl.dim_type.param, 0, n_par)
    try:
        point = moved.lexmin().sample_point()
    except isl.Error:
        point = moved.sample_point()
    if point.is_void():
        point = moved.sample_point()
    n = moved.dim(isl.dim_type.set)
    coords = [int(point.get_coordinate_val(isl.dim_type.set, k).to_python()) for k in range(n)]
    params = {name: v for name, v in zip(names, coords[:n_par]) if name in param_names}
    return Witness(params, coords[n_par:])


def describe_instance(model, sm, coords: list[int]) -> str:
    """`C.update[i=0, j=0, k=1]`: the statement by its stage and kind, root dims only."""
    root = coords[len(sm.outer):]
    label = sm.stmt.stage if sm.stmt.kind in ("compute", "recurrence") else \
        f"{sm.stmt.stage}.{sm.stmt.kind}"
    dims = ", ".join(f"{d.name}={v}" for d, v in zip(sm.stmt.dims, root))
    return f"{label}[{dims}]"
