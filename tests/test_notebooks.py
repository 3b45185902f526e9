"""The tutorials run: every tutorials/*.ipynb executes top to bottom without an error,
and the committed notebooks are exactly what tutorials/make_notebooks.py writes (no
outputs, no hand edits that the generator would lose).

Each notebook runs in a fresh kernel of this Python (a kernelspec written for
sys.executable, so it does not depend on which `python` is first on PATH) with the
session's private kernel cache (conftest.py), i.e. with cold compiles, as in CI. Each
takes seconds to tens of seconds on two cores; a cell may take at most 300 s.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel")
pytest.importorskip("matplotlib", reason="the notebooks draw with matplotlib")

from nbclient.exceptions import CellExecutionError  # noqa: E402

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
# "01_x", "01b_y", "02_z", ...: two digits, an optional letter (a lesson inserted between
# two numbers), an underscore
NOTEBOOKS = sorted(p for p in TUTORIALS.glob("[0-9][0-9]*_*.ipynb")
                   if p.stem.split("_")[0][2:] in ("",) + tuple("abcdefgh"))
CELL_TIMEOUT_S = 300


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  TUTORIALS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_is_listed():
    names = [p.stem for p in NOTEBOOKS]
    assert names == list(_generator().NOTEBOOKS), names
    readme = (TUTORIALS / "README.md").read_text()
    assert all(f"{name}.ipynb" in readme for name in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_generated_and_stored_without_outputs(path):
    stored = nbformat.read(path, as_version=4)
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name}: stored with outputs; run python tutorials/make_notebooks.py"
    fresh = _generator().make(path.stem)
    assert json.loads(nbformat.writes(fresh)) == json.loads(nbformat.writes(stored)), \
        f"{path.name} differs from tutorials/cells; run python tutorials/make_notebooks.py"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] *
                                               (p.stem == "07_auto_tuning")) for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        _generator().execute(nb, timeout=CELL_TIMEOUT_S)
    except CellExecutionError as e:          # it carries the failing cell and its traceback
        pytest.fail(f"{path.name} failed:\n{e}", pytrace=False)
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    print(f"{path.name}: {elapsed:.1f} s")


# The notebooks whose shapes and prose follow the CPU's vectors (lanes, registers), run
# once more for each other x86-64 level this CPU can execute: an AVX-512 machine also
# runs them as AVX2 code (TDSL_TARGET, which td.target() and td.build read), so both
# sets of numbers in the text are exercised. A level with the same vectors as the
# default target is what test_notebook_runs already covered.
TARGET_DEPENDENT = ("01b_primitives", "02_scheduling_matmul", "03_legality", "06_dl_layer")
TARGETS = ("c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4")


@pytest.mark.parametrize("target", TARGETS, ids=["avx2", "avx512"])
@pytest.mark.parametrize("name", TARGET_DEPENDENT)
def test_notebook_runs_for_each_vector_width(name, target, monkeypatch):
    import tdsl as td
    wanted, default = td.target(target), td.target()
    if not wanted.runs_here():
        pytest.skip(f"this CPU cannot run {target}")
    if (wanted.vector_bytes, wanted.vector_registers) == (default.vector_bytes,
                                                           default.vector_registers):
        pytest.skip(f"{target} has the default target's vectors: test_notebook_runs ran it")
    monkeypatch.setenv("TDSL_TARGET", target)
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    try:
        _generator().execute(nb, timeout=CELL_TIMEOUT_S)
    except CellExecutionError as e:
        pytest.fail(f"{name} for {target} failed:\n{e}", pytrace=False)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert wanted.describe() in text, "the notebook should say which target it ran for"
