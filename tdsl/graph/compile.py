"""`td.compile`: a network of tdsl stages (or an ONNX model) -> one C library.

The pipeline, one step per module:

    check_graph        check.py     inputs, params, shapes: every mistake named
    distinct_names     rewrite.py   two `relu`s become relu and relu_1
    fold               fold.py      weight-only stages evaluated, batch_norm into conv
    block_convolutions layout.py    convolutions in blocks of output channels, their
                                    weights packed once
    pack_panels        panels.py    a matrix product's constant right operand packed
                                    in register-tile panels once
    partition          fuse.py      stages -> kernels (patterns.py, cost.py)
    _kernel            (here)       each kernel cut out as its own stage DAG, scheduled
                                    (td.apply_best from `log`, else td.auto_schedule),
                                    lowered and rendered (cached by its fingerprint)
    plan_memory        plan.py      intermediates placed in one arena by liveness
    network_source     backends/c/network.py   one C file: kernels, weights, entry point

A network compiled before (same graph, weights, target, compiler) is found in the cache
by a key computed before any of these steps, and loaded in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import cache
from ..errors import TdslError, TdslValueError
from ..lang.graph import topo_order
from ..lang.names import unique_name
from ..lang.tensor import PlaceholderOp, Tensor, placeholder
from ..runtime.library import Library, manifest
from ..runtime.network import NetworkModule
from ..runtime.signature import Signature
from ..target import target as parse_target
from .check import check_graph
from .fold import Folded, FoldResult, fold
from .layout import block_convolutions
from .panels import pack_panels
from .fuse import Group, partition
from .network import KernelInfo, Network, plan_from_json, plan_to_json
from .patterns import work
from .plan import nbytes, plan_memory
from .rewrite import distinct_names, rebuild


def compile(model, inputs=None, params=None, target="c", *, name: str = "network",
            log=None) -> Network:
    """Compile a network into one C library and load it.

    `model` is a list of output tensors (with `inputs`, the placeholders fed at each
    call, and `params`, {placeholder: array} of weights embedded in the library), or an
    ONNX model (a path or an `onnx.ModelProto`), whose inputs and weights come from it.
    `log` is a `td.tune` log: kernels with a record there get their tuned schedule.

    >>> net = td.compile([y], inputs=[x], params={w: w_array}, target="c")
    >>> out = net(x_array)
    """
    start = time.perf_counter()
    if isinstance(model, (str, os.PathLike)) or type(model).__name__ == "ModelProto":
        if inputs is not None or params is not None:
            raise TdslValueError("td.compile(model): an ONNX model brings its own inputs and "
                                 "weights; pass neither inputs= nor params=")
        from ..frontends.onnx import import_model
        model, inputs, params = import_model(model)
    outputs, inputs, params = check_graph(model, inputs, params)
    t = parse_target(target)
    if t.kind != "c":
        raise TdslValueError(f"td.compile builds networks for the C target; got {t}")
    if not isinstance(name, str) or not name.isidentifier():
        raise TdslValueError(f"a network name must be a C identifier; got {name!r}")
    key = _key(outputs, inputs, params, t, name, log)
    found = _recall(key, start)
    if found is not None:
        return found
    outputs, params, folding, parts = _fuse(outputs, inputs, params, t)
    kernels = _kernels(name, parts.groups, t, log)
    record = _assemble(name, kernels, inputs, outputs, params, folding.folded,
                       [str(c) for c in parts.choices], t)
    cache.store(key, "c-network", lambda tmp: _write_json(tmp, record))
    return _network(record, time.perf_counter() - start, cached=False)


def _fuse(outputs, inputs, params, target):
    """Names apart, weights folded, convolutions' weights in channel blocks, stages
    partitioned into kernels."""
    renamed = distinct_names(outputs, keep=inputs)
    outputs = [renamed[o] for o in outputs]
    params = {renamed[p]: v for p, v in params.items() if p in renamed}
    folding = fold(outputs, params)
    folded = list(folding.folded)
    outputs, params = block_convolutions(list(folding.outputs), folding.params, folded,
                                         target)
    outputs, params = pack_panels(outputs, params, folded, target)
    folding = FoldResult(tuple(outputs), params, tuple(folded))
    return outputs, params, folding, partition(outputs, topo_order(outputs))


@dataclass(frozen=True)
class Task:
    """One kernel of a network as `td.tune` takes it (Ansor's task extraction)."""

    name: str
    outputs: tuple[Tensor, ...]
    args: tuple[Tensor, ...]
    work: int                        # points of its iteration domains


def tasks(outputs, inputs, params=None, *, name: str = "network",
          target="c") -> list[Task]:
    """The kernels `td.compile` would build for this network, cut out and ready to tune;
    a log with their records makes `td.compile(..., log=log)` use the tuned schedules.

    >>> for task in td.graph.tasks([y], [x], params):
    ...     td.tune(task.outputs, task.args, trials=64, log="net.jsonl")
    >>> net = td.compile([y], inputs=[x], params=params, log="net.jsonl")
    """
    outputs, inputs, params = check_graph(outputs, inputs, params)
    outputs, params, _, parts = _fuse(outputs, inputs, params, parse_target(target))
    taken: set[str] = set()
    found = []
    for g in parts.groups:
        outs, args = cut(g)
        found.append(Task(unique_name(f"{name}_{g.anchor.name}", taken), tuple(outs),
                          tuple(args), sum(work(op) for op in g.ops)))
    return found


def cut(group: Group) -> tuple[list[Tensor], list[Tensor]]:
    """The kernel's own stage DAG: (outputs, args), the tensors it reads from other
    kernels replaced by placeholders of the same name."""
    replaced = {t: placeholder(t.shape, t.dtype, t.name) for t in group.inputs
                if not isinstance(t.op, PlaceholderOp)}
    new = rebuild(group.outputs, replaced)
    outs = [new[t] for t in group.outputs]
    return outs, [replaced.get(t, t) for t in group.inputs] + outs


@dataclass(frozen=True)
class _Built:
    info: KernelInfo
    function: str                    # C text
    buffers: tuple[Tensor, ...]      # the kernel's arguments in the network's tensors


def _kernels(net: str, groups, target, log) -> list[_Built]:
    """Every kernel, scheduled and lowered in worker processes when there are several
    CPUs (isl holds the GIL: threads would not help); `TDSL_COMPILE_JOBS` caps them."""
    taken: set[str] = set()
    names = [unique_name(f"{net}_{g.anchor.name}", taken) for g in groups]
    jobs = min(len(groups), _cpus())
    if jobs > 1:
        global _PENDING
        with _FORKING:           # one compile at a time hands its graph to the workers
            _PENDING = (groups, names, target, log)
            done = _in_workers(jobs, len(groups))
            _PENDING = None
        if done is not None:
            return [_Built(info, function, tuple(g.inputs) + tuple(g.outputs))
                    for g, (info, function) in zip(groups, done)]
    return [_kernel(n, g, target, log) for n, g in zip(names, groups)]


def _in_workers(jobs: int, count: int):
    """[(info, function)] of kernels 0..count-1 from `jobs` forked workers; None if the
    workers could not do it (no fork here, a daemon process, an error in a kernel: the
    serial path then does it again and raises the error as it is)."""
    import concurrent.futures
    import multiprocessing
    try:
        # fork: the workers inherit the graph instead of unpickling it
        with concurrent.futures.ProcessPoolExecutor(
                jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_kernel_in_worker, range(count)))
    except Exception:  # noqa: BLE001 - see the docstring
        return None


_PENDING = None       # (groups, names, target, log) for the forked workers
_FORKING = threading.Lock()


def _kernel_in_worker(k: int):
    groups, names, target, log = _PENDING
    built = _kernel(names[k], groups[k], target, log)
    return built.info, built.function


def _cpus() -> int:
    limit = os.environ.get("TDSL_COMPILE_JOBS")
    if limit is not None:
        return max(int(limit), 1)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _kernel(fname: str, group: Group, target, log) -> _Built:
    """One kernel: cut out, scheduled, lowered and rendered."""
    from ..backends.c.render import render_function
    from ..schedule import lower
    from ..schedule.fingerprint import fingerprint
    outs, args = cut(group)
    schedule, tuned = _schedule(outs, args, target, log)
    key = cache.digest("c-function", fingerprint(schedule.data, args, fname, str(target)))
    entry = cache.lookup(key, "c-function")
    if entry is None:
        text = render_function(lower(schedule, args, fname).kernel, target)
        entry = cache.store(key, "c-function", lambda tmp: _write(tmp, "function.c", text))
    function = (entry / "function.c").read_text()
    info = KernelInfo(fname, tuple(op.name for op in group.ops),
                      tuple(str(p) for p in group.patterns), schedule.script(), tuned,
                      tuple(t.name for t in group.inputs), tuple(t.name for t in group.outputs),
                      sum(work(op) for op in group.ops))
    return _Built(info, function, tuple(group.inputs) + tuple(group.outputs))


def _schedule(outputs, args, target, log):
    """(schedule, tuned): the log's best record for this kernel, else the rules'."""
    if log is not None and Path(log).exists():
        from ..tuning import apply_best
        try:
            return apply_best(log, outputs, args, target=target), True
        except TdslError:
            pass                            # no record for this kernel
    from ..auto import auto_schedule
    return auto_schedule(outputs, target), False


def _assemble(name, kernels: list[_Built], inputs, outputs, params, folded, choices,
              target) -> dict:
    """Plan memory, write the library's C, build it: the record the cache keeps."""
    from ..backends.c.network import Call, build_network, network_source, weights_file
    sig = Signature.from_tensors(name, list(inputs) + list(outputs), outputs, [])
    network_args = {t.name for t in (*inputs, *outputs)}
    constants_used = [p for p in params if any(p == b for k in kernels for b in k.buffers)]
    weights, constants = weights_file([(p.name, params[p]) for p in constants_used],
                                      f"{name}_tdsl_w")
    dtypes = {b.name: b.dtype for k in kernels for b in k.buffers}
    lives: dict[str, list[int]] = {}
    for k, built in enumerate(kernels):
        for b in built.buffers:
            if b.name not in network_args and not any(p == b for p in params):
                lives.setdefault(b.name, []).append(k)
    sizes = {b.name: nbytes([d.value for d in b.shape], b.dtype)
             for k in kernels for b in k.buffers}
    plan = plan_memory([(n, sizes[n], min(ks), max(ks)) for n, ks in lives.items()])
    calls = [Call(k.function, k.info.name, tuple(b.name for b in k.buffers)) for k in kernels]
    m = manifest([sig], [k.info.name for k in kernels], [c.to_json() for c in constants])
    m["network"] = {"name": name, "inputs": [t.name for t in inputs],
                    "outputs": [t.name for t in outputs]}
    source = network_source(sig, calls, constants, weights,
                            {s.name: s.offset for s in plan.slots}, plan.peak, dtypes, m,
                            target.vector_bytes)
    path = build_network(source, target)
    return {"library": str(path), "kernels": [k.info.to_json() for k in kernels],
            "plan": plan_to_json(plan), "folded": [f.__dict__ for f in folded],
            "choices": choices, "constants": [c.name for c in constants]}


def _network(record: dict, seconds: float, cached: bool) -> Network:
    library = Library(Path(record["library"]), "the network's library", require_cpu=False)
    module = NetworkModule(None, None, None, "c", library=library,
                           extra={"library_path": Path(record["library"])})
    folded = tuple(Folded(f["what"], tuple(f["stages"]), f["into"]) for f in record["folded"])
    return Network(module, tuple(KernelInfo.from_json(k) for k in record["kernels"]),
                   plan_from_json(record["plan"]), folded, tuple(record["choices"]),
                   tuple(record["constants"]), seconds, cached)


def _key(outputs, inputs, params, target, name, log) -> str:
    """Everything the library depends on, computed before any compilation step."""
    from ..backends.c.build import toolchain_identity
    from ..schedule.fingerprint import graph_text
    order = topo_order(outputs)
    h = hashlib.sha256()
    for part in (graph_text(order), str(target), name, toolchain_identity(target),
                 "inputs " + ",".join(t.name for t in inputs),
                 "outputs " + ",".join(t.name for t in outputs)):
        h.update(part.encode() + b"\0")
    for op in order:
        t = op.output(0)
        if t in params:
            h.update(f"param {t.name}".encode())
            h.update(hashlib.sha256(memoryview(params[t]).cast("B")).digest())
    if log is not None and Path(log).exists():
        h.update(hashlib.sha256(Path(log).read_bytes()).digest())
    return h.hexdigest()[:40]


def _recall(key: str, start: float) -> Network | None:
    entry = cache.lookup(key, "c-network")
    if entry is None:
        return None
    record = json.loads((entry / "network.json").read_text())
    library = Path(record["library"])
    if cache.lookup(library.parent.name, "c") is None:          # evicted or corrupt
        return None
    try:
        return _network(record, time.perf_counter() - start, cached=True)
    except TdslError:
        return None


def _write_json(tmp: Path, record: dict) -> list[str]:
    return _write(tmp, "network.json", json.dumps(record))


def _write(tmp: Path, name: str, text: str) -> list[str]:
    (tmp / name).write_text(text)
    return [name]
