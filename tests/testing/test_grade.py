"""td.testing.grade: full marks for a good kernel, and for each kind of mistake the
points it loses and a message that says what to do."""

import pytest

import tdsl as td

RAGGED = [{"n": 13, "l": 7, "m": 37}, {"n": 1, "l": 3, "m": 2}]
AT = {"n": 128, "l": 128, "m": 128}


def _matmul(scale=1.0, schedule=None):
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j] * scale, axis=k), name="C")
    s = td.create_schedule(C)
    if schedule is not None:
        schedule(s, C, k)
    return s, [A, B, C]


def _tiled(s, C, k):
    td.examples.register_tile(s, C, 4, 16)


GRADE = dict(expected=lambda a, b: a @ b, sizes=RAGGED, counts_sizes=AT,
             max_traffic=3 << 20, min_vector_fraction=0.9, min_parallel_fraction=0.9)


def test_a_good_kernel_gets_full_marks():
    g = td.testing.grade(lambda: _matmul(schedule=_tiled), **GRADE)
    assert g.passed and g.points == g.max_points == 6
    assert [c.name for c in g.checks] == ["legal", "correct", "traffic", "vector", "parallel"]
    assert g["correct"].message == "matches at all 2 sizes"
    assert g.as_dict()["points"] == 6 and "6 / 6 points" in str(g)


def test_a_wrong_algorithm_loses_the_correctness_points():
    g = td.testing.grade(lambda: _matmul(scale=1.01, schedule=_tiled), **GRADE)
    assert g["correct"].points == 0 and g["legal"].passed and g["vector"].passed
    assert g["correct"].message.startswith("wrong at 2 of 2 sizes; at n=13, l=7, m=37, C "
                                           "differs from the expected result at ")


def test_an_illegal_schedule_gets_the_lesson_and_nothing_else():
    def make():
        s, args = _matmul()
        s[args[2]].parallel(args[2].op.reduce_axis[0])
        return s, args
    g = td.testing.grade(make, **GRADE)
    assert g.points == 0 and "s[C].parallel(k) is illegal" in g["legal"].message
    assert "rfactor C over k" in g["legal"].message
    assert g["traffic"].message == "not checked: the kernel does not build (see legal)"


def test_an_untiled_scalar_kernel_loses_the_count_points_with_advice():
    g = td.testing.grade(lambda: _matmul(), **GRADE)
    assert g.points == 3 and g["correct"].passed
    assert "most of it is B" in g["traffic"].message and "tile the loops" in g["traffic"].message
    assert g["vector"].message.startswith("0% of the statement instances run in vectorized "
                                          "loops at n=128, l=128, m=128, fewer than 90%; "
                                          "vectorize the innermost loop (unit stride) of "
                                          "C_update (2,097,152)")
    assert "make an outer loop parallel" in g["parallel"].message


def test_partial_credit_per_size_and_flops_bound():
    calls = []

    def expected(a, b):               # right at the first size only
        calls.append(a.shape)
        return a @ b if len(calls) == 1 else a @ b + 1
    g = td.testing.grade(lambda: _matmul(), expected=expected, sizes=RAGGED,
                         counts_sizes={"n": 4, "l": 4, "m": 4}, max_flops=100,
                         points={"correct": 4})
    assert g["correct"].points == 2 and g["correct"].max_points == 4
    assert "wrong at 1 of 2 sizes; at n=1, l=3, m=2" in g["correct"].message
    # A[i, k] * B[k, j] * 1.0 is two multiplies and the add: 3 x 4^3
    assert g["flops"].message.startswith("192 operations at n=4, l=4, m=4, more than 100")


def test_sizes_must_be_sizes_of_the_kernel():
    with pytest.raises(td.TdslError, match="the size q is not a size of the kernel"):
        td.testing.grade(lambda: _matmul(), sizes=[{"q": 3}])
    with pytest.raises(td.TdslValueError, match="missing n, l, m"):   # counts_sizes forgotten
        td.testing.grade(lambda: _matmul(), min_vector_fraction=0.5)
    with pytest.raises(KeyError, match="no check 'vector'"):
        td.testing.grade(lambda: _matmul(), sizes=[{"n": 2, "l": 2, "m": 2}])["vector"]
