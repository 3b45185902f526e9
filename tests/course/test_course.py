"""The course's assignments go through nbgrader as a course would use them: the committed
source notebooks are what course/make_assignments.py writes; `nbgrader
generate_assignment` makes the students' versions (solutions and hidden tests removed);
`nbgrader autograde` gives the instructor's solutions full marks, and one wrong
submission per assignment loses the points of its mistake with a message that says
what is wrong.

Each assignment runs in a temporary course directory with its own gradebook. The
notebooks' kernels are this Python with this checkout's tdsl first on PYTHONPATH. The
three autograde runs (marked slow) take about 3 minutes together on two busy cores with
a cold kernel cache, 50-60 s each: every notebook runs twice (the solutions, the wrong
submission), and nbgrader starts a kernel per notebook.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader", reason="the course tests need nbgrader (pip install .[course])")
pytest.importorskip("sklearn", reason="assignment 3 trains on scikit-learn's digits")

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "course"


def _generator():
    spec = importlib.util.spec_from_file_location("make_assignments",
                                                  COURSE / "make_assignments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ASSIGNMENTS = list(_generator().ASSIGNMENTS)

# One wrong submission per assignment: (the solution cell replaced, its wrong code,
# {autograder cell that must lose its points: words its message must contain}).
WRONG = {
    "a1_operators": ("matmul", '''
def matmul(A, B, transpose_a=False, transpose_b=False):
    n, l = dims(A)[::-1] if transpose_a else dims(A)
    m = dims(B)[0] if transpose_b else dims(B)[1]
    k = td.reduce_axis(l, name="k")
    a = (lambda i: A[k, i]) if transpose_a else (lambda i: A[i, k])
    return td.compute((n, m), lambda i, j: td.sum(a(i) * B[k, j], axis=k), name="C")
''', {"test_matmul": ["matmul(transpose_a=False, transpose_b=True)", "FAIL legal",
                        "reads or writes B out of bounds"]}),
    "a2_schedules": ("fast_matmul", '''
def fast_matmul():
    A, B, C = matmul_algorithm()
    s = td.create_schedule(C)
    i, j = C.op.axis
    (k,) = C.op.reduce_axis
    s[C].reorder(i, k, j)
    return s, [A, B, C]
''', {"test_matmul_traffic": ["into a 32 KiB cache at n=256, l=256, m=256, more than "
                                 "24.00 MiB; most of it is B"],
       "test_matmul_vector": ["0% of the statement instances run in vectorized loops",
                              "vectorize the innermost loop (unit stride) of C_update"],
       "test_matmul_parallel": ["make an outer loop parallel"]}),
    "a3_training": ("relu", '''
def relu(X):
    return td.compute(X.shape, lambda i, j: td.maximum(X[i, j], 0.0), name="relu")


def relu_grad(X, dY):
    return td.compute(X.shape, lambda i, j: td.select(X[i, j] > 0, 1.0, 0.0), name="relu_grad")
''', {"test_relu": ["relu_grad is wrong"]}),
}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_is_generated_and_stored_without_outputs(assignment):
    generator = _generator()
    path = generator.path_of(assignment)
    stored = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")
    fresh = generator.make(assignment)
    assert json.loads(nbformat.writes(fresh)) == json.loads(nbformat.writes(stored)), \
        f"{path.name} differs from course/cells; run python course/make_assignments.py"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in stored.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "nbgrader needs a unique grade_id per cell"


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` (its gradebook's migrations) from PATH: this Python's bin
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _submit(course: Path, assignment: str, student: str, nb) -> None:
    target = course / "submitted" / student / assignment / _generator().path_of(assignment).name
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_release_and_autograde(tmp_path, assignment):
    from nbgrader.api import Gradebook
    generator = _generator()
    course = tmp_path / "course"
    source = generator.path_of(assignment, course)
    source.parent.mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", course)
    shutil.copy(generator.path_of(assignment), source)

    _nbgrader(course, "generate_assignment", assignment, "--force")
    released = (course / "release" / assignment / source.name).read_text()
    assert "### BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
    assert "BEGIN HIDDEN TESTS" not in released

    solutions = nbformat.read(source, as_version=4)
    _submit(course, assignment, "instructor", solutions)
    cell_id, wrong_code, failing = WRONG[assignment]
    wrong = nbformat.read(source, as_version=4)
    (cell,) = [c for c in wrong.cells if c.metadata.get("nbgrader", {}).get("grade_id") ==
               cell_id]
    cell.source = wrong_code.strip("\n")
    _submit(course, assignment, "wrong", wrong)
    _nbgrader(course, "autograde", assignment, "--create", "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        full = gb.find_submission(assignment, "instructor")
        assert full.max_score > 0 and full.score == full.max_score, \
            f"the instructor's solutions got {full.score} of {full.max_score}"
        lost = 0.0
        for grade_id in failing:
            grade = gb.find_grade(grade_id, source.stem, assignment, "wrong")
            assert grade.score == 0 and grade.max_score > 0, f"{grade_id} kept its points"
            lost += grade.max_score
        kept = gb.find_submission(assignment, "wrong")
        assert kept.score == full.max_score - lost, \
            "the wrong submission lost points beyond its mistake"

    graded = nbformat.read(course / "autograded" / "wrong" / assignment / source.name, 4)
    for grade_id, words in failing.items():
        (test_cell,) = [c for c in graded.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
        errors = [o for o in test_cell.outputs if o.output_type == "error"]
        assert errors, f"{grade_id} did not fail"
        message = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0].traceback))  # no colors
        for word in words:
            assert word in message, f"{grade_id}: {word!r} not in the message:\n{message}"
