"""Integer bounds of piecewise quasi-affine functions, and isl failures as lessons.

isl's `PwAff.max_val` solves one integer program per piece and refuses a piece
whose expression contains a floor ("expecting integer affine expression"): the
extent of a footprint under fused-then-split loops is like that. The graph of
the function, as a set, has its floors as existentially quantified variables,
which `Set.dim_max_val`/`dim_max` handle. The helpers here ask the direct
question first, then the set's, then fall back to a bound that always holds
(the caller's), so a user's schedule never meets an isl error from them.

`isl_lessons(call)` is the last line: any other isl failure while analysing a
user's call becomes a `ScheduleError` that says what was asked, why it cannot be
done and what to try instead.
"""

from __future__ import annotations

from contextlib import contextmanager

import islpy as isl

from ..errors import ScheduleError


@contextmanager
def operation_budget(ctx: isl.Context, operations: int):
    """Inside the block, isl may take at most `operations` (its own unit of work) before
    its calls raise `isl.Error`; for questions whose answer is optional, or whose
    exact answer can take hours for a few pathological sets."""
    ctx.reset_operations()
    ctx.set_max_operations(operations)
    try:
        yield
    finally:
        ctx.set_max_operations(0)
        ctx.reset_operations()


def max_val(pa: isl.PwAff) -> isl.Val:
    """The largest value of `pa` over its domain (and parameters): an integer, or
    infinity when there is no constant bound, NaN when the domain is empty.

    >>> max_val(isl.PwAff("{ [o] -> [(floor(o/3))] : 0 <= o < 40 }"))   # 13
    """
    try:
        return pa.max_val()
    except isl.Error:
        pass
    graph = isl.Map.from_pw_aff(pa).range()
    try:
        if graph.is_empty():
            return isl.Val.nan(pa.get_ctx())         # what max_val says of an empty domain
        return graph.dim_max_val(0)
    except isl.Error:
        return isl.Val.infty(pa.get_ctx())


def max_over_domain(pa: isl.PwAff) -> isl.PwAff | None:
    """The largest value of `pa` for each value of the parameters (a PwAff on the
    parameter space), or None if isl cannot bound it."""
    try:
        return isl.Map.from_pw_aff(pa).range().dim_max(0)
    except isl.Error:
        return None


@contextmanager
def isl_lessons(call: str):
    """Turn an isl failure inside the block into a `ScheduleError` about `call`."""
    try:
        yield
    except isl.Error as exc:
        detail = str(exc).split(" in /")[0]
        raise ScheduleError(
            f"{call} cannot be analysed: the polyhedral library (isl) could not answer a "
            f"question about this schedule ({detail}). This is a limit of tdsl, not a mistake "
            "in your program. Try a simpler loop structure around it: split factors that "
            "divide the extents, fewer fused loops, or compute_at at an outer loop; and "
            "please report the schedule (python -m tdsl.testing.fuzz writes reproducers)"
        ) from None
