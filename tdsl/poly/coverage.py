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


def lost(model, executed: dict[str, isl.Set]) -> list[str]:
    """Names of the statements some of whose instances no AST leaf runs."""
    names = []
    for name, sm in model.stmts.items():
        want = sm.domain.intersect_params(model.context)
        got = executed.get(name)
        if want.is_empty():
            continue
        if got is None or not want.is_subset(got):
            names.append(name)
    return names


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
