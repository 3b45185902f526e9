"""What a caller must pass to a kernel: argument names, dtypes, roles and shapes over the
symbolic sizes, as plain data that round-trips through JSON (the manifest of an exported
library) and back to `tdsl.lang` tensors (for the checks' messages).

A size expression is JSON: an int is a constant, a string a symbolic size, a list
`[op, a, b]` a binary operation (`add`, `sub`, `mul`, `floordiv`, `mod`, `min`, `max`,
`truncdiv`, `truncmod`) and `["neg", a]` a negation, all on int64.

>>> Signature.from_tensors("kernel", [A, B, C], outputs=[C], sizes=[n, m]).to_json()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from ..errors import TdslValueError
from ..lang.expr import BinOp, Const, Expr, UnaryOp, Var, binary

SizeExpr = Union[int, str, list]
C_TYPES = {
    "bool": "bool", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
    "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
    "uint64": "uint64_t", "float16": "_Float16", "float32": "float", "float64": "double",
}
BINARY_OPS = ("add", "sub", "mul", "floordiv", "mod", "min", "max", "truncdiv", "truncmod")


@dataclass(frozen=True)
class Arg:
    name: str
    dtype: str
    shape: tuple            # one SizeExpr per dimension
    role: str               # "input" | "output"

    @property
    def is_output(self) -> bool:
        return self.role == "output"


@dataclass(frozen=True)
class Signature:
    """One entry point: its C symbol, its arguments in call order and the symbolic sizes
    (the order of the raw kernel's size parameters)."""

    name: str               # the raw kernel's C function
    args: tuple[Arg, ...]
    sizes: tuple[str, ...]

    @property
    def symbol(self) -> str:
        """The checked entry point (what Python and C programs call)."""
        return f"{self.name}_call"

    @staticmethod
    def from_tensors(name: str, tensors: Sequence, outputs: Sequence, sizes: Sequence[Var]):
        names = [v.name for v in sizes]
        for v in sizes:
            if names.count(v.name) > 1:
                raise TdslValueError(f"two different symbolic sizes are both named {v.name!r}; "
                                     "give each td.var a distinct name")
        args = tuple(Arg(t.name, t.dtype, tuple(to_size_json(d) for d in t.shape),
                         "output" if any(t is o for o in outputs) else "input")
                     for t in tensors)
        return Signature(name, args, tuple(names))

    def to_json(self) -> dict:
        return {"name": self.name, "symbol": self.symbol, "sizes": list(self.sizes),
                "args": [{"name": a.name, "dtype": a.dtype, "shape": list(a.shape),
                          "role": a.role} for a in self.args]}

    @staticmethod
    def from_json(data: dict) -> "Signature":
        args = tuple(Arg(a["name"], a["dtype"], tuple(a["shape"]), a["role"])
                     for a in data["args"])
        return Signature(data["name"], args, tuple(data["sizes"]))

    def tensors(self):
        """Placeholder tensors with these names, dtypes and shapes (the sizes as `td.var`s),
        and the tuple of those that are outputs."""
        from ..lang.tensor import placeholder
        variables = {name: Var(name) for name in self.sizes}
        tensors = tuple(placeholder(tuple(from_size_json(d, variables) for d in a.shape),
                                    a.dtype, a.name) for a in self.args)
        return tensors, tuple(t for t, a in zip(tensors, self.args) if a.is_output)


def to_size_json(e: Expr) -> SizeExpr:
    match e:
        case Const(value=v):
            return int(v)
        case Var(name=name):
            return name
        case BinOp(op=op, a=a, b=b) if op in BINARY_OPS:
            return [op, to_size_json(a), to_size_json(b)]
        case UnaryOp(op="neg", value=v):
            return ["neg", to_size_json(v)]
    raise TdslValueError(f"the size expression {e} cannot be checked at run time: shapes may "
                         "use + - * // % min max of symbolic sizes and integer constants")


def from_size_json(d: SizeExpr, variables: dict[str, Var]) -> Expr:
    if isinstance(d, bool):
        raise ValueError(f"bad size expression {d!r}")
    if isinstance(d, int):
        return Const(d, "int64")
    if isinstance(d, str):
        return variables[d]
    if isinstance(d, list) and len(d) == 2 and d[0] == "neg":
        return -from_size_json(d[1], variables)
    if isinstance(d, list) and len(d) == 3 and d[0] in BINARY_OPS:
        return binary(d[0], from_size_json(d[1], variables), from_size_json(d[2], variables))
    raise ValueError(f"bad size expression {d!r}")


def size_text(d: SizeExpr) -> str:
    """A size expression as text for messages and headers: `n`, `(H + 2)`, `min(a, b)`."""
    if isinstance(d, (int, str)):
        return str(d)
    if d[0] == "neg":
        return f"(-{size_text(d[1])})"
    symbol = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "mod": "%",
              "truncdiv": "/", "truncmod": "%"}.get(d[0])
    if symbol is None:
        return f"{d[0]}({size_text(d[1])}, {size_text(d[2])})"
    return f"({size_text(d[1])} {symbol} {size_text(d[2])})"


def shape_text(shape) -> str:
    return "(" + ", ".join(size_text(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
