"""Expression nodes: what a `td.compute` lambda builds when it runs.

Nodes are frozen, identity-hashed dataclasses. `==`, `<` and friends build
comparison expressions (as in TVM), so structural equality is
`tdsl.lang.visit.same` and `bool(expr)` is an error pointing at `td.select`,
`td.all` and `td.any`.

Every binary node is homogeneous: its operands are cast to the type NumPy would
compute in (`int32 + 1.5` becomes `float64(i) + 1.5`), so backends and the
reference evaluator never re-derive promotion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import TdslTypeError, TdslValueError
from . import dtypes

Scalar = Union[bool, int, float]


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Expr:
    """Base of every expression node. Subclasses carry a `dtype` field or property."""

    __hash__ = object.__hash__

    # -- arithmetic -------------------------------------------------------------------
    def __add__(self, other): return binary("add", self, other)
    def __radd__(self, other): return binary("add", other, self)
    def __sub__(self, other): return binary("sub", self, other)
    def __rsub__(self, other): return binary("sub", other, self)
    def __mul__(self, other): return binary("mul", self, other)
    def __rmul__(self, other): return binary("mul", other, self)
    def __truediv__(self, other): return binary("truediv", self, other)
    def __rtruediv__(self, other): return binary("truediv", other, self)
    def __floordiv__(self, other): return binary("floordiv", self, other)
    def __rfloordiv__(self, other): return binary("floordiv", other, self)
    def __mod__(self, other): return binary("mod", self, other)
    def __rmod__(self, other): return binary("mod", other, self)
    def __pow__(self, other): return binary("power", self, other)
    def __rpow__(self, other): return binary("power", other, self)
    def __neg__(self): return unary("neg", self)
    def __pos__(self): return self
    def __abs__(self): return call("abs", self)

    # -- comparisons and logic --------------------------------------------------------
    def __lt__(self, other): return binary("lt", self, other)
    def __le__(self, other): return binary("le", self, other)
    def __gt__(self, other): return binary("gt", self, other)
    def __ge__(self, other): return binary("ge", self, other)
    def __eq__(self, other): return binary("eq", self, other)  # type: ignore[override]
    def __ne__(self, other): return binary("ne", self, other)  # type: ignore[override]
    def __and__(self, other): return binary("and", self, other)
    def __rand__(self, other): return binary("and", other, self)
    def __or__(self, other): return binary("or", self, other)
    def __ror__(self, other): return binary("or", other, self)
    def __xor__(self, other): return binary("xor", self, other)
    def __rxor__(self, other): return binary("xor", other, self)
    def __invert__(self): return unary("invert", self)

    def __bool__(self):
        raise TdslTypeError(
            f"the truth value of the expression `{self}` is not known while the kernel is "
            "being built: Python's `if`, `and`, `or` and `not` cannot be applied to "
            "expressions. Use td.select(cond, a, b) for a choice, and td.all(...), "
            "td.any(...) or the operators &, |, ~ to combine conditions."
        )

    def astype(self, dtype) -> "Expr":
        """This expression converted to `dtype` (NumPy's `astype`)."""
        return cast(dtype, self)

    def __str__(self) -> str:
        from .printer import expr_str
        return expr_str(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Var(Expr):
    """A named integer scalar: a symbolic size (`td.var("n")`) or a loop variable."""

    name: str
    dtype: str = dtypes.INDEX


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class IterVar(Expr):
    """An axis: a data axis of a compute (`C.op.axis`), a reduction axis, or a loop
    made by a schedule primitive. Ranges over `start <= v < start + extent`."""

    name: str
    start: Expr
    extent: Expr
    kind: str = "data"            # "data" | "reduce"

    @property
    def dtype(self) -> str:
        return dtypes.INDEX

    @property
    def stop(self) -> Expr:
        return self.start + self.extent


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Const(Expr):
    value: Scalar
    dtype: str


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class BinOp(Expr):
    """`a <op> b` with `a.dtype == b.dtype`; `dtype` is the result type."""

    op: str
    a: Expr
    b: Expr
    dtype: str


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class UnaryOp(Expr):
    op: str                        # "neg" | "invert"
    value: Expr
    dtype: str


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Call(Expr):
    """An intrinsic (`exp`, `sqrt`, ...): all arguments already in the call's dtype."""

    name: str
    args: tuple[Expr, ...]
    dtype: str


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Cast(Expr):
    dtype: str
    value: Expr


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Select(Expr):
    """`true_value if cond else false_value`, elementwise (both sides may be evaluated)."""

    cond: Expr
    true_value: Expr
    false_value: Expr

    @property
    def dtype(self) -> str:
        return self.true_value.dtype


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Load(Expr):
    """`tensor[indices]`: a read of one element of a tensor."""

    tensor: Any                    # tdsl.lang.tensor.Tensor (kept untyped: no import cycle)
    indices: tuple[Expr, ...]

    @property
    def dtype(self) -> str:
        return self.tensor.dtype


@dataclass(frozen=True, eq=False, slots=True, repr=False)
class Reduce(Expr):
    """A reduction of `body` over `axes` with `reducer`, counting only points where
    `where` holds. Only allowed as the whole body of a compute."""

    reducer: Any                   # tdsl.lang.reduce.Reducer
    body: Expr
    axes: tuple[IterVar, ...]
    where: Expr | None = None

    @property
    def dtype(self) -> str:
        return self.body.dtype


# ---------------------------------------------------------------------------------------
# Construction with NumPy's typing rules
# ---------------------------------------------------------------------------------------

_UFUNCS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "power": np.power,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal, "and": np.bitwise_and, "or": np.bitwise_or,
    "xor": np.bitwise_xor, "max": np.maximum, "min": np.minimum,
}
COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
SYMBOLS = {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
    "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=",
    "and": "&", "or": "|", "xor": "^", "power": "**",
}


def is_scalar(value: object) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def const(value: Scalar, dtype: str | None = None) -> Const:
    """A constant; `dtype` defaults to bool, int32 or float32 by the Python type."""
    dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.scalar_dtype(value)
    try:
        with np.errstate(all="raise"):
            converted = np.array(value).astype(dtype, casting="unsafe")
            if dtypes.is_int(dtype) and int(converted) != value:
                raise OverflowError
    except (OverflowError, FloatingPointError, ValueError):
        if dtypes.is_int(dtype) and isinstance(value, (int, np.integer)):
            info = np.iinfo(dtype)
            raise TdslValueError(
                f"the constant {value} does not fit in {dtype} "
                f"(range {info.min}..{info.max})") from None
        converted = np.array(value).astype(dtype)
    return Const(converted.item(), dtype)


def as_expr(value: object, what: str = "value") -> Expr:
    """An Expr for `value` (an Expr, or a Python/NumPy scalar)."""
    if isinstance(value, Expr):
        return value
    if is_scalar(value):
        if isinstance(value, np.generic):
            return const(value.item(), value.dtype.name)
        return const(value)
    if hasattr(value, "op") and hasattr(value, "shape"):
        raise TdslTypeError(
            f"{what}: the tensor {getattr(value, 'name', value)} was used as a value; "
            f"index it, e.g. {getattr(value, 'name', 'T')}[i, j]")
    raise TdslTypeError(f"{what} must be an expression or a number; got {type(value).__name__} "
                        f"{value!r}")


@functools.lru_cache(maxsize=None)
def _numpy_result(op: str, a: object, b: object) -> str:
    """NumPy's result dtype of `op` on an array of dtype `a` (or a weak Python scalar type
    `a`) and likewise `b`."""
    def sample(x):
        return np.ones(1, dtype=x) if isinstance(x, str) else x(1)
    with np.errstate(all="ignore"):
        return _UFUNCS[op](sample(a), sample(b)).dtype.name


def _operand_type(x: object) -> object:
    if isinstance(x, Expr):
        return x.dtype
    if isinstance(x, np.generic):
        return x.dtype.name
    return type(x) if not isinstance(x, np.bool_) else bool


def binary(op: str, a: object, b: object) -> Expr:
    """`a <op> b` with NumPy's type rules; Python scalars are weak (NEP 50)."""
    if not isinstance(a, Expr) and not isinstance(b, Expr):
        raise TdslTypeError(f"binary({op!r}) needs at least one expression operand")
    for side in (a, b):
        if not isinstance(side, Expr):
            as_expr(side, f"the operand of {SYMBOLS.get(op, op)}")   # validates, raises
    ta, tb = _operand_type(a), _operand_type(b)
    try:
        result = _numpy_result(op, ta, tb)
    except TypeError:
        raise TdslTypeError(
            f"cannot apply {SYMBOLS.get(op, op)} to {_type_name(ta)} and {_type_name(tb)} "
            f"(in `{a} {SYMBOLS.get(op, op)} {b}`); NumPy refuses it too. Convert one side "
            f"with .astype(dtype)") from None
    if dtypes.is_bool(result) and op in ("add", "sub", "mul", "power"):
        raise TdslTypeError(
            f"arithmetic {SYMBOLS[op]} on two booleans (`{a} {SYMBOLS[op]} {b}`) is ambiguous; "
            "use | or & for logic, or .astype('int32') to count")
    if op in COMPARISONS:
        operand = _numpy_result("add", ta, tb) if not (ta == tb == "bool") else "bool"
        operand = _widen_for(operand, a, b)
    else:
        operand = result
    ea, eb = _coerce(a, operand), _coerce(b, operand)
    folded = _fold(op, ea, eb, result)
    return folded if folded is not None else BinOp(op, ea, eb, result)


def _widen_for(operand: str, a: object, b: object) -> str:
    """NumPy compares an integer array with any Python int, even one outside the array's
    type (`uint8 < -3`): compare in a type that holds both."""
    for x in (a, b):
        if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and \
                dtypes.is_int(operand):
            info = np.iinfo(operand)
            if not info.min <= int(x) <= info.max:
                return "int64" if -(2**63) <= int(x) < 2**63 and operand != "uint64" \
                    else "float64"
    return operand


def _type_name(t: object) -> str:
    return t if isinstance(t, str) else f"a Python {t.__name__}"


def _coerce(x: object, dtype: str) -> Expr:
    if isinstance(x, Expr):
        return x if x.dtype == dtype else cast(dtype, x)
    return const(x.item() if isinstance(x, np.generic) else x, dtype)


def _fold(op: str, a: Expr, b: Expr, dtype: str) -> Expr | None:
    """Fold constants and the identities index arithmetic produces (x + 0, x * 1)."""
    if isinstance(a, Const) and isinstance(b, Const):
        if op in ("floordiv", "mod") and b.value == 0:
            return None
        with np.errstate(all="ignore"):
            value = _UFUNCS[op](np.array(a.value, a.dtype), np.array(b.value, b.dtype))
        return Const(np.asarray(value).astype(dtype).item(), dtype)
    if not dtypes.is_int(dtype):
        return None
    if op in ("add", "sub") and isinstance(b, Const) and b.value == 0:
        return a
    if op == "add" and isinstance(a, Const) and a.value == 0:
        return b
    if op == "mul" and isinstance(b, Const) and b.value == 1:
        return a
    if op == "mul" and isinstance(a, Const) and a.value == 1:
        return b
    if op == "floordiv" and isinstance(b, Const) and b.value == 1:
        return a
    return None


def unary(op: str, value: object) -> Expr:
    e = as_expr(value)
    if op == "neg":
        if dtypes.is_bool(e.dtype):
            raise TdslTypeError(f"cannot negate the boolean `{e}`; use ~ for logical not")
        if isinstance(e, Const):
            with np.errstate(all="ignore"):
                return Const(np.negative(np.array(e.value, e.dtype)).item(), e.dtype)
        return UnaryOp("neg", e, e.dtype)
    if op == "invert":
        if dtypes.is_float(e.dtype):
            raise TdslTypeError(f"~ needs a boolean or integer; `{e}` is {e.dtype}")
        return UnaryOp("invert", e, e.dtype)
    raise AssertionError(op)


# Intrinsics: name -> the NumPy ufunc whose typing they follow.
UNARY_INTRINSICS = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh,
    "sigmoid": np.exp, "floor": np.floor, "ceil": np.ceil, "sin": np.sin, "cos": np.cos,
    "log2": np.log2, "exp2": np.exp2, "round": np.rint, "trunc": np.trunc,
}


def call(name: str, *args: object) -> Expr:
    """An intrinsic call, typed as NumPy types the matching ufunc."""
    if name in UNARY_INTRINSICS:
        (arg,) = args
        e = as_expr(arg, f"td.{name}'s argument")
        if dtypes.is_bool(e.dtype) and name != "abs":
            raise TdslTypeError(f"td.{name} of the boolean `{e}`; convert it with .astype first")
        result = dtypes.unary_result(UNARY_INTRINSICS[name], e.dtype)
        if name in ("floor", "ceil", "round", "trunc", "abs") and result == e.dtype \
                and not dtypes.is_float(e.dtype) and name != "abs":
            return e
        return Call(name, (_coerce(e, result),), result)
    if name in ("power", "max", "min"):
        a, b = args
        return binary(name, a, b)
    raise TdslValueError(f"unknown intrinsic {name!r}")


def cast(dtype: object, value: object) -> Expr:
    """`value` converted to `dtype` (C conversion; floats to ints truncate toward zero)."""
    name = dtypes.as_dtype(dtype)
    e = as_expr(value, "the value to cast")
    if e.dtype == name:
        return e
    if isinstance(e, Const):
        with np.errstate(all="ignore"):
            return Const(np.array(e.value, e.dtype).astype(name).item(), name)
    return Cast(name, e)


def select(cond: object, true_value: object, false_value: object) -> Expr:
    """`true_value` where `cond` holds, else `false_value` (NumPy's `where`)."""
    c = as_expr(cond, "td.select's condition")
    if c.dtype != "bool":
        raise TdslTypeError(f"td.select's condition must be boolean; `{c}` is {c.dtype}")
    if not isinstance(true_value, Expr) and not isinstance(false_value, Expr):
        dtype = dtypes.promote(dtypes.scalar_dtype(true_value), dtypes.scalar_dtype(false_value))
    else:
        dtype = _numpy_result("add", _operand_type(true_value), _operand_type(false_value)) \
            if not (_operand_type(true_value) == _operand_type(false_value) == "bool") else "bool"
    return Select(c, _coerce(true_value, dtype), _coerce(false_value, dtype))


def all_of(*conds: object) -> Expr:
    """The conjunction of boolean expressions (`td.all`)."""
    return _fold_logic("and", conds, "td.all")


def any_of(*conds: object) -> Expr:
    """The disjunction of boolean expressions (`td.any`)."""
    return _fold_logic("or", conds, "td.any")


def _fold_logic(op: str, conds: tuple, what: str) -> Expr:
    if len(conds) == 1 and isinstance(conds[0], (list, tuple)):
        conds = tuple(conds[0])
    if not conds:
        raise TdslValueError(f"{what}() needs at least one condition")
    exprs = [as_expr(c, f"{what}'s argument") for c in conds]
    for e in exprs:
        if e.dtype != "bool":
            raise TdslTypeError(f"{what} takes boolean conditions; `{e}` is {e.dtype}")
    return functools.reduce(lambda x, y: binary(op, x, y), exprs)


def index_expr(value: object, what: str) -> Expr:
    """An integer expression usable as an index or a size."""
    if isinstance(value, Expr):
        if not dtypes.is_int(value.dtype):
            raise TdslTypeError(f"{what} must be an integer expression; `{value}` is {value.dtype}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TdslTypeError(f"{what} must be an integer or an integer expression; got {value!r}")
    return Const(int(value), dtypes.INDEX)

