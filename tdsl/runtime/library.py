"""The library format: one ELF shared object per Module or compiled network, its
manifest, the integrity trailer of an exported copy, and loading it with ctypes.

    [ ELF shared object                                   ]  kernels, `<name>_call` entries,
    [   ... const char* tdsl_manifest(void) -> JSON ...   ]  tdsl_manifest, (constants)
    [ trailer: ELF length (8, LE) | SHA-256 of the ELF (32) | b"TDSL-LIBRARY-V1\\0" ]

The manifest (JSON, compiled into the library, so a C program can read it too):

    {"format": "tdsl-library", "version": 1, "machine": "x86_64",
     "entries":   [{"name", "symbol", "sizes", "args": [{"name", "dtype", "shape", "role"}]}],
     "kernels":   ["kernel", ...],        # raw C functions inside
     "constants": [{"name", "symbol", "dtype", "shape"}, ...]}   # embedded data (networks)

Only the trailer is outside the ELF: loaders ignore bytes past the sections, and it lets
`td.load` reject a truncated or corrupt file before the dynamic loader maps it. Nothing
here imports isl, the schedule layer or a compiler.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import tempfile
import threading
from pathlib import Path

from .. import cache
from ..errors import TdslError
from .signature import C_TYPES, Signature, shape_text

FORMAT = "tdsl-library"
VERSION = 1
MAGIC = b"TDSL-LIBRARY-V1\0"
TRAILER = 8 + 32 + len(MAGIC)

_fork_survivor: int | None = None     # the thread that forked, in a forked child


def _after_fork_in_child() -> None:
    global _fork_survivor
    _fork_survivor = threading.get_ident()


os.register_at_fork(after_in_child=_after_fork_in_child)


def manifest(signatures: list[Signature], kernels: list[str], constants=()) -> dict:
    return {"format": FORMAT, "version": VERSION, "machine": platform.machine(),
            "entries": [s.to_json() for s in signatures], "kernels": list(kernels),
            "constants": list(constants)}


class Library:
    """A loaded tdsl library: the ctypes handle, its manifest, its entry points."""

    def __init__(self, path: Path, what: str = "library", require_cpu: bool = True):
        """Load the library at `path`. With `require_cpu=False` (a kernel just built for
        another target: `td.build(..., target="c -mcpu=x86-64-v4")` on an AVX2 machine) a
        CPU lacking its instruction sets is recorded in `lacking`, and every call of its
        entry points is refused with that reason; otherwise loading is refused."""
        self.path = Path(path)
        try:
            self.handle = ctypes.CDLL(_fresh_name(self.path))
        except OSError as exc:
            raise TdslError(f"{what} {self.path}: the dynamic loader refused it ({exc})") \
                from None
        try:
            read = self.handle.tdsl_manifest
        except AttributeError:
            raise TdslError(f"{what} {self.path} is a shared library but not a tdsl library "
                            "(it has no tdsl_manifest)") from None
        read.restype = ctypes.c_char_p
        read.argtypes = []
        try:
            self.manifest = json.loads(read().decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise TdslError(f"{what} {self.path}: its manifest is not valid JSON ({exc})") \
                from None
        self._validate(what)
        missing = self.handle.tdsl_cpu_missing
        missing.restype = ctypes.c_char_p
        lacking = missing()
        self.lacking = lacking.decode() if lacking else None
        if lacking and require_cpu:
            raise TdslError(f"{what} {self.path} was compiled for a CPU with "
                            f"{lacking.decode()}; this CPU lacks it (export it again on a "
                            "machine like this one)")
        if _fork_survivor is not None:        # loaded in a child: its parent's pool is stale
            adopt = self.handle.tdsl_adopt_fork
            adopt.argtypes = [ctypes.c_ulong]
            adopt(_fork_survivor)

    def _validate(self, what: str) -> None:
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise TdslError(f"{what} {self.path}: its manifest is not a {FORMAT} manifest")
        if m.get("version") != VERSION:
            raise TdslError(f"{what} {self.path} has format version {m.get('version')}; this "
                            f"tdsl reads version {VERSION}")
        if m.get("machine") != platform.machine():
            raise TdslError(f"{what} {self.path} was built for {m.get('machine')}; this "
                            f"machine is {platform.machine()}")
        try:
            self.signatures = [Signature.from_json(e) for e in m["entries"]]
        except (KeyError, TypeError) as exc:
            raise TdslError(f"{what} {self.path}: malformed entry in its manifest ({exc})") \
                from None
        if not self.signatures:
            raise TdslError(f"{what} {self.path} has no entry point")
        for s in self.signatures:
            if not hasattr(self.handle, s.symbol):
                raise TdslError(f"{what} {self.path}: the manifest names the entry {s.symbol}, "
                                "which the library does not define")

    def entry(self, name: str | None = None) -> tuple[Signature, int]:
        """The signature and the address of an entry point (the only one by default)."""
        if name is None:
            if len(self.signatures) > 1:
                raise TdslError(f"{self.path} has several entries "
                                f"({', '.join(s.name for s in self.signatures)}); name one")
            sig = self.signatures[0]
        else:
            matches = [s for s in self.signatures if s.name == name]
            if not matches:
                raise TdslError(f"{self.path} has no entry {name!r}; it has "
                                f"{', '.join(s.name for s in self.signatures)}")
            sig = matches[0]
        return sig, ctypes.cast(getattr(self.handle, sig.symbol), ctypes.c_void_p).value


_loaded: dict[str, tuple[int, int]] = {}       # path -> (device, inode) dlopened under it
_copies: list[tempfile.TemporaryDirectory] = []


def _fresh_name(path: Path) -> str:
    """The name to dlopen `path` under. The dynamic loader returns the library already
    loaded under a name, so a file exported again to the same path (a new inode) is
    loaded from a private copy rather than silently running the old kernel."""
    name = str(path.resolve())
    try:
        st = os.stat(name)
    except OSError:
        return name                               # dlopen will say what is wrong
    identity = (st.st_dev, st.st_ino)
    if _loaded.setdefault(name, identity) == identity:
        return name
    folder = tempfile.TemporaryDirectory(prefix="tdsl-reloaded-")
    _copies.append(folder)                        # removed when the process exits
    copy = Path(folder.name) / path.name
    copy.write_bytes(Path(name).read_bytes())
    return str(copy)


def pack(library: Path) -> bytes:
    """The bytes of an exported library: the shared object plus the integrity trailer."""
    elf = Path(library).read_bytes()
    if elf.endswith(MAGIC):                       # re-exporting a loaded library
        elf = elf[:int.from_bytes(elf[-TRAILER:-TRAILER + 8], "little")]
    return elf + len(elf).to_bytes(8, "little") + hashlib.sha256(elf).digest() + MAGIC


def export(library: Path, dest: Path) -> None:
    """Write `library` plus the integrity trailer to `dest`, atomically."""
    cache.replace_file(Path(dest), pack(library), mode=0o755)


def check_file(path: Path) -> None:
    """Raise TdslError saying what is wrong if `path` is not an intact exported library."""
    what = f"{path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TdslError(f"cannot read the library {what}: {exc.strerror}") from None
    if not data.startswith(b"\x7fELF"):
        raise TdslError(f"{what} is not a tdsl library: it is not an ELF shared object "
                        f"(starts with {data[:4]!r})")
    if len(data) < TRAILER or not data.endswith(MAGIC):
        raise TdslError(f"{what} is truncated or not exported by tdsl: it does not end with "
                        f"the tdsl trailer ({len(data)} bytes; export writes the library "
                        "followed by its length and SHA-256)")
    length = int.from_bytes(data[-TRAILER:-TRAILER + 8], "little")
    if length != len(data) - TRAILER:
        raise TdslError(f"{what} is damaged: the trailer records a library of {length} bytes, "
                        f"the file holds {len(data) - TRAILER}")
    if hashlib.sha256(data[:length]).digest() != data[-TRAILER + 8:-len(MAGIC)]:
        raise TdslError(f"{what} is corrupt: its SHA-256 does not match the one recorded when "
                        "it was exported; export it again")


def header(signatures: list[Signature], library_name: str) -> str:
    """The C header of a library: error codes, the entry points, the raw kernels."""
    guard = "TDSL_" + "".join(ch if ch.isalnum() else "_" for ch in library_name).upper() + "_H"
    out = [f"/* {library_name}: generated by tdsl. Link with the library itself; it needs",
           " * libgomp (gcc -fopenmp) at run time. */",
           f"#ifndef {guard}", f"#define {guard}", "", "#include <stddef.h>",
           "#include <stdint.h>", "#include <stdbool.h>", "", "#ifdef __cplusplus",
           'extern "C" {', "#endif", "",
           "/* Return codes of an entry point; err receives a message (NUL-terminated). */",
           "#ifndef TDSL_OK", "#define TDSL_OK 0", "#define TDSL_ERR_MEMORY 1   "
           "/* an intermediate buffer could not be allocated */",
           "#define TDSL_ERR_INDEX 2    /* an index read from data was out of bounds */",
           "#define TDSL_ERR_ARGUMENT 3 /* a shape, a size or aliasing was wrong: nothing "
           "ran */", "#define TDSL_ERR_THREAD 4   /* no thread could be started */",
           "#define TDSL_ERR_CPU 5      /* this CPU lacks an instruction set it was built for "
           "*/",
           "#endif", "", "/* The JSON manifest (arguments, dtypes, shapes) of the library. */",
           "const char* tdsl_manifest(void);", ""]
    for s in signatures:
        out.append(f"/* {s.symbol}: runs {s.name} after checking every shape.")
        out.append(" *   data[k]    the first element of argument k, C-contiguous:")
        for k, a in enumerate(s.args):
            out.append(f" *     [{k}] {a.name:<8} {a.dtype:<8} {shape_text(a.shape)} {a.role}")
        out += [" *   shapes[k]  its dimensions (int64_t[rank])",
                f" *   sizes      {', '.join(s.sizes) or 'none'}: bound from the shapes",
                " *   num_threads  OpenMP threads for this call (0: OpenMP's default)",
                " *   err, err_len a buffer for the message on error (may be NULL) */",
                f"int {s.symbol}(void* const* data, const int64_t* const* shapes, "
                "int num_threads,", "    char* err, size_t err_len);", ""]
        params = [f"{'' if a.is_output else 'const '}{C_TYPES[a.dtype]}* {a.name}"
                  for a in s.args] + [f"int64_t {v}" for v in s.sizes]
        out += [f"/* {s.name}: the kernel itself, unchecked. */",
                f"int {s.name}({', '.join(params)});", ""]
    out += ["#ifdef __cplusplus", "}", "#endif", f"#endif  /* {guard} */", ""]
    return "\n".join(out)

