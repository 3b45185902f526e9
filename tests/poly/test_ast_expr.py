"""Loop bounds from isl's AST: `c <= e` becomes `c < e + 1`, folded."""

import pytest

import tdsl as td
from tdsl.lang.reference import evaluate_scalar
from tdsl.poly.ast_expr import plus_one


@pytest.mark.parametrize("make", [lambda n: n - 3, lambda n: n + 3, lambda n: n - 1,
                                  lambda n: td.minimum(n - 3, 7) + 0, lambda n: n * 2],
                         ids=["n-3", "n+3", "n-1", "min", "2n"])
def test_plus_one_adds_exactly_one(make):
    n = td.var("n")
    for value in (1, 5, 10):
        assert evaluate_scalar(plus_one(make(n)), {n: value}) == \
            evaluate_scalar(make(n), {n: value}) + 1
