"""The target a benchmark run is for, and what each peer's schedule takes from it.

A run is for one tdsl target (`td.target(...)`, chosen with `run.py --target`; run.py puts
it in `TDSL_TARGET` before anything is imported). The peers read the same target here, so
that TVM, Halide and the limit rows are built for the same instruction set as tdsl, with
vector widths and register tiles chosen for that target's registers:

    lanes            float32 lanes of one vector: vector bytes / 4 (8 AVX2, 16 AVX-512)
    GEMM tile        rows x columns of accumulators held over the k loop, 3 vectors wide:
                     AVX-512 (32 zmm) 8 x 48 = 24 accumulators; AVX2 (16 ymm) 4 x 24 = 12
                     accumulators + 3 B vectors + 1 broadcast of A = 16 registers (TVM,
                     B packed into panels). Halide on AVX2 (B not packed, rows 4 KiB
                     apart): 6 x 16 (12 accumulators + 2 B vectors + 1 broadcast), one
                     64-byte line of B per k step, 4 register tiles per 16 x 24 output
                     tile (the blocking of Halide's own AVX2 matrix-multiply test, which
                     uses 4 x 24 register tiles in 24 x 32; 6 x 16 ran ~1.2x faster here)
    conv tile        output channels (one vector) x output pixels of one row:
                     AVX-512 16 x 14; AVX2 8 x 14 for Halide (14 accumulators + weights +
                     broadcast = 16 ymm, no spills in its inner loop), 8 x 8 for TVM (LLVM
                     unrolls TVM's 3x3 (r, s) loops and spills ymm registers in the inner
                     loop with 12 or 14 pixels, none with 8; 56 = 7 x 8, no ragged tile)
    transpose tile   lanes x lanes (an in-register transpose block)

Shorthands for `--target`: native = "c" (this CPU, -march=native), avx2 = "c -mcpu=x86-64-v3",
avx512 = "c -mcpu=x86-64-v4".
"""

from __future__ import annotations

from dataclasses import dataclass

SHORTHANDS = {"native": "c", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def expand(spec: str) -> str:
    """A target string from a shorthand (avx2, avx512, native) or a tdsl target string."""
    s = " ".join(spec.split())
    return SHORTHANDS.get(s.lower(), s)


def parse_list(text: str) -> list[str]:
    """`--target` value: comma-separated shorthands or target strings, in order, unique."""
    out = []
    for part in text.split(","):
        if part.strip() and expand(part) not in out:
            out.append(expand(part))
    return out


def current():
    """The tdsl target of this run: `TDSL_TARGET`, else "c" (native)."""
    import tdsl as td
    return td.target()


def host():
    """The native target of the CPU running this process."""
    import tdsl as td
    return td.target("c")


def refusal(t) -> str | None:
    """Why target `t` cannot be benchmarked on this CPU (None if it can)."""
    if t.runs_here():
        return None
    h = host()
    missing = sorted(t.features - h.features)
    return (f"target {t.describe()} cannot run on this CPU: "
            f"{cpu()} (-march=native: {', '.join(sorted(h.features))}) "
            f"lacks {', '.join(missing) or 'what the target needs'}. Its code would stop "
            "with an illegal instruction; run this target on a CPU that has "
            f"{', '.join(missing) or 'them'} (for x86-64-v4: any AVX-512 CPU, e.g. Zen 4, "
            f"Ice Lake, Sapphire Rapids); here, use --target native or "
            f"{'avx2' if 'avx2' in h.features else 'c -mcpu=x86-64'}.")


def cpu() -> str:
    """The host CPU's name (tdsl.target.host_description())."""
    import importlib
    return importlib.import_module("tdsl.target").host_description()


@dataclass(frozen=True)
class PeerShape:
    """The widths and register tiles of the peers' schedules for one target."""
    lanes: int             # float32 per vector: the vectorize / rfactor width
    gemm_rows: int         # GEMM register tile: rows of C
    gemm_cols: int         # ... columns of C (a multiple of lanes), also B's panel width
    gemm_row_block: int    # Halide: rows of C per output tile, in register tiles of
                           # gemm_rows (= gemm_rows: one register tile per output tile)
    conv_channels: int     # conv register tile: output channels (one vector)
    conv_pixels: int       # ... output pixels of one row (unrolled)

    @property
    def gemm_vectors(self) -> int:
        return self.gemm_cols // self.lanes


def peer_shape(t=None, peer: str = "") -> PeerShape:
    """Per-target widths and tiles of `peer` ("tvm", "halide"; see the module docstring);
    `t` defaults to `current()`."""
    t = t if t is not None else current()
    lanes = t.lanes("float32")
    if t.vector_registers >= 32:        # AVX-512: 24 of 32 zmm are accumulators
        return PeerShape(lanes, 8, 3 * lanes, 8, lanes, 14)
    # 16 registers (AVX2, AVX, SSE): 12 accumulators + the B vectors + 1 broadcast of A:
    # TVM (B packed) 4 x 3 vectors; Halide (B not packed) 6 x 2 vectors, so one k step of
    # a tile reads one 64-byte line of B, in output tiles of 4 register tiles
    if peer == "halide":
        return PeerShape(lanes, 6, 2 * lanes, 24, lanes, 14)
    return PeerShape(lanes, 4, 3 * lanes, 4, lanes, 8 if peer == "tvm" else 14)


def llvm_mcpu(t=None) -> str:
    """The LLVM CPU for TVM: the target's -mcpu (LLVM knows gcc's x86-64-v2/v3/v4 and the
    CPU names); for native, the host CPU as LLVM names it."""
    t = t if t is not None else current()
    if t.mcpu != "native":
        return t.mcpu
    from tvm.target import codegen
    return codegen.llvm_get_system_cpu()


def halide_features(t=None) -> list[str] | None:
    """Halide target features for `t` (x86-64 only); None for native (Halide's host target)."""
    t = t if t is not None else current()
    if t.mcpu == "native":
        return None
    f = t.features
    feats = []
    if "sse4.1" in f:
        feats.append("sse41")
    if "avx" in f:
        feats.append("avx")
    if "avx2" in f:
        feats += ["avx2", "f16c"]
    if "fma" in f:
        feats.append("fma")
    if "avx512f" in f:
        feats += ["avx512", "avx512_skylake"] if {"avx512bw", "avx512vl"} <= f else ["avx512"]
    return feats


def describe_schedules(templates: dict, t=None, peer: str = "") -> dict:
    """Fill a peer's schedule descriptions ({lanes}, {rows}, {cols}, {vecs}, {ch}, {px})
    with the widths and tiles of target `t` (default: the run's target)."""
    sh = peer_shape(t, peer)
    vals = dict(lanes=sh.lanes, rows=sh.gemm_rows, cols=sh.gemm_cols, vecs=sh.gemm_vectors,
                ch=sh.conv_channels, px=sh.conv_pixels,
                block=(f" in {sh.gemm_cols}x{sh.gemm_row_block} output tiles"
                       if sh.gemm_row_block > sh.gemm_rows else ""))
    return {wid: text.format(**vals) for wid, text in templates.items()}
