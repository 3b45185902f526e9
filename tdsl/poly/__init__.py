"""The polyhedral layer: the only package that imports islpy.

It turns a `Program` (statements, arrays, a loop tree) into isl objects
(`Model`), computes dependences, checks legality with concrete witnesses,
generates loops through isl's AST generator and translates them into tdsl's IR.
"""

from .bounds import isl_lessons
from .codegen import generate_ast
from .deps import Dependence, compute_dependences
from .legality import Violation, carried, order_violations
from .model import Model
from .program import Array, Loop, Program, Statement
from .teach import (accesses, count, dependences, domains, explain, order, pairs, points,
                    schedule_map, schedule_tree)
from .to_ir import translate

__all__ = [
    # teaching: what a schedule looks like to isl
    "accesses", "count", "dependences", "domains", "explain", "order", "pairs", "points",
    "schedule_map",
    # the layer itself
    "Array", "Dependence", "Loop", "Model", "Program", "Statement", "Violation", "carried",
    "compute_dependences", "generate_ast", "isl_lessons", "order_violations", "schedule_tree",
    "translate",
]
