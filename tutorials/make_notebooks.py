"""Write the tdsl tutorials (tutorials/*.ipynb) from their cells in tutorials/cells/.

The notebooks are generated, so that their prose and code are reviewed as Python:
edit tutorials/cells/<name>.py, never the .ipynb, and regenerate:

    python tutorials/make_notebooks.py              # rewrite every notebook, no outputs
    python tutorials/make_notebooks.py --run        # also execute each one, print its
                                                    # time, and keep the executed copy in
                                                    # tutorials/executed/ (ignored by git)
    python tutorials/make_notebooks.py --run 02 05  # only the notebooks named so

The notebooks follow shared/STYLE.md ("Notebooks"): one concept each; every step is a
few sentences of what and why, a few lines of code and an output that shows the effect;
errors are triggered on purpose inside `try/except td.ScheduleError as e: print(e)`;
each ends with a NumPy check and a small timing table and runs top to bottom in under
two minutes on two cores. tests/test_notebooks.py executes them and checks that the
committed files are what this script writes.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# notebook file name -> module of tutorials/cells holding its CELLS, in reading order.
# "01b" is the lesson on single primitives, read between 01 and 02; a letter instead of
# renumbering keeps every later notebook's number (and the "notebook 4" references
# between them) as they were.
NOTEBOOKS = {
    "01_getting_started": "getting_started",
    "01b_primitives": "primitives",
    "02_scheduling_matmul": "scheduling_matmul",
    "03_legality": "legality",
    "04_producers_consumers": "producers_consumers",
    "05_cuda": "cuda",
    "06_dl_layer": "dl_layer",
    "07_auto_tuning": "auto_tuning",
    "08_networks": "networks",
    "09_gradients": "gradients",
}


def make(name: str) -> nbformat.NotebookNode:
    """The notebook `name` (a key of NOTEBOOKS), without outputs."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    module = importlib.import_module(f"cells.{NOTEBOOKS[name]}")
    nb = nbformat.v4.new_notebook()
    nb.cells = copy.deepcopy(module.CELLS)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for k, cell in enumerate(nb.cells):          # stable ids: regenerating changes nothing
        cell["id"] = f"nb{name.split('_')[0]}-{k:02d}"
    nbformat.validate(nb)
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 300) -> nbformat.NotebookNode:
    """Run `nb` in place, in a fresh kernel of this very Python (not whatever `python` is
    first on PATH, which is what the usual python3 kernelspec runs)."""
    import nbclient
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    with tempfile.TemporaryDirectory() as specs:
        write_kernel_spec(str(Path(specs) / "python3"))     # argv[0] = sys.executable
        km = KernelManager(kernel_name="python3",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]))
        nbclient.NotebookClient(nb, km=km, timeout=timeout,
                                resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="execute the notebooks too")
    parser.add_argument("only", nargs="*", help="process only the notebooks whose name "
                        "contains one of these")
    opts = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not opts.only or any(o in n for o in opts.only)]
    for name in names:
        nb = make(name)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote tutorials/{name}.ipynb ({len(nb.cells)} cells)", flush=True)
        if opts.run:
            (HERE / "executed").mkdir(exist_ok=True)
            start = time.perf_counter()
            try:
                execute(nb)
            finally:                 # a failed run is kept too, to read the error in place
                nbformat.write(nb, HERE / "executed" / f"{name}.ipynb")
            print(f"  executed in {time.perf_counter() - start:.1f} s "
                  f"(tutorials/executed/{name}.ipynb)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
