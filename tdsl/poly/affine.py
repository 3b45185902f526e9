"""Translating tdsl expressions into isl quasi-affine functions, and back.

`to_pw_aff(e, space)` builds an isl PwAff for an index or bound expression on a
named set space (statement dims and size parameters), through isl's object API
so precedence and quoting cannot go wrong. Sums, products by constants, floor
division and modulo by positive constants, min and max are exact; anything
else raises `NonAffine`, and callers fall back to a conservative model.
"""

from __future__ import annotations

import islpy as isl

from ..lang.expr import BinOp, Cast, Const, Expr, IterVar, UnaryOp, Var
from ..lang import dtypes


class NonAffine(Exception):
    """The expression is not quasi-affine in the statement's dims and the parameters."""


def set_space(ctx: isl.Context, name: str, dims: list[str], params: list[str]) -> isl.Space:
    """A named set space `[params] -> { name[dims] }`."""
    space = isl.Space.create_from_names(ctx, set=dims, params=params)
    return space.set_tuple_name(isl.dim_type.set, name)


class AffineBuilder:
    """Builds PwAffs on one set space; `dims` maps variables (by identity) to positions."""

    def __init__(self, space: isl.Space, dims: dict[int, int], params: dict[int, int]):
        self.space = space
        self.local = isl.LocalSpace.from_space(space)
        self.dims = dims
        self.params = params
        self._memo: dict[int, isl.PwAff] = {}

    def const(self, value: int) -> isl.PwAff:
        aff = isl.Aff.zero_on_domain(self.local).set_constant_val(isl.Val.int_from_si(
            self.space.get_ctx(), int(value)))
        return isl.PwAff.from_aff(aff)

    def __call__(self, e: Expr) -> isl.PwAff:
        key = id(e)
        if key not in self._memo:
            self._memo[key] = self._build(e)
        return self._memo[key]

    def _build(self, e: Expr) -> isl.PwAff:
        match e:
            case Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
                return self.const(v)
            case IterVar() | Var() if id(e) in self.dims:
                aff = isl.Aff.var_on_domain(self.local, isl.dim_type.set, self.dims[id(e)])
                return isl.PwAff.from_aff(aff)
            case Var() if id(e) in self.params:
                aff = isl.Aff.var_on_domain(self.local, isl.dim_type.param, self.params[id(e)])
                return isl.PwAff.from_aff(aff)
            case Cast(value=v) if dtypes.is_int(e.dtype) and dtypes.is_int(v.dtype):
                return self(v)
            case UnaryOp(op="neg", value=v):
                return self(v).neg()
            case BinOp(op="add", a=a, b=b):
                return self(a).add(self(b))
            case BinOp(op="sub", a=a, b=b):
                return self(a).sub(self(b))
            case BinOp(op="mul", a=a, b=b):
                if _int_const(b) is not None:
                    return self(a).scale_val(self._val(_int_const(b)))
                if _int_const(a) is not None:
                    return self(b).scale_val(self._val(_int_const(a)))
            case BinOp(op="floordiv", a=a, b=b) if (_int_const(b) or 0) > 0:
                return self(a).scale_down_val(self._val(_int_const(b))).floor()
            case BinOp(op="mod", a=a, b=b) if (_int_const(b) or 0) > 0:
                return self(a).mod_val(self._val(_int_const(b)))
            case BinOp(op="min", a=a, b=b):
                return self(a).min(self(b))
            case BinOp(op="max", a=a, b=b):
                return self(a).max(self(b))
        raise NonAffine(str(e))

    def _val(self, v: int) -> isl.Val:
        return isl.Val.int_from_si(self.space.get_ctx(), int(v))

    def condition(self, e: Expr) -> isl.Set:
        """The set where the boolean expression `e` holds (comparisons, &, |, ~)."""
        match e:
            case BinOp(op="and", a=a, b=b):
                return self.condition(a).intersect(self.condition(b))
            case BinOp(op="or", a=a, b=b):
                return self.condition(a).union(self.condition(b))
            case UnaryOp(op="invert", value=v):
                return isl.Set.universe(self.space).subtract(self.condition(v))
            case Const(value=bool() as v):
                return isl.Set.universe(self.space) if v else isl.Set.empty(self.space)
            case BinOp(op=op, a=a, b=b) if op in _COMPARE:
                if not dtypes.is_int(a.dtype):
                    raise NonAffine(str(e))
                return getattr(self(a), _COMPARE[op])(self(b))
        raise NonAffine(str(e))


_COMPARE = {"lt": "lt_set", "le": "le_set", "gt": "gt_set", "ge": "ge_set", "eq": "eq_set",
            "ne": "ne_set"}


def _int_const(e: Expr) -> int | None:
    if isinstance(e, Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return e.value
    if isinstance(e, Cast):
        return _int_const(e.value)
    return None
