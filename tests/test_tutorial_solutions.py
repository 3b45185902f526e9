"""The tutorials' exercises are checked: every notebook whose last cell has a "Try it"
has a solution in tutorials/solutions/ named after it, and every solution runs to the
end (each one asserts its answers: counts from td.poly, td.testing.assert_equivalent,
values against NumPy). Each takes a few seconds; 05 runs CUDA on the CPU emulator."""

from __future__ import annotations

import importlib.util
import runpy
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SOLUTIONS = sorted((TUTORIALS / "solutions").glob("*.py"))


def _notebooks() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  TUTORIALS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NOTEBOOKS


def test_every_try_it_has_a_solution():
    names = {p.stem for p in SOLUTIONS}
    for notebook, cells in _notebooks().items():
        source = (TUTORIALS / "cells" / f"{cells}.py").read_text()
        if "**Try it.**" in source:
            assert notebook in names, f"{notebook} has a Try it but no tutorials/solutions/" \
                                      f"{notebook}.py"
            assert f"tutorials/solutions/{notebook}.py" in source, \
                f"{notebook}: the Try it should name its solution file"
    assert names <= set(_notebooks()), names - set(_notebooks())


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs(path, capsys):
    runpy.run_path(str(path), run_name="solution")
    assert capsys.readouterr().out.strip()         # each says what it checked
