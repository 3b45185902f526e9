"""The graph compiler: `td.compile` turns a network of tdsl stages into one C library.

    check.py      td.compile's arguments checked
    rewrite.py    stage DAGs rebuilt with reads redirected (cutting, renaming)
    fold.py       constant folding over the weights; batch_norm into conv
    patterns.py   each stage's fusion pattern (elementwise ... out_fusable, opaque)
    cost.py       recompute or materialize, by counts of the work
    fuse.py       the partition into kernels
    plan.py       memory planning by liveness
    network.py    `Network`: call, print, export
    compile.py    the pipeline
"""

from .compile import Task, compile, tasks  # noqa: A004
from .network import Network

__all__ = ["compile", "tasks", "Task", "Network"]
