"""A check that isl's AST runs every statement instance, and a second try when not.

isl's AST generator (in islpy 2026.2.2) can drop instances: for a domain with an
existential constraint, such as the rows a compute_at stage computes for a read
`P[i - i % 2, j]`, `{ P[o, i] : i mod 2 = 0 and o - 1 <= i <= o }` under the loops
`[o, floor(i/5), i mod 5]`, it emits only the odd iterations of o. The build
records, at each statement leaf, the instances that leaf runs; `lost` compares
their union with the statement's domain. `partitioned` rewrites a domain as the
same set cut by the residues of the outer dims modulo the denominators of its
floors (here: o even, o odd), which isl then generates correctly. When that does not help
either, the schedule is refused with a lesson rather than compiled wrong.
"""

from __future__ import annotations

import math

import islpy as isl

from ..errors import ScheduleError
from .bounds import operation_budget


# isl operations one statement's check may take (about 5 s); a domain with `%` conditions
# under splits by unrelated factors can make the exact check run for hours (fuzzer case
# 528 of seed 20261201: `where=(k + i) % 3 != 1` under a split by 5 and tiles of 7).
CHECK_BUDGET = 1_000_000


def lost(model, executed: dict[str, isl.Set]) -> list[str]:
    """Names of the statements some of whose instances no AST leaf runs; a ScheduleError
    (the lesson of `refuse_unverified`) if the check of some statement ran out of its
    budget, since an unchecked AST could be wrong."""
    names, unverified = [], []
    for name, sm in model.stmts.items():
        want = sm.domain.intersect_params(model.context)
        got = executed.get(name)
        if want.is_empty():
            continue
        if got is None:
            names.append(name)
            continue
        covered = _within_budget(want, got)
        if covered is None:
            unverified.append(name)
        elif not covered:
            names.append(name)
    if unverified and not names:
        raise refuse_unverified(unverified)
    return names


def _within_budget(want: isl.Set, got: isl.Set) -> bool | None:
    """want <= got, or None when isl needs more than CHECK_BUDGET operations to say."""
    try:
        with operation_budget(want.get_ctx(), CHECK_BUDGET):
            return want.is_subset(got)
    except isl.Error:
        return None


def partitioned(domain: isl.Set, n_outer: int, most: int = 64) -> isl.Set:
    """`domain`, cut along its first `n_outer` dims by their residues modulo the
    denominators of the domain's floor divisions (the same set, in pieces that isl
    does not merge back: each piece has fewer existentials)."""
    modulus = 1
    for bset in domain.get_basic_sets():
        ls = bset.get_local_space()
        for k in range(ls.dim(isl.dim_type.div)):
            modulus = math.lcm(modulus, int(ls.get_div(k).get_denominator_val().to_python()))
    if modulus == 1 or n_outer == 0 or modulus ** n_outer > most:
        return domain
    n = domain.dim(isl.dim_type.set)
    pieces = [domain]
    for d in range(n_outer):
        residues = []
        for r in range(modulus):
            text = f"{{ [{', '.join(f'x{k}' for k in range(n))}] : x{d} mod {modulus} = {r} }}"
            residue = isl.Set(text).align_params(domain.get_space())
            if domain.has_tuple_id():
                residue = residue.set_tuple_id(domain.get_tuple_id())
            residues.append(residue)
        pieces = [part for piece in pieces for part in (piece.intersect(r) for r in residues)
                  if not part.is_empty()]
    result = pieces[0]
    for piece in pieces[1:]:
        result = result.union(piece)
    return result


def refuse(names: list[str]) -> ScheduleError:
    stages = sorted({n.split("_")[0] for n in names})
    return ScheduleError(
        f"td.lower of this schedule is refused: isl's code generator would skip some "
        f"iterations of {', '.join(names)}, and the kernel would compute wrong values. This "
        f"is a limit of isl, not a mistake in your schedule. Compute "
        f"{', '.join(stages)} at another loop (compute_at), or split its loops by other "
        f"factors, and please report the schedule")


def refuse_unverified(names: list[str]) -> ScheduleError:
    return ScheduleError(
        f"td.lower of this schedule is refused: tdsl proves that isl's generated loops run "
        f"every iteration of each statement (isl can skip some), and for "
        f"{', '.join(names)} that proof did not finish in its time budget: the statement's "
        f"`%` or `//` conditions (a `where=` or an index) combined with splits and tiles by "
        f"factors unrelated to their moduli make the sets too large. Split or tile by "
        f"factors that are multiples of the moduli, or by factors that divide each other, "
        f"or split fewer loops of this stage")
