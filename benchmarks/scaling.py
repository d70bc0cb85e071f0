#!/usr/bin/env python3
"""Scaling over cores and memory on a large capture (issue 5).

    python benchmarks/scaling.py                  # 2M-frame file + 2 GB file, writes RESULTS.md
    python benchmarks/scaling.py --no-memory --no-results   # quick look

Part 1, on the 2M-frame benchmark capture: ``ipv6flow analyze FILE
--workers K`` for K = 1 .. all cores (no pinning), beside ``tcpdump -r FILE
-w /dev/null``, in one run, file in the page cache; wall time, frames/s,
speed-up over one worker, peak RSS (parent and workers are measured as
the parent's ru_maxrss plus the largest worker's, ``RUSAGE_CHILDREN`` of
the launcher).

Part 2: peak RSS on a capture of at least 2 GB (written by generate.py
--size-gb 2 if missing) with one worker and with all cores, to show that
memory does not grow with the capture.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402
import run  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=2_000_000)
    ap.add_argument("--memory-gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(run.DATA, exist_ok=True)
    path = generate.default_out(a.frames, None)
    if not os.path.exists(path):
        generate.generate(path, a.frames, None, 6)
    run.hash_and_warm(path)
    cores = len(os.sched_getaffinity(0))
    cwd, _ = run.ipv6flow_cwd()
    ipv6flow = [sys.executable, "-m", "ipv6flow.cli", "analyze"]
    out = os.path.join(run.DATA, "report-scaling.json")
    # in rounds (tcpdump and every worker count once per round): all see
    # the same spells of a shared machine
    jobs = [(ipv6flow + [path, "--workers", str(k), "--format", "json", "-o", out],
             os.devnull, os.devnull, cwd) for k in range(1, cores + 1)]
    if shutil.which("tcpdump"):
        jobs.append((["tcpdump", "-r", path, "-w", "/dev/null"], os.devnull, os.devnull,
                     run.REPO))
    best = run.measure_rounds(jobs, a.repeat)
    rows = list(zip(range(1, cores + 1), best))
    tcp = best[cores] if len(best) > cores else None
    for k, m in rows:
        print(f"workers {k}: {m['wall']:.2f} s, peak RSS {m['rss_mb']:.0f} MB", file=sys.stderr)
    base = rows[0][1]["wall"]
    lines = ["| workers | wall s | frames/s | speed-up | peak RSS MB (largest process) | vs tcpdump wall |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k, m in rows:
        vs = f"{m['wall'] / tcp['wall']:.2f}x" if tcp else "-"
        lines.append(f"| {k} | {m['wall']:.2f} | {a.frames / m['wall']:,.0f} | "
                     f"{base / m['wall']:.2f}x | {m['rss_mb']:.0f} | {vs} |")
    if tcp:
        lines.append(f"| tcpdump -r FILE -w /dev/null | {tcp['wall']:.2f} | "
                     f"{a.frames / tcp['wall']:,.0f} | | {tcp['rss_mb']:.0f} | 1.00x |")
    table = "\n".join(lines)
    print(table)
    mem = ""
    if not a.no_memory:
        big = generate.default_out(None, a.memory_gb)
        if not os.path.exists(big):
            print(f"generating {big} ...", file=sys.stderr)
            generate.generate(big, None, a.memory_gb, 6)
        size = os.path.getsize(big)
        mem_lines = ["| capture | workers | wall s | peak RSS MB (largest process) |",
                     "| --- | ---: | ---: | ---: |"]
        for k in (1, cores):
            m = run.measure(ipv6flow + [big, "--workers", str(k), "--format", "json", "-o", out],
                            os.devnull, os.devnull, 1, cwd)
            mem_lines.append(f"| {os.path.basename(big)} ({size / 1e9:.2f} GB) | {k} | "
                             f"{m['wall']:.2f} | {m['rss_mb']:.0f} |")
            print(f"2 GB, workers {k}: {m['wall']:.2f} s, {m['rss_mb']:.0f} MB", file=sys.stderr)
        mem = "\n".join(mem_lines)
        print(mem)
    if not a.no_results:
        info = run.machine_info()
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = (f"## Scaling and memory, {when}\n\n"
                   f"Machine: {info.get('cpu', '?')}, {cores} cores usable, "
                   f"{info.get('ram', '?')} RAM; Python {info.get('python', '?')}.\n\n"
                   f"`python benchmarks/scaling.py`: the {a.frames:,}-frame capture "
                   f"({os.path.getsize(path) / 1e9:.2f} GB), page cache warm, no pinning.\n\n"
                   f"{table}\n\n" + (f"Peak memory on a large capture:\n\n{mem}\n" if mem else ""))
        run.write_results(run.RESULTS, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
