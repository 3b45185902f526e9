"""The cells of the course's nbgrader assignments, one module per notebook (`CELLS`).

Like tutorials/cells: `md(...)` is a markdown cell and `code(...)` a read-only code cell
the students run; `solution(..., grade_id)` is a cell whose `### BEGIN SOLUTION` /
`### END SOLUTION` region nbgrader replaces by `raise NotImplementedError()` in the
students' copy; `tests(..., grade_id, points)` is an autograder cell worth `points`
(its `### BEGIN HIDDEN TESTS` region is removed from the students' copy and put back
when grading). The metadata is nbgrader's cell schema, version 3.
"""

from __future__ import annotations

import textwrap

import nbformat


def _nbgrader(grade_id: str | None, *, grade: bool = False, solution: bool = False,
              locked: bool = False, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _text(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def md(text: str):
    """A markdown cell (instructions)."""
    return nbformat.v4.new_markdown_cell(_text(text))


def code(text: str):
    """A read-only code cell the students run (setup, demonstrations); `make` names it."""
    cell = nbformat.v4.new_code_cell(_text(text))
    cell.metadata.update(_nbgrader(None, locked=True))
    return cell


def solution(text: str, grade_id: str):
    """A cell the students complete: the solution region becomes their exercise."""
    cell = nbformat.v4.new_code_cell(_text(text))
    cell.metadata.update(_nbgrader(grade_id, solution=True))
    return cell


def tests(text: str, grade_id: str, points: float):
    """An autograder cell: it passes (all points) when it runs without an error."""
    cell = nbformat.v4.new_code_cell(_text(text))
    cell.metadata.update(_nbgrader(grade_id, grade=True, locked=True, points=points))
    return cell
