"""The measurement worker: `python -m tdsl.tuning.worker <in fd> <out fd>`.

A fresh interpreter (not a fork of the tuner, which may hold threads; not a spawn of
the user's `__main__`, which need not be importable), reading length-prefixed pickled
messages from one pipe and writing results to another: first ("module:function", the
workload's checks), then one library per message, each answered by its result.
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import sys
import traceback

_HEADER = struct.Struct("<Q")


def write_message(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def read_message(fd: int):
    header = _read_exactly(fd, _HEADER.size)
    return pickle.loads(_read_exactly(fd, _HEADER.unpack(header)[0]))


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv) -> None:
    fd_in, fd_out = int(argv[1]), int(argv[2])
    function, (full, small) = read_message(fd_in)
    measure = resolve(function)
    while True:
        try:
            library = read_message(fd_in)
        except EOFError:
            return
        try:
            result = measure(library, full, small)
        except Exception as exc:                      # noqa: BLE001
            result = {"error": "measure error",
                      "detail": "".join(traceback.format_exception_only(exc)).strip()}
        write_message(fd_out, result)


if __name__ == "__main__":
    main(sys.argv)
