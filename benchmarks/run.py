#!/usr/bin/env python3
"""Benchmark ipv6flow against tshark, tcpdump and a plain dpkt loop.

One command, one run, one file (generated first if missing):

    python benchmarks/run.py                      # the 2M-frame file, writes RESULTS.md
    python benchmarks/run.py --frames 200000 --no-results   # quick check

Rows, each run pinned to one core (``taskset -c 0``) one after the other,
with the file in the page cache (read once before, while hashing it):

- ipv6flow fast       ``ipv6flow analyze FILE --decoder fast --format json -o OUT``
- ipv6flow fast --no-clients: the same without clients, flows and interface
  identifiers (the figures of REPORT.md only)
- ipv6flow reference  ``ipv6flow analyze FILE --decoder reference --format json -o OUT``
- tshark io,phs       ``tshark -q -z io,phs -r FILE``
- tcpdump             ``tcpdump -r FILE -w /dev/null``
- dpkt loop           ``python benchmarks/dpkt_loop.py FILE``

Wall time is measured around each child (Popen .. os.wait4), peak RSS is the
child's ru_maxrss from os.wait4. Best of ``--repeat`` runs, in rounds: every
row runs once per round, so all rows see the same slow and fast spells of a
shared machine. The table gives
frames/s, MB/s (10**6 bytes of file per second), peak RSS (10**6 bytes),
CPU seconds (user+sys), and the ratio of ipv6flow-fast frames/s to each row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
RESULTS = os.path.join(HERE, "RESULTS.md")
MARKER = "<!-- new results sections go below this line, newest first -->"

sys.path.insert(0, HERE)
import generate  # noqa: E402

TARGETS = {"tshark": 50.0, "dpkt": 20.0, "tcpdump_wall": 2.0, "rss_mb": 150.0}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def sh(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def first_line(s: str) -> str:
    return s.splitlines()[0].strip().rstrip(".") if s else "not found"


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(re.search(r"MemTotal:\s+(\d+)", fh.read()).group(1))
            ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    try:
        import numpy
        npv = numpy.__version__
    except ImportError:
        npv = "not installed"
    try:
        import dpkt
        dpktv = dpkt.__version__
    except ImportError:
        dpktv = "not installed"
    tsh = first_line(sh(["tshark", "--version"])) if shutil.which("tshark") else "not installed"
    tcd = first_line(sh(["tcpdump", "--version"])) if shutil.which("tcpdump") else "not installed"
    commit = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    ipv = sh([sys.executable, "-c", "import ipv6flow; print(ipv6flow.__version__)"]) or "?"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram": ram,
        "kernel": platform.release(),
        "python": platform.python_version(), "numpy": npv, "dpkt": dpktv,
        "tshark": tsh, "tcpdump": tcd,
        "ipv6flow": f"{ipv} (git {commit}{', uncommitted changes' if dirty else ''})",
        "date": sh(["date", "-u"]) or dt.datetime.now(dt.timezone.utc).strftime("%c UTC"),
        "loadavg": "%.2f %.2f %.2f" % os.getloadavg(),
    }


def hash_and_warm(path: str) -> str:
    """sha256 of the file; reading it also puts it in the page cache."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(16 << 20)
        mv = memoryview(buf)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return h.hexdigest()


def pcap_records(path: str, limit: int | None = None, copy_to: str | None = None):
    """Count the records of a classic pcap (and copy the first ``limit``)."""
    with open(path, "rb") as fh:
        ghdr = fh.read(24)
        if len(ghdr) < 24:
            raise SystemExit(f"{path}: not a pcap file")
        magic = ghdr[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (use a pcap, not pcapng)")
        rec = struct.Struct(endian + "IIII")
        out = open(copy_to + ".part", "wb") if copy_to else None
        if out:
            out.write(ghdr)
        n = nbytes = 0
        try:
            while limit is None or n < limit:
                h = fh.read(16)
                if len(h) < 16:
                    break
                incl = rec.unpack(h)[2]
                body = fh.read(incl)
                if len(body) < incl:
                    break
                if out:
                    out.write(h)
                    out.write(body)
                n += 1
                nbytes += 16 + incl
        finally:
            if out:
                out.close()
                os.replace(copy_to + ".part", copy_to)
    return n, 24 + nbytes


def prefix_copy(path: str, frames: int) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    dst = os.path.join(DATA, f"{stem}-first{generate.frames_label(frames)}.pcap")
    if not (os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(path)):
        pcap_records(path, frames, dst)
    return dst


# The child is started from a small launcher, not from this process: on Linux
# a child's ru_maxrss starts at the RSS of the process it was forked from
# (the copied address space's high-water mark survives exec), and this
# process may hold the generator's arrays. The launcher is a bare Python
# (-I -S, os/sys/time only) that forks, execs the tool, and wait4s it; its
# own size (a few MB) is the floor of every RSS figure and is reported.
LAUNCHER = r"""
import os, sys, time
res, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(res, "w") as fh:
    fh.write("%r %d %d %r %r" % (wall, os.waitstatus_to_exitcode(status), ru.ru_maxrss,
                                 ru.ru_utime, ru.ru_stime))
"""


def measure_once(cmd: list[str], out_path: str, err_path: str, cwd: str = REPO) -> dict:
    res = os.path.join(DATA, ".measure")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, res, *cmd],
                             stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        p.wait()
    if p.returncode != 0:
        return {"wall": float("nan"), "rc": 126, "rss_mb": float("nan"), "cpu": float("nan")}
    with open(res) as fh:
        wall, rc, maxrss_kb, ut, st = fh.read().split()
    os.unlink(res)
    return {"wall": float(wall), "rc": int(rc), "rss_mb": int(maxrss_kb) * 1024 / 1e6,
            "cpu": float(ut) + float(st)}


def better(best, r):
    """The better of two measurements: a clean exit first, then wall time."""
    if best is None or (r["rc"] == 0 and (best["rc"] != 0 or r["wall"] < best["wall"])):
        return r
    return best


def measure(cmd: list[str], out_path: str, err_path: str, repeat: int, cwd: str = REPO) -> dict:
    """Best-of-``repeat`` wall time; peak RSS and CPU of that run (wait4)."""
    best = None
    for _ in range(repeat):
        best = better(best, measure_once(cmd, out_path, err_path, cwd))
    return best


def measure_rounds(jobs, repeat: int, announce=None) -> list[dict]:
    """Best of ``repeat`` per job, run in rounds (each job once per round):
    on a shared machine whose speed drifts over minutes, every tool gets
    runs in the same slow and fast spells, so their ratios hold.
    ``jobs``: (cmd, out_path, err_path, cwd) tuples."""
    best = [None] * len(jobs)
    for k in range(repeat):
        for i, (cmd, out_path, err_path, cwd) in enumerate(jobs):
            if announce is not None:
                announce(k, i)
            best[i] = better(best[i], measure_once(cmd, out_path, err_path, cwd))
    return best


_WHICH = """
import ipv6flow
try:
    import ipv6flow._speedups
    helper = "compiled record walker ipv6flow._speedups loaded"
except ImportError:
    helper = "compiled helper not available: pure-Python record walk"
print(ipv6flow.__file__)
print(helper)
"""


def ipv6flow_cwd() -> tuple[str, str]:
    """Where to run ``python -m ipv6flow.cli`` from, and what that imports.

    The installed ipv6flow (what users run, with its compiled helper if the
    install built one) when there is one; else the source tree of this clone.
    """
    for cwd in (DATA, REPO):
        r = subprocess.run([sys.executable, "-c", _WHICH], capture_output=True, text=True, cwd=cwd)
        if r.returncode == 0:
            where, helper = r.stdout.strip().splitlines()[:2]
            where = os.path.dirname(where)
            # no machine's own paths in RESULTS.md: the source tree, or the
            # installed package as site-packages/ipv6flow
            shown = os.path.relpath(where, REPO) if where.startswith(REPO) else \
                os.path.join(os.path.basename(os.path.dirname(where)), "ipv6flow")
            return cwd, f"imported from `{shown}`; {helper}"
    raise SystemExit("cannot import ipv6flow: run `pip install .` in the repository first")


IPV6FLOW_CWD = REPO


def ipv6flow_has_decoder() -> tuple[bool, str]:
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--help"],
                       capture_output=True, text=True, cwd=IPV6FLOW_CWD)
    return ("--decoder" in r.stdout, r.stdout + r.stderr)


def tail(path: str, n: int = 5) -> str:
    try:
        with open(path, "rb") as fh:
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2_000_000,
                    help="benchmark on the generated file of N frames (default 2,000,000; "
                         "benchmarks/data/bench-<N>.pcap, generated if missing)")
    ap.add_argument("--file", default=None,
                    help="benchmark an existing classic pcap instead of a generated one")
    ap.add_argument("--seed", type=int, default=6, help="generator seed (default 6)")
    ap.add_argument("--repeat", type=int, default=1, help="best of K runs per tool (default 1)")
    ap.add_argument("--reference-frames", type=int, default=None, metavar="N",
                    help="run the slow rows (ipv6flow reference, tshark, dpkt loop) on a copy "
                         "of the first N frames and scale their wall time to the whole file")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["fast", "fast-nc", "reference", "tshark", "tcpdump", "dpkt"],
                    help="leave a row out (repeatable)")
    ap.add_argument("--profile", type=int, default=None, metavar="N",
                    help="also cProfile ipv6flow (fast decoder, or the default one) on the "
                         "first N frames and list the top 10 functions by own time")
    ap.add_argument("--profile-decoder", choices=["fast", "reference"], default="fast",
                    help="decoder for --profile (default fast)")
    ap.add_argument("--no-results", action="store_true",
                    help="print only; do not add a section to benchmarks/RESULTS.md")
    ap.add_argument("--results", default=RESULTS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")

    os.makedirs(DATA, exist_ok=True)
    gen_note = None
    if a.file:
        path = os.path.abspath(a.file)
        if not os.path.exists(path):
            ap.error(f"{a.file}: no such file")
    else:
        path = generate.default_out(a.frames, None)
        side = generate.sidecar_path(path)
        if not (os.path.exists(path) and os.path.exists(side)):
            print(f"generating {os.path.relpath(path)} ({a.frames:,} frames) ...", file=sys.stderr)
            info = generate.generate(path, a.frames, None, a.seed)
            gen_note = (f"generated for this run in {info['elapsed_s']:.1f} s "
                        f"(benchmarks/generate.py --frames {a.frames} --seed {a.seed})")

    print("reading the file once (sha256, page cache) ...", file=sys.stderr)
    sha = hash_and_warm(path)
    size = os.path.getsize(path)
    side_path = generate.sidecar_path(path)
    sidecar = None
    if os.path.exists(side_path):
        with open(side_path) as fh:
            sidecar = json.load(fh)
        if sidecar.get("sha256") != sha:
            print(f"warning: {side_path} does not match the file (sha256 differs); ignoring it",
                  file=sys.stderr)
            sidecar = None
    frames = sidecar["frames"] if sidecar else pcap_records(path)[0]

    ref_path, ref_frames, ref_size = path, frames, size
    if a.reference_frames and a.reference_frames < frames:
        ref_path = prefix_copy(path, a.reference_frames)
        ref_frames = a.reference_frames
        ref_size = os.path.getsize(ref_path)
        hash_and_warm(ref_path)

    taskset = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    global IPV6FLOW_CWD
    IPV6FLOW_CWD, which = ipv6flow_cwd()
    has_decoder, _ = ipv6flow_has_decoder()
    ipv6flow = [sys.executable, "-m", "ipv6flow.cli", "analyze"]
    rel = lambda p: os.path.relpath(p, REPO)   # noqa: E731

    rows = []   # dicts: key, label, cmd(list), file, frames, bytes, note
    fast_out = os.path.join(DATA, "report-fast.json")
    ref_out = os.path.join(DATA, "report-reference.json")
    nc_out = os.path.join(DATA, "report-fast-nc.json")
    if has_decoder:
        if "fast" not in a.skip:
            rows.append(dict(key="fast", label="ipv6flow fast",
                             cmd=ipv6flow + [path, "--decoder", "fast", "--format", "json", "-o", fast_out],
                             file=path, frames=frames, bytes=size, note=""))
        if "fast-nc" not in a.skip:
            rows.append(dict(key="fast-nc", label="ipv6flow fast --no-clients",
                             cmd=ipv6flow + [path, "--decoder", "fast", "--no-clients", "--format",
                                             "json", "-o", nc_out],
                             file=path, frames=frames, bytes=size, note=""))
        if "reference" not in a.skip:
            rows.append(dict(key="reference", label="ipv6flow reference",
                             cmd=ipv6flow + [ref_path, "--decoder", "reference", "--format", "json", "-o", ref_out],
                             file=ref_path, frames=ref_frames, bytes=ref_size, note=""))
    elif not ("fast" in a.skip and "reference" in a.skip):
        rows.append(dict(key="fast", label="ipv6flow (no --decoder option yet: default decoder)",
                         cmd=ipv6flow + [path, "--format", "json", "-o", fast_out],
                         file=path, frames=frames, bytes=size,
                         note="`--decoder` not accepted by this ipv6flow: ran without it; "
                              "the reference row would be the same command and was not run"))
    if "tshark" not in a.skip and shutil.which("tshark"):
        rows.append(dict(key="tshark", label="tshark -q -z io,phs",
                         cmd=["tshark", "-q", "-z", "io,phs", "-r", ref_path],
                         file=ref_path, frames=ref_frames, bytes=ref_size, note=""))
    if "tcpdump" not in a.skip and shutil.which("tcpdump"):
        rows.append(dict(key="tcpdump", label="tcpdump -r FILE -w /dev/null",
                         cmd=["tcpdump", "-r", path, "-w", "/dev/null"],
                         file=path, frames=frames, bytes=size, note=""))
    if "dpkt" not in a.skip:
        rows.append(dict(key="dpkt", label="dpkt loop",
                         cmd=[sys.executable, os.path.join(HERE, "dpkt_loop.py"), ref_path, "--json"],
                         file=ref_path, frames=ref_frames, bytes=ref_size, note=""))

    print(f"file {rel(path)}: {frames:,} frames, {size:,} bytes, sha256 {sha[:16]}", file=sys.stderr)
    floor = measure_once(["true"], os.devnull, os.devnull)["rss_mb"]
    jobs = []
    for r in rows:
        cmd = taskset + r["cmd"]
        r["shown"] = " ".join(rel(c) if os.path.isabs(c) and c.startswith(REPO) else c for c in cmd)
        r["shown"] = r["shown"].replace(sys.executable, "python")
        r["out"] = os.path.join(DATA, f"out-{r['key']}.txt")
        jobs.append((cmd, r["out"], os.path.join(DATA, f"err-{r['key']}.txt"),
                     IPV6FLOW_CWD if r["key"] in ("fast", "fast-nc", "reference") else REPO))

    def announce(k, i):
        print(f"  round {k + 1}/{a.repeat}: {rows[i]['shown']}", file=sys.stderr, flush=True)

    for r, m in zip(rows, measure_rounds(jobs, a.repeat, announce)):
        r.update(m)
        r["scaled"] = r["frames"] != frames
        r["fps"] = r["frames"] / m["wall"]
        r["mbps"] = r["bytes"] / 1e6 / m["wall"]
        r["wall_full"] = frames / r["fps"]
        r["check"] = check_output(r, r["out"], r["out"].replace("out-", "err-"),
                                  {"fast": fast_out, "fast-nc": nc_out}.get(r["key"], ref_out))
        print(f"    {r['shown']}: {m['wall']:.2f} s, {r['fps']:,.0f} frames/s, peak RSS "
              f"{m['rss_mb']:.0f} MB, rc {m['rc']}, {r['check']}", file=sys.stderr, flush=True)

    by = {r["key"]: r for r in rows}
    fast = by.get("fast")
    for r in rows:
        r["ratio"] = (fast["fps"] / r["fps"]) if fast and fast["rc"] == 0 and r["rc"] == 0 else None

    extra = []
    if "fast" in by and "reference" in by and by["reference"]["file"] == path \
            and by["fast"]["rc"] == 0 and by["reference"]["rc"] == 0:
        same = _read(fast_out) == _read(ref_out)
        extra.append(f"ipv6flow fast and reference JSON reports byte-identical: "
                     f"{'yes' if same else 'NO'}")
    d = by.get("dpkt")
    if d is not None and d["rc"] == 0:
        # compare with an ipv6flow report of the same file
        for key, rep in (("fast", fast_out), ("reference", ref_out)):
            o = by.get(key)
            if o is not None and o["rc"] == 0 and o["file"] == d["file"]:
                extra.append(dpkt_vs_ipv6flow(os.path.join(DATA, "out-dpkt.txt"), rep,
                                              os.path.basename(d["file"]), o["label"]))
                break

    prof = None
    if a.profile:
        prof = profile(path, frames, min(a.profile, frames), has_decoder and a.profile_decoder)

    info = machine_info()
    info["ipv6flow"] += f"; {which}"
    table = render_table(rows, fast)
    targets = render_targets(by, fast, has_decoder)
    print()
    print(table)
    print()
    print(targets)
    for e in extra:
        print(e)
    if prof:
        print()
        print(prof)

    if not a.no_results:
        section = render_section(info, path, frames, size, sha, sidecar, gen_note, rows,
                                 table, targets, extra, prof, a, taskset, ref_frames, floor)
        write_results(a.results, section)
        print(f"\nadded a section to {rel(a.results)}", file=sys.stderr)
    return 0


def _read(p):
    try:
        with open(p, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def check_output(r, outp, errp, report_path) -> str:
    """Did the tool read every frame? (what each tool lets us see)"""
    if r["rc"] != 0:
        return f"FAILED rc={r['rc']}: {tail(errp)}"
    want = r["frames"]
    try:
        if r["key"] in ("fast", "fast-nc", "reference"):
            with open(report_path) as fh:
                got = json.load(fh)["totals"]["packets"]
        elif r["key"] == "tshark":
            m = re.search(r"^eth\s+frames:(\d+)", open(outp).read(), re.M)
            got = int(m.group(1)) if m else None
        elif r["key"] == "dpkt":
            got = json.loads(open(outp).read())["frames"]
        else:
            return "ok (exit 0)"
    except (OSError, ValueError, KeyError, AttributeError) as e:
        return f"unreadable output ({e})"
    return "ok (all frames)" if got == want else f"MISMATCH: {got} of {want} frames"


def dpkt_vs_ipv6flow(dpkt_out, report_path, fname, label) -> str:
    try:
        d = json.loads(open(dpkt_out).read())
        rep = json.load(open(report_path))
    except (OSError, ValueError):
        return "dpkt vs ipv6flow: outputs unreadable"
    c = rep["carrier"]
    v4 = d["ipv4"] + d["6in4"] + d["teredo"]
    t = rep["tunnels"]
    p41 = t["6in4"]["packets"] + t["6to4"]["packets"] + t["isatap"]["packets"] + t["6rd"]["packets"]
    return (f"dpkt loop vs {label} carrier counts on {fname}: IPv4 {v4:,} vs {c['ipv4']['packets']:,}, "
            f"IPv6 {d['ipv6']:,} vs {c['ipv6']['packets']:,}, other {d['other']:,} vs non_ip "
            f"{c['non_ip']['packets']:,}; protocol 41 {d['6in4']:,} vs {p41:,}; "
            f"Teredo (port 3544) {d['teredo']:,} vs {t['teredo']['packets']:,}")


def profile(path, frames, n, decoder) -> str:
    """cProfile of one ipv6flow run on the first n frames: top 10 by own time.

    ``decoder`` is "fast", "reference", or False (ipv6flow has no --decoder).
    """
    import pstats
    src = prefix_copy(path, n) if n < frames else path
    pout = os.path.join(DATA, "profile.out")
    dec = ["--decoder", decoder] if decoder else []
    _, helptext = ipv6flow_has_decoder()
    stats = ["--stats"] if "--stats" in helptext else []
    cmd = [sys.executable, "-m", "cProfile", "-o", pout, "-m", "ipv6flow.cli", "analyze", src,
           *dec, *stats, "--format", "json", "-o", os.path.join(DATA, "report-profile.json")]
    r = subprocess.run(cmd, cwd=IPV6FLOW_CWD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    st = pstats.Stats(pout)
    total = st.total_tt
    shown = " ".join(["ipv6flow analyze", *dec])
    lines = [f"cProfile of `{shown}` on the first {n:,} frames ({total:.2f} s under the "
             f"profiler, imports included), top 10 functions by own time:", "",
             "| own s | % | cumulative s | calls | function |", "| ---: | ---: | ---: | ---: | --- |"]
    items = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:10]
    for (fn, line, name), (cc, nc, tt, ct, _) in items:
        where = os.path.relpath(fn, REPO) if fn.startswith(REPO) else os.path.basename(fn)
        lines.append(f"| {tt:.2f} | {100 * tt / total:.0f}% | {ct:.2f} | {nc:,} | "
                     f"`{where}:{line}({name})` |")
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("decoder")]
    if said:
        lines += ["", f"`--stats` of that run: {said[-1].strip()}"]
    return "\n".join(lines)


def fmt_ratio(x):
    return "-" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x")


def render_table(rows, fast) -> str:
    head = ["tool", "wall s", "frames/s", "MB/s", "peak RSS MB", "CPU s",
            "fast frames/s ÷ this", "check"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] + [" ---: "] * 6 + [" --- "]) + "|"]
    for r in rows:
        label = r["label"]
        wall = f"{r['wall']:.2f}"
        if r["scaled"]:
            label += f" (first {r['frames']:,} frames)"
            wall = f"{r['wall']:.2f} (≈{r['wall_full']:.1f} for all)"
        if r["rc"] != 0:
            out.append(f"| {label} | {wall} | - | - | {r['rss_mb']:.0f} | {r['cpu']:.2f} | - | {r['check']} |")
            continue
        out.append(f"| {label} | {wall} | {r['fps']:,.0f} | {r['mbps']:,.1f} | {r['rss_mb']:.0f} | "
                   f"{r['cpu']:.2f} | {fmt_ratio(r['ratio'])} | {r['check']} |")
    return "\n".join(out)


def render_targets(by, fast, has_decoder) -> str:
    """The issue-3 targets, for the complete report and, when measured, for
    the figures of REPORT.md only (--no-clients)."""
    variants = [("complete report", fast)]
    if by.get("fast-nc") is not None:
        variants.append(("REPORT.md figures only (--no-clients)", by["fast-nc"]))
    lines = ["| target (issue 3) | " + " | ".join(v for v, _ in variants) + " |",
             "| --- |" + " --- |" * len(variants)]
    caveat = "" if has_decoder else " (no fast decoder yet: measured the default decoder)"

    def cell(f, other, name):
        ok = f is not None and f["rc"] == 0
        o = by.get(other) if other else None
        have = ok and (other is None or (o is not None and o["rc"] == 0))
        if not have:
            return "not measured"
        if name == "rss":
            return f"{f['rss_mb']:.0f} MB: {'met' if f['rss_mb'] < TARGETS['rss_mb'] else 'not met'}"
        if name == "tcpdump":
            q = f["wall"] / o["wall"]
            return (f"{q:.2f}x ({f['wall']:.2f} s vs {o['wall']:.2f} s): "
                    f"{'met' if q <= TARGETS['tcpdump_wall'] else 'not met'}{caveat}")
        ratio = f["fps"] / o["fps"]
        return f"{fmt_ratio(ratio)}: {'met' if ratio >= TARGETS[name] else 'not met'}{caveat}"

    for title, other, name in ((">= 50x tshark io,phs frames/s", "tshark", "tshark"),
                               (">= 20x the dpkt loop frames/s", "dpkt", "dpkt"),
                               ("<= 2x tcpdump wall time", "tcpdump", "tcpdump"),
                               ("peak RSS < 150 MB", None, "rss")):
        lines.append(f"| {title} | " + " | ".join(cell(f, other, name) for _, f in variants) + " |")
    return "\n".join(lines)


def render_section(info, path, frames, size, sha, sidecar, gen_note, rows, table, targets,
                   extra, prof, a, taskset, ref_frames, floor) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = os.path.relpath(path, REPO)
    L = [f"## {now}: {os.path.basename(path)} ({frames:,} frames)", ""]
    L.append(f"- date: `{info['date']}`")
    L.append(f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
             f"Linux {info['kernel']}; load average before the run {info['loadavg']}")
    L.append(f"- software: Python {info['python']}, numpy {info['numpy']}, dpkt {info['dpkt']}, "
             f"{info['tshark']}, {info['tcpdump']}; ipv6flow {info['ipv6flow']}")
    mix = ""
    if sidecar:
        e = sidecar["expected"]
        tot = max(1, sidecar["frames"])
        mix = (f"; by construction carrier IPv4 {100 * e['carrier']['ipv4'] / tot:.1f}% / "
               f"IPv6 {100 * e['carrier']['ipv6'] / tot:.1f}% / non-IP {100 * e['carrier']['non_ip'] / tot:.1f}%, "
               f"tunnelled {100 * (tot - e['tunnels'].get('none', 0) - e['carrier']['non_ip']) / tot:.1f}%, "
               f"IPv6 extension headers in {e['ext_header_frames']:,} frames, "
               f"VLAN-tagged {100 * (e['vlan']['dot1q'] + e['vlan']['qinq']) / tot:.1f}%, "
               f"mean frame {sidecar['mean_frame_bytes']} bytes")
    L.append(f"- file: `{name}`, {frames:,} frames, {size:,} bytes ({size / 1e9:.2f} GB), "
             f"sha256 `{sha[:16]}`{mix}")
    if gen_note:
        L.append(f"- {gen_note}")
    pin = "pinned with `taskset -c 0`" if taskset else "NOT pinned (taskset not found)"
    L.append(f"- each tool {pin}, run one after the other, file in the page cache; "
             f"best of {a.repeat} in rounds (every tool once per round); MB = 10^6 bytes; "
             f"wall time and peak RSS from os.wait4 in a "
             f"small launcher (peak RSS floor of the launcher: {floor:.0f} MB, so smaller "
             f"figures read as that)")
    if ref_frames != frames:
        L.append(f"- ipv6flow reference, tshark and the dpkt loop ran on a copy of the first "
                 f"{ref_frames:,} frames (`--reference-frames {ref_frames}`); their frames/s are "
                 f"from that run and the wall time is scaled to the whole file (peak RSS is not "
                 f"scaled: tshark's grows with the file)")
    L.append("")
    L.append("Commands:")
    L.append("")
    for r in rows:
        L.append(f"- {r['label']}: `{r['shown']}`" + (f" ({r['note']})" if r["note"] else ""))
    L.append("")
    L.append(table)
    L.append("")
    L.append(targets)
    L.append("")
    for e in extra:
        L.append(f"- {e}")
    if extra:
        L.append("")
    if prof:
        L.append(prof)
        L.append("")
    return "\n".join(L) + "\n"


HEADER = f"""# ipv6flow benchmark results

Written by `python benchmarks/run.py` (see [README.md](README.md) for what
each row measures and the caveats). One section per run, newest first; the
targets are those of issue 3 (vectorized fast path), measured on the
2-million-frame capture from `benchmarks/generate.py`.

{MARKER}
"""


def write_results(path, section):
    if os.path.exists(path):
        with open(path) as fh:
            text = fh.read()
    else:
        text = HEADER
    if MARKER in text:
        i = text.index(MARKER) + len(MARKER)
        rest = text[i:].strip("\n")
        text = text[:i] + "\n\n" + section.rstrip("\n") + ("\n\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + MARKER + "\n\n" + section
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        fh.write(text.rstrip("\n") + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
