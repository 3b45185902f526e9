"""Turns measured rotations into the printed table, RESULTS.md and the JSON record.

Input: per workload, its `Workload` and the list of `harness.Impl` rows (the limit row
last). Output layout of the JSON (documented in benchmarks/README.md), one run per target:
{"targets": {"c -mcpu=x86-64-v3": {"target": ..., "cpu": ..., "workloads": {"W1": {"tdsl":
 {...}, "numpy": {...}, "tvm": {...}, "halide": {...}, "halide:mullapudi2016": {...,
 "schedule_source": ...}, "halide:adams2019": {...}, "limit": {...}}, ...},
 "workload_info": {...}, "machine": {...}, "method": {...}, "schedules": {...}}, ...}}
RESULTS.md holds one section per target, between `<!-- target: ... -->` markers, so that a
run replaces its own target's section and keeps the others.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .harness import Impl, Stats

COLUMNS = ["median ms", "p10 ms", "IQR ms", "perf", "unit", "vs numpy", "% limit",
           "compile s", "cache hit s"]


def row_record(im: Impl, numpy_median: float | None, limit_perf: float | None) -> dict:
    """One implementation's JSON record (None where not measured)."""
    rec: dict = {"status": im.status, "median_s": None, "p10_s": None, "iqr_s": None,
                 "perf": None, "unit": im.unit, "compile_s": im.compile_s,
                 "compile_hit_s": im.compile_hit_s, "vs_numpy": None, "pct_of_limit": None,
                 "n": 0}
    if im.reason:
        rec["reason"] = im.reason
    if im.schedule:
        rec["schedule"] = im.schedule
    if im.samples:
        st = Stats.of(im.samples)
        perf = im.amount / st.median_s / 1e9
        rec.update(median_s=st.median_s, p10_s=st.p10_s, iqr_s=st.iqr_s, perf=perf, n=st.n,
                   samples_s=[round(t, 7) for t in im.samples])
        if numpy_median:
            rec["vs_numpy"] = numpy_median / st.median_s
        if limit_perf:
            rec["pct_of_limit"] = 100.0 * perf / limit_perf
    return rec


def workload_records(impls: list[Impl]) -> dict:
    by = {im.name: im for im in impls}
    np_im = by.get("numpy")
    np_med = Stats.of(np_im.samples).median_s if np_im and np_im.samples else None
    lim = next((im for im in impls if im.is_limit), None)
    lim_perf = (lim.amount / Stats.of(lim.samples).median_s / 1e9
                if lim is not None and lim.samples else None)
    out = {}
    for im in impls:
        rec = row_record(im, None if im.is_limit else np_med, lim_perf)
        out["limit" if im.is_limit else im.name] = rec
    return out


def _fmt(v, spec, scale=1.0):
    return "-" if v is None else format(v * scale, spec)


def _cells(name: str, rec: dict) -> list[str]:
    if rec["status"] != "ok" or rec["median_s"] is None:
        what = rec["status"] + (f": {rec['reason']}" if rec.get("reason") else "")
        return [name, what]
    return [name, _fmt(rec["median_s"], ".3f", 1e3), _fmt(rec["p10_s"], ".3f", 1e3),
            _fmt(rec["iqr_s"], ".3f", 1e3), _fmt(rec["perf"], ".1f"), rec["unit"],
            _fmt(rec["vs_numpy"], ".2f") + ("x" if rec["vs_numpy"] is not None else ""),
            _fmt(rec["pct_of_limit"], ".0f") + ("%" if rec["pct_of_limit"] is not None else ""),
            _fmt(rec["compile_s"], ".3f"), _fmt(rec["compile_hit_s"], ".3f")]


def text_table(wid: str, title: str, recs: dict) -> str:
    head = ["impl"] + COLUMNS
    rows = [_cells(name, rec) for name, rec in recs.items()]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows if len(r) > 2 or i == 0))
              for i in range(len(head))]
    lines = [f"{wid}  {title}",
             "  " + "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in
                              enumerate(zip(head, widths)))]
    for r in rows:
        if len(r) == 2:
            lines.append(f"  {r[0].ljust(widths[0])}  {r[1]}")
        else:
            lines.append("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                                          for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


# shared/PERF_TARGETS.md, "Our targets": tdsl >= the best peer in the same run on every
# workload, and at least this % of the in-run limit (None: no fraction, only the peers)
GOALS = {"W1": 90, "W2": 80, "W3": 95, "W4": 80, "W5": 70, "W6": 35, "W7": None, "W8": 95}
PEER_NAMES = ("numpy", "tvm", "halide")     # the best peer: hand schedules (and numpy) only
AUTO_NAMES = ("halide:mullapudi2016", "halide:adams2019")   # Halide's autoschedulers


def summary_rows(results: dict) -> list[list[str]]:
    """Per workload: tdsl's best, the best peer, their ratio (peer median / tdsl median:
    >= 1.00 means tdsl is at least as fast), tdsl's % of the limit, the goal, and whether
    both hold in this run."""
    rows = []
    for wid, recs in results.items():
        td_rec = recs.get("tdsl", {})
        peers = {n: r for n, r in recs.items() if n in PEER_NAMES and r.get("median_s")}
        best = min(peers, key=lambda n: peers[n]["median_s"]) if peers else None
        goal = GOALS.get(wid)
        if not td_rec.get("median_s") or best is None:
            rows.append([wid, "-", best or "-", "-", "-", f"{goal}%" if goal else "-", "no"])
            continue
        ratio = peers[best]["median_s"] / td_rec["median_s"]
        pct = td_rec.get("pct_of_limit")
        ok = ratio >= 1.0 and (goal is None or (pct is not None and pct >= goal))
        variant = f" ({td_rec['variant']})" if td_rec.get("variant") else ""
        rows.append([wid, f"{td_rec['perf']:.1f} {td_rec['unit']}{variant}",
                     f"{best} {peers[best]['perf']:.1f}", f"{ratio:.2f}x",
                     "-" if pct is None else f"{pct:.0f}%", f"{goal}%" if goal else "-",
                     "yes" if ok else "no"])
    return rows


SUMMARY_HEAD = ["workload", "tdsl (best variant)", "best peer (numpy, tvm, halide)",
                "tdsl vs best peer", "tdsl % limit", "goal % limit", "both met"]


def summary_text(target: str, results: dict) -> str:
    return _text_block(f"Summary [{target}] (goals: shared/PERF_TARGETS.md)", SUMMARY_HEAD,
                       summary_rows(results))


def _text_block(title: str, head: list[str], rows: list[list[str]]) -> str:
    rows = [head] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [title]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


AUTO_HEAD = ["workload", "tdsl:auto", *AUTO_NAMES, "tdsl:auto vs best autoscheduler"]
TUNER_NAMES = ("tvm:metaschedule",)     # searches with a trial budget, against tdsl:tuned
TUNER_HEAD = ["tdsl:tuned", *TUNER_NAMES, "tdsl:tuned vs tvm:metaschedule"]


def _has_tuner(results: dict) -> bool:
    return any(n in recs for recs in results.values() for n in TUNER_NAMES)


def auto_head(results: dict) -> list[str]:
    """The columns of the automatic-schedules table: MetaSchedule's (and tdsl:tuned's)
    only when a workload has a tvm:metaschedule row."""
    return AUTO_HEAD + (TUNER_HEAD if _has_tuner(results) else [])


def _perf_cell(rec: dict | None) -> str:
    if rec is None:
        return "-"
    if rec.get("median_s") is None:
        return rec.get("status", "-")
    return f"{rec['perf']:.1f} {rec['unit']}"


def auto_rows(results: dict) -> list[list[str]]:
    """Per workload that has a Halide autoscheduler row: automatic schedules against each
    other: tdsl's td.auto_schedule ("tdsl:auto") and Halide's autoschedulers (perf), and
    the best autoscheduler's median / tdsl:auto's (>= 1.00: tdsl:auto is at least as
    fast)."""
    rows, tuner = [], _has_tuner(results)
    for wid, recs in results.items():
        if not any(n in recs for n in AUTO_NAMES + TUNER_NAMES):
            continue
        td_rec = recs.get("tdsl:auto")
        autos = {n: recs[n] for n in AUTO_NAMES if n in recs and recs[n].get("median_s")}
        best = min(autos, key=lambda n: autos[n]["median_s"]) if autos else None
        ratio = "-"
        if best is not None and td_rec and td_rec.get("median_s"):
            ratio = f"{autos[best]['median_s'] / td_rec['median_s']:.2f}x ({best})"
        row = [wid, _perf_cell(td_rec), *(_perf_cell(recs.get(n)) for n in AUTO_NAMES), ratio]
        if tuner:                     # tdsl:tuned vs MetaSchedule: medians, both tuned
            tuned, ms_rec = recs.get("tdsl:tuned"), recs.get("tvm:metaschedule")
            vs = "-"
            if tuned and tuned.get("median_s") and ms_rec and ms_rec.get("median_s"):
                vs = f"{ms_rec['median_s'] / tuned['median_s']:.2f}x"
            row += [_perf_cell(tuned), _perf_cell(ms_rec), vs]
        rows.append(row)
    return rows


def auto_text(target: str, results: dict) -> str:
    return _text_block(f"Automatic schedules [{target}]: tdsl:auto vs Halide's autoschedulers"
                       + (", tdsl:tuned vs MetaSchedule" if _has_tuner(results) else ""),
                       auto_head(results), auto_rows(results))


TITLE = "# Benchmark results"
INTRO = ("One section per target (`benchmarks/run.py --target ...`), each from one run on one "
         "CPU; a run replaces its own target's section and keeps the others. Ratios and % of "
         "limit are within one rotation of one run; absolute numbers vary between runs.")
_BEGIN, _END = "<!-- target: {} -->", "<!-- end target: {} -->"


def markdown_section(key: str, description: str, results: dict, titles: dict, machine: dict,
                     method: dict, schedules: dict) -> str:
    """The Markdown section of one target's run: its table, machine, method, schedules."""
    out = [_BEGIN.format(key), f"## Target `{key}`", "",
           f"{description}. Run {machine.get('date', '')} on {machine.get('host', '')}, "
           f"{machine.get('threads')} threads of {machine.get('cores')} cores.", "",
           "Against the goals of shared/PERF_TARGETS.md (tdsl vs best peer: the best peer's "
           "median / tdsl's; both met: tdsl at least as fast as the best peer and at least "
           "the goal's % of the in-run limit):", "",
           "| " + " | ".join(SUMMARY_HEAD) + " |", "|---" * len(SUMMARY_HEAD) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in summary_rows(results)]
    autos = auto_rows(results)
    if autos:
        head = auto_head(results)
        tuner = (" Tuned with a trial budget: tdsl:tuned (td.tune's log) vs TVM's "
                 "MetaSchedule (ratio: MetaSchedule's median / tdsl:tuned's)."
                 if _has_tuner(results) else "")
        out += ["", "Automatic schedules: tdsl:auto (td.auto_schedule) vs Halide's "
                "autoschedulers on the same algorithms (perf; not part of the comparison "
                "above; ratio: the best autoscheduler's median / tdsl:auto's)." + tuner, "",
                "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in autos]
    out += ["", "All rows:", "",
           "| workload | impl | " + " | ".join(COLUMNS) + " |",
           "|---|---|" + "---:|" * len(COLUMNS)]
    for wid, recs in results.items():
        for name, rec in recs.items():
            cells = _cells(name, rec)
            if len(cells) == 2:
                cells = cells + [""] * (len(COLUMNS) - 1)
            out.append(f"| {wid} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    out += ["", "Workloads:", ""]
    out += [f"- {wid}: {t}" for wid, t in titles.items()]
    out += ["", "### Machine", ""]
    out += [f"- {k}: {v}" for k, v in machine.items()]
    out += ["", "### Method", ""]
    out += [f"- {k}: {v}" for k, v in method.items()]
    out += ["", "### Peer schedules", ""]
    for peer, per in schedules.items():
        for wid, desc in per.items():
            out.append(f"- {peer} {wid}: {desc}")
    out.append(_END.format(key))
    return "\n".join(out)


def split_sections(text: str) -> dict:
    """{target: section text} of a RESULTS.md written by `merge_markdown`, in file order."""
    sections, key, lines = {}, None, []
    for line in text.splitlines():
        if key is None and line.startswith("<!-- target: ") and line.endswith(" -->"):
            key, lines = line[len("<!-- target: "):-len(" -->")], [line]
        elif key is not None:
            lines.append(line)
            if line == _END.format(key):
                sections[key] = "\n".join(lines)
                key = None
    return sections


def merge_markdown(old: str, key: str, section: str) -> str:
    """RESULTS.md with target `key`'s section replaced by `section` in place (or, if new,
    inserted after the last target section); everything else in the file (other targets'
    sections, sections other tools write, such as overhead.py's and parity's) is kept as
    it was."""
    if not old.strip():
        return "\n".join([TITLE, "", INTRO, "", section]) + "\n"
    lines = old.splitlines()
    begin, end = _BEGIN.format(key), _END.format(key)
    if begin in lines and end in lines[lines.index(begin):]:
        i = lines.index(begin)
        j = lines.index(end, i)
        lines[i:j + 1] = section.splitlines()
    else:
        ends = [n for n, line in enumerate(lines) if line.startswith("<!-- end target: ")]
        at = ends[-1] + 1 if ends else len(lines)
        lines[at:at] = ["", *section.splitlines()] if at else [*section.splitlines(), ""]
    return "\n".join(lines) + "\n"


def merge_json(old: str, key: str, doc: dict) -> dict:
    """{"targets": {target: run document}} with `key`'s run replaced by `doc`."""
    import json
    try:
        prev = json.loads(old) if old.strip() else {}
    except ValueError:
        prev = {}
    runs = dict(prev.get("targets", {})) if isinstance(prev, dict) else {}
    runs[key] = doc
    return {"targets": runs}


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) in place of the text
    between those markers in `path`, or append it; the rest of the file is kept. Written
    to a temporary file and renamed, so a killed run leaves the old file whole."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, old,
                     flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)
