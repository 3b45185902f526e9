"""Write the course's nbgrader source notebooks (course/source/*/*.ipynb) from their cells
in course/cells/.

The notebooks are generated, so that their prose, solutions and tests are reviewed as
Python: edit course/cells/<name>.py, never the .ipynb, and regenerate:

    python course/make_assignments.py              # rewrite every source notebook
    python course/make_assignments.py --release    # also the students' versions, with
                                                   # nbgrader generate_assignment, into
                                                   # course/release/ (ignored by git)

course/ is an nbgrader course directory (course/nbgrader_config.py): an instructor
runs nbgrader there as usual (generate_assignment, collect, autograde, generate_feedback).
tests/course/test_course.py generates the students' versions in a temporary copy,
autogrades the instructor's solutions (full marks) and one wrong submission per
assignment, and checks that the committed notebooks are what this script writes.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import subprocess
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# assignment -> (notebook name, module of course/cells holding its CELLS)
ASSIGNMENTS = {
    "a1_operators": ("operators", "operators"),
    "a2_schedules": ("schedules", "schedules"),
    "a3_training": ("training", "training"),
}


def make(assignment: str) -> nbformat.NotebookNode:
    """The source notebook of `assignment` (a key of ASSIGNMENTS), without outputs."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    notebook, module_name = ASSIGNMENTS[assignment]
    module = importlib.import_module(f"cells.{module_name}")
    nb = nbformat.v4.new_notebook()
    nb.cells = copy.deepcopy(module.CELLS)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for k, cell in enumerate(nb.cells):          # stable ids: regenerating changes nothing
        cell["id"] = f"{assignment[:2]}-{k:02d}"
        meta = cell.metadata.get("nbgrader")
        if meta is not None and meta["grade_id"] is None:
            meta["grade_id"] = f"{notebook}-cell-{k:02d}"
    nbformat.validate(nb)
    return nb


def path_of(assignment: str, root: Path = HERE) -> Path:
    notebook, _ = ASSIGNMENTS[assignment]
    return root / "source" / assignment / f"{notebook}.ipynb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", action="store_true",
                        help="also run nbgrader generate_assignment for each assignment")
    opts = parser.parse_args(argv)
    for assignment in ASSIGNMENTS:
        nb = make(assignment)
        path = path_of(assignment)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(nb.cells)} cells)", flush=True)
        if opts.release:
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment,
                            "--force"], cwd=HERE, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
