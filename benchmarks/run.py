#!/usr/bin/env python3
"""Benchmark ipv6flow against capinfos, tcpdump, tshark, nfstream and a dpkt loop.

One command, one run, two captures (each made first if missing): the
generated mix (benchmarks/generate.py, our own: large frames, many tunnels
and extension headers) and the real corpus mix (benchmarks/realmix.py: the
Ethernet captures of ../shared joined and repeated), every row on both:

    python benchmarks/run.py                      # both captures, writes RESULTS.md
    python benchmarks/run.py --frames 200000 --real-repeat 2 --no-results   # quick check

Rows, each run pinned to one core (``taskset -c 0``, but ``--workers 2``) one after the other,
with the file in the page cache (dropped from it, then read once while
hashing it: the state a read from disk leaves):

- ipv6flow fast       ``ipv6flow analyze FILE --decoder fast --format json -o OUT``
- ipv6flow fast --no-clients: the same without clients, flows and interface
  identifiers (the figures of REPORT.md only)
- ipv6flow fast --workers 2: the complete report on two processes, the one
  row not pinned (both cores); its report must equal the one-worker report
- ipv6flow reference  ``ipv6flow analyze FILE --decoder reference --format json -o OUT``
- capinfos            ``capinfos -c -M FILE``: Wireshark's C reader walking every
  record, the read floor (steadier than tcpdump)
- tcpdump             ``tcpdump -r FILE -w /dev/null``
- tshark io,phs       ``tshark -q -z io,phs -r FILE``
- nfstream            ``benchmarks/nfstream_meter.py FILE`` in nfstream's own venv:
  one meter, no dissection, no statistics, every flow iterated
- dpkt loop           ``python benchmarks/dpkt_loop.py FILE``

Wall time is measured around each child (Popen .. os.wait4), peak RSS is the
child's ru_maxrss from os.wait4. Best of ``--repeat`` runs, in rounds: every
row on every capture runs once per round, so all rows see the same slow and
fast spells of a shared machine. Each capture's table gives frames/s, MB/s
(10**6 bytes of file per second), peak RSS (10**6 bytes), CPU seconds
(user+sys), and the ratio of ipv6flow-fast frames/s to each row; a table
puts both captures side by side, and the targets of issues 14 and 19 follow.
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
RESULTS = os.path.join(HERE, "RESULTS.md")
MARKER = "<!-- new results sections go below this line, newest first -->"

sys.path.insert(0, HERE)
import generate  # noqa: E402
import realmix  # noqa: E402

# Issue 14 (compiled core), on both captures except where issue 19 says
# otherwise: on the real corpus mix the tshark and dpkt ratios are reported,
# not targeted, and nfstream's target is 10x.
TARGETS = {"tshark": 40.0, "dpkt": 25.0, "nfstream": 15.0, "capinfos_wall": 3.0,
           "w2_capinfos_wall": 2.0, "rss_mb": 150.0}
REAL_TARGETS = {"nfstream": 10.0, "capinfos_wall": 3.0, "w2_capinfos_wall": 2.0,
                "rss_mb": 150.0}


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
    """sha256 of the file; reading it also puts it in the page cache, as a
    read from disk leaves it: the file's cached pages are dropped first
    (``POSIX_FADV_DONTNEED``; no root needed), so every run, whoever wrote
    the file and however it was read before, starts from the same state
    (README.md, "The page cache")."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
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
try:
    from ipv6flow.fast.core import path_name
    helper += "; classifier: " + path_name()
except ImportError:
    pass
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

_COMPILE = ("import compileall, os, ipv6flow; "
            "compileall.compile_dir(os.path.dirname(ipv6flow.__file__), quiet=1)")


def compile_bytecode(cwd: str) -> None:
    """Write the imported ipv6flow's bytecode, as ``pip install`` does: in
    a source tree or an editable install under PYTHONDONTWRITEBYTECODE=1
    (set on our machines) every run would compile its 45 modules again,
    about 0.1 s of start-up a user's install never pays."""
    subprocess.run([sys.executable, "-c", _COMPILE], check=True, cwd=cwd)


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

CAPTURE_TITLES = {"generated": "generated mix (benchmarks/generate.py)",
                  "real": "real corpus mix (benchmarks/realmix.py)", "file": "given file"}
ROW_KEYS = ["fast", "fast-nc", "fast-w2", "reference", "floor-startup", "floor-read", "floor-pass",
            "capinfos", "tcpdump", "tshark", "nfstream", "dpkt"]
IPV6FLOW_ROWS = ("fast", "fast-nc", "fast-w2", "reference")


def nfstream_python(given: str | None) -> str | None:
    """The Python of nfstream's own venv: --nfstream-python, $NFSTREAM_PYTHON,
    or benchmarks/data/nfstream-venv (made by `python -m venv` + `pip install
    nfstream`, see README.md); None when there is none."""
    for cand in (given, os.environ.get("NFSTREAM_PYTHON"),
                 os.path.join(DATA, "nfstream-venv", "bin", "python")):
        if cand and os.path.exists(cand):
            r = subprocess.run([cand, "-c", "import nfstream; print(nfstream.__version__)"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return cand
    return None


def prepare_capture(kind: str, a) -> dict:
    """The capture of one table: made if missing, hashed, read into the cache."""
    gen_note = None
    if kind == "file":
        path = os.path.abspath(a.file)
        if not os.path.exists(path):
            raise SystemExit(f"{a.file}: no such file")
    elif kind == "generated":
        path = generate.default_out(a.frames, None)
        if not (os.path.exists(path) and os.path.exists(generate.sidecar_path(path))):
            print(f"generating {os.path.relpath(path)} ({a.frames:,} frames) ...", file=sys.stderr)
            info = generate.generate(path, a.frames, None, a.seed)
            gen_note = (f"generated for this run in {info['elapsed_s']:.1f} s "
                        f"(benchmarks/generate.py --frames {a.frames} --seed {a.seed})")
    else:
        path = realmix.default_out(a.real_repeat)
        if not (os.path.exists(path) and os.path.exists(path + ".json")):
            print(f"building {os.path.relpath(path)} from ../shared/captures ...", file=sys.stderr)
            info = realmix.build(path, a.real_repeat)
            gen_note = (f"built for this run in {info['elapsed_s']:.1f} s "
                        f"(benchmarks/realmix.py --repeat {a.real_repeat})")
    print(f"reading {os.path.relpath(path, REPO)} once (sha256, page cache) ...", file=sys.stderr)
    sha = hash_and_warm(path)
    size = os.path.getsize(path)
    sidecar = None
    side_path = generate.sidecar_path(path)
    if os.path.exists(side_path):
        with open(side_path) as fh:
            sidecar = json.load(fh)
        if sidecar.get("sha256") != sha:
            print(f"warning: {side_path} does not match the file (sha256 differs); ignoring it",
                  file=sys.stderr)
            sidecar = None
    frames = sidecar["frames"] if sidecar else pcap_records(path)[0]
    cap = dict(kind=kind, title=CAPTURE_TITLES[kind], path=path, frames=frames, size=size,
               sha=sha, sidecar=sidecar, gen_note=gen_note,
               ref_path=path, ref_frames=frames, ref_size=size)
    if a.reference_frames and a.reference_frames < frames:
        cap["ref_path"] = prefix_copy(path, a.reference_frames)
        cap["ref_frames"] = a.reference_frames
        cap["ref_size"] = os.path.getsize(cap["ref_path"])
        hash_and_warm(cap["ref_path"])
    return cap


def capture_rows(cap: dict, a, has_decoder: bool, nfpy: str | None) -> list[dict]:
    """The rows of one capture: dicts of key, label, cmd, file, frames, bytes, note."""
    ipv6flow = [sys.executable, "-m", "ipv6flow.cli", "analyze"]
    path, frames, size = cap["path"], cap["frames"], cap["size"]
    ref = dict(file=cap["ref_path"], frames=cap["ref_frames"], bytes=cap["ref_size"])
    whole = dict(file=path, frames=frames, bytes=size)
    cap["reports"] = {k: os.path.join(DATA, f"report-{cap['kind']}-{k}.json")
                      for k in IPV6FLOW_ROWS}
    rows = []

    def add(key, label, cmd, on, note="", pin=True):
        if key not in a.skip:
            rows.append(dict(key=key, label=label, cmd=cmd, note=note, pin=pin, **on))

    if has_decoder:
        add("fast", "ipv6flow fast", ipv6flow + [path, "--decoder", "fast", "--format", "json",
                                                  "-o", cap["reports"]["fast"]], whole)
        add("fast-nc", "ipv6flow fast --no-clients",
            ipv6flow + [path, "--decoder", "fast", "--no-clients", "--format", "json",
                        "-o", cap["reports"]["fast-nc"]], whole)
        # the one row on both cores: two workers, not pinned
        add("fast-w2", "ipv6flow fast --workers 2 (both cores)",
            ipv6flow + [path, "--decoder", "fast", "--workers", "2", "--format", "json",
                        "-o", cap["reports"]["fast-w2"]], whole, pin=False)
        add("reference", "ipv6flow reference",
            ipv6flow + [cap["ref_path"], "--decoder", "reference", "--format", "json",
                        "-o", cap["reports"]["reference"]], ref)
    else:
        add("fast", "ipv6flow (no --decoder option yet: default decoder)",
            ipv6flow + [path, "--format", "json", "-o", cap["reports"]["fast"]], whole,
            "`--decoder` not accepted by this ipv6flow: ran without it")
    if has_decoder:
        # the floors the complete report stands on (benchmarks/floor.py):
        # start-up alone, ipv6flow's reader alone, the reader and the pass
        floor = [sys.executable, os.path.join(HERE, "floor.py")]
        add("floor-startup", "floor: start-up (imports of an analyze run)",
            floor + ["-", "startup"], whole)
        add("floor-read", "floor: ipv6flow's reader alone", floor + [path, "read"], whole)
        add("floor-pass", "floor: reader + decoder pass (no figures)", floor + [path, "pass"],
            whole)
    if shutil.which("capinfos"):
        # -M: exact counts instead of "1060 k"; the same walk over every record
        add("capinfos", "capinfos -c (the read floor)", ["capinfos", "-c", "-M", path], whole)
    if shutil.which("tcpdump"):
        add("tcpdump", "tcpdump -r FILE -w /dev/null", ["tcpdump", "-r", path, "-w", "/dev/null"],
            whole)
    if shutil.which("tshark"):
        add("tshark", "tshark -q -z io,phs", ["tshark", "-q", "-z", "io,phs", "-r",
                                              cap["ref_path"]], ref)
    if nfpy:
        add("nfstream", "nfstream, one meter",
            [nfpy, os.path.join(HERE, "nfstream_meter.py"), cap["ref_path"]], ref)
    add("dpkt", "dpkt loop", [sys.executable, os.path.join(HERE, "dpkt_loop.py"),
                              cap["ref_path"], "--json"], ref)
    for r in rows:
        r["cap"] = cap["kind"]
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2_000_000,
                    help="the generated capture: N frames (default 2,000,000; "
                         "benchmarks/data/bench-<N>.pcap, generated if missing)")
    ap.add_argument("--captures", nargs="+", choices=["generated", "real"],
                    default=["generated", "real"],
                    help="which captures to measure (default both: the generated mix and "
                         "the real corpus mix, which needs ../shared)")
    ap.add_argument("--real-repeat", type=int, default=realmix.DEFAULT_REPEAT,
                    help=f"the real corpus mix: the corpus repeated K times (default "
                         f"{realmix.DEFAULT_REPEAT}: 1,060,352 frames)")
    ap.add_argument("--file", default=None,
                    help="benchmark an existing classic pcap instead of the two captures")
    ap.add_argument("--seed", type=int, default=6, help="generator seed (default 6)")
    ap.add_argument("--repeat", type=int, default=1, help="best of K runs per tool (default 1)")
    ap.add_argument("--reference-frames", type=int, default=None, metavar="N",
                    help="run the slow rows (ipv6flow reference, tshark, nfstream, dpkt loop) "
                         "on a copy of the first N frames and scale their wall time to the "
                         "whole file: a quick check, not for RESULTS.md (their start-up and "
                         "warm-up are scaled too, which flatters ipv6flow; README.md)")
    ap.add_argument("--skip", action="append", default=[], choices=ROW_KEYS,
                    help="leave a row out (repeatable)")
    ap.add_argument("--nfstream-python", default=None, metavar="PYTHON",
                    help="the Python of a venv with nfstream (default $NFSTREAM_PYTHON, then "
                         "benchmarks/data/nfstream-venv/bin/python; the row is left out "
                         "without one)")
    ap.add_argument("--profile", type=int, default=None, metavar="N",
                    help="also time each stage of a complete run on the whole capture "
                         "(benchmarks/stages.py, fastest of 3), beside the same run with no "
                         "compiled helper (IPV6FLOW_PURE_PYTHON=1), and cProfile ipv6flow (fast "
                         "decoder, or the default one) on the first N frames of each capture: "
                         "the top 10 functions by own time")
    ap.add_argument("--profile-decoder", choices=["fast", "reference"], default="fast",
                    help="decoder for --profile (default fast)")
    ap.add_argument("--no-results", action="store_true",
                    help="print only; do not add a section to benchmarks/RESULTS.md")
    ap.add_argument("--results", default=RESULTS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")

    os.makedirs(DATA, exist_ok=True)
    kinds = ["file"] if a.file else list(dict.fromkeys(a.captures))
    caps = [prepare_capture(k, a) for k in kinds]

    taskset = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    global IPV6FLOW_CWD
    IPV6FLOW_CWD, which = ipv6flow_cwd()
    compile_bytecode(IPV6FLOW_CWD)
    which += "; bytecode compiled first (as `pip install` does)"
    has_decoder, _ = ipv6flow_has_decoder()
    nfpy = nfstream_python(a.nfstream_python)
    if nfpy is None and "nfstream" not in a.skip:
        print("nfstream not found (--nfstream-python): its row is left out", file=sys.stderr)
    rel = lambda p: os.path.relpath(p, REPO)   # noqa: E731

    rows = [r for cap in caps for r in capture_rows(cap, a, has_decoder, nfpy)]
    for cap in caps:
        print(f"file {rel(cap['path'])}: {cap['frames']:,} frames, {cap['size']:,} bytes, "
              f"sha256 {cap['sha'][:16]}", file=sys.stderr)
    floor = measure_once(["true"], os.devnull, os.devnull)["rss_mb"]
    jobs = []
    for r in rows:
        cmd = (taskset if r["pin"] else []) + r["cmd"]
        r["shown"] = " ".join(rel(c) if os.path.isabs(c) and c.startswith(REPO) else c for c in cmd)
        r["shown"] = r["shown"].replace(sys.executable, "python")
        if nfpy:
            r["shown"] = r["shown"].replace(nfpy, "NFSTREAM_PYTHON")
        r["out"] = os.path.join(DATA, f"out-{r['cap']}-{r['key']}.txt")
        jobs.append((cmd, r["out"], os.path.join(DATA, f"err-{r['cap']}-{r['key']}.txt"),
                     IPV6FLOW_CWD if r["key"] in IPV6FLOW_ROWS or r["key"].startswith("floor")
                     else REPO))

    def announce(k, i):
        print(f"  round {k + 1}/{a.repeat}: {rows[i]['shown']}", file=sys.stderr, flush=True)

    by_cap = {cap["kind"]: cap for cap in caps}
    for r, m in zip(rows, measure_rounds(jobs, a.repeat, announce)):
        cap = by_cap[r["cap"]]
        r.update(m)
        r["scaled"] = r["frames"] != cap["frames"]
        r["fps"] = r["frames"] / m["wall"]
        r["mbps"] = r["bytes"] / 1e6 / m["wall"]
        r["wall_full"] = cap["frames"] / r["fps"]
        if r["key"] == "floor-startup":             # reads no frame: a time, not a rate
            r["fps"] = r["mbps"] = None
            r["wall_full"] = m["wall"]
        r["check"] = check_output(r, r["out"], r["out"].replace("out-", "err-"),
                                  cap["reports"].get(r["key"], cap["reports"]["reference"]))
        rate = f"{r['fps']:,.0f} frames/s" if r["fps"] else "no frames"
        print(f"    {r['shown']}: {m['wall']:.2f} s, {rate}, peak RSS "
              f"{m['rss_mb']:.0f} MB, rc {m['rc']}, {r['check']}", file=sys.stderr, flush=True)

    for cap in caps:
        cap["rows"] = [r for r in rows if r["cap"] == cap["kind"]]
        by = cap["by"] = {r["key"]: r for r in cap["rows"]}
        fast = by.get("fast")
        for r in cap["rows"]:
            r["ratio"] = (fast["fps"] / r["fps"]) if fast and fast["rc"] == 0 and r["rc"] == 0 \
                and r["fps"] else None
        extra = cap["extra"] = []
        reps = cap["reports"]
        if "fast" in by and "reference" in by and by["reference"]["file"] == cap["path"] \
                and by["fast"]["rc"] == 0 and by["reference"]["rc"] == 0:
            same = _read(reps["fast"]) == _read(reps["reference"])
            extra.append(f"ipv6flow fast and reference JSON reports byte-identical: "
                         f"{'yes' if same else 'NO'}")
        if "fast" in by and "fast-w2" in by and by["fast"]["rc"] == 0 \
                and by["fast-w2"]["rc"] == 0:
            same = _read(reps["fast"]) == _read(reps["fast-w2"])
            extra.append(f"ipv6flow fast with one worker and with `--workers 2`: JSON reports "
                         f"byte-identical: {'yes' if same else 'NO'}")
        d = by.get("dpkt")
        if d is not None and d["rc"] == 0:
            for key in ("fast", "reference"):
                o = by.get(key)
                if o is not None and o["rc"] == 0 and o["file"] == d["file"]:
                    extra.append(dpkt_vs_ipv6flow(d["out"], reps[key],
                                                  os.path.basename(d["file"]), o["label"]))
                    break
        cap["prof"] = None
        if a.profile:
            cap["prof"] = profile(cap["path"], cap["frames"], min(a.profile, cap["frames"]),
                                  has_decoder and a.profile_decoder, taskset)
        cap["table"] = render_table(cap["rows"], fast)

    info = machine_info()
    info["ipv6flow"] += f"; {which}"
    info["nfstream"] = nfstream_version(nfpy)
    side = render_side_by_side(caps)
    targets = render_targets(caps, has_decoder)
    for cap in caps:
        print(f"\n{cap['title']}: {rel(cap['path'])}\n")
        print(cap["table"])
        for e in cap["extra"]:
            print(e)
        if cap["prof"]:
            print()
            print(cap["prof"])
    print()
    print(side)
    print()
    print(targets)

    if not a.no_results:
        section = render_section(info, caps, side, targets, a, taskset, floor)
        write_results(a.results, section)
        print(f"\nadded a section to {rel(a.results)}", file=sys.stderr)
    return 0


def nfstream_version(nfpy):
    if not nfpy:
        return "not installed"
    return sh([nfpy, "-c", "import nfstream; print(nfstream.__version__)"]) or "?"


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
        if r["key"] in IPV6FLOW_ROWS:
            with open(report_path) as fh:
                got = json.load(fh)["totals"]["packets"]
        elif r["key"] == "tshark":
            # io,phs counts frames under their top protocols (eth here); a
            # frame with no dissectable link layer is under none of them
            got = sum(int(n) for n in re.findall(r"^\S+\s+frames:(\d+)", open(outp).read(),
                                                 re.M))
            if got != want:
                return f"ok (exit 0; io,phs shows {got:,} of {want:,} frames at its top level)"
        elif r["key"] == "floor-startup":
            return "ok (exit 0; start-up only, no frame read)"
        elif r["key"] in ("dpkt", "floor-read", "floor-pass"):
            got = json.loads(open(outp).read())["frames"]
        elif r["key"] == "capinfos":
            m = re.search(r"^Number of packets:\s+(\d+)\s*$", open(outp).read(), re.M)
            got = int(m.group(1)) if m else None
        elif r["key"] == "nfstream":
            # nfstream meters IP packets in flows only: it cannot count frames
            out = json.loads(open(outp).read().strip().splitlines()[-1])
            return f"ok (exit 0; {out['flows']:,} flows of {out['packets']:,} IP packets)"
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


def stages_total(table: str):
    """The run's seconds in a benchmarks/stages.py table (None if absent)."""
    m = re.search(r"\| \*\*the run\*\* .*\| \*\*([0-9.]+)\*\* \|", table)
    return float(m.group(1)) if m else None


STAGE_ROW = re.compile(r"^\| (?P<stage>[^|*]+?) \| (?P<s>[0-9.]+) \| [0-9.]+% \| (?P<note>[^|]*)\|$")


def stage_rows(table: str) -> dict:
    """{stage: (seconds, note)} of a benchmarks/stages.py table."""
    return {m["stage"]: (float(m["s"]), m["note"].strip())
            for m in map(STAGE_ROW.match, table.splitlines()) if m}


def stages_side_by_side(compiled: str, plain: str) -> list[str]:
    """The stage tables of a run with the compiled helpers and of one
    without them (``IPV6FLOW_PURE_PYTHON=1``) as one table: what the
    compiled core changes, stage by stage."""
    a, b = stage_rows(compiled), stage_rows(plain)
    ta, tb = stages_total(compiled), stages_total(plain)
    out = ["| stage | compiled core: s | share | no compiled code: s | compiled saves |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for stage in list(a) + [x for x in b if x not in a]:
        sa, note = a.get(stage, (0.0, ""))
        sb = b.get(stage, (0.0, ""))[0]
        out.append(f"| {stage}{f'; {note}' if note else ''} | {sa:.3f} | "
                   f"{100 * sa / ta:.1f}% | {sb:.3f} | {sb - sa:+.3f} |")
    out.append(f"| **the run** | **{ta:.3f}** | 100% | **{tb:.3f}** | **{tb - ta:+.3f}** |")
    return out


def _fastest_stages(path, dec, taskset, runs, env=None):
    """The table of the fastest of ``runs`` runs of benchmarks/stages.py,
    with its CPU line, or None."""
    got = []
    for _ in range(runs):
        r = subprocess.run([*taskset, sys.executable, os.path.join(HERE, "stages.py"), path,
                            *dec], cwd=IPV6FLOW_CWD, capture_output=True, text=True,
                           env=None if env is None else {**os.environ, **env})
        total = stages_total(r.stdout)
        if r.returncode == 0 and total is not None:
            got.append((total, r.stdout.strip()))
    return min(got)[1] if got else None


def profile(path, frames, n, decoder, taskset) -> str:
    """Where one complete run's time goes: benchmarks/stages.py on the whole
    capture (a timer around each stage's functions; the fastest of three
    runs), beside the same without any compiled helper (the no-compiler
    path), then cProfile's top 10 functions on the first n frames.

    ``decoder`` is "fast", "reference", or False (ipv6flow has no --decoder).
    """
    import pstats
    dec = ["--decoder", decoder] if decoder else []
    shown = " ".join(["ipv6flow analyze", *dec])
    lines = []
    best = _fastest_stages(path, dec, taskset, 3)
    plain = _fastest_stages(path, dec, taskset, 3, {"IPV6FLOW_PURE_PYTHON": "1"}) \
        if best and decoder != "reference" else None
    if best:
        cpu = [ln for ln in best.splitlines() if ln.startswith("CPU of the run")]
        intro = (f"Where the time of `{shown}` goes on the whole capture, by stage "
                 f"(`benchmarks/stages.py`: a wall-clock timer around each stage's functions, "
                 f"one core, the fastest of 3 runs; start-up here leaves out the "
                 f"interpreter's own start, about 20 ms)")
        if plain:
            lines += [intro + ", and what the compiled core changes: the same run with "
                      "`IPV6FLOW_PURE_PYTHON=1` (no compiled helper: the numpy kernel, the "
                      "numpy forms of the analyses and the buffered reader, what an install "
                      "without a compiler runs; fastest of 3):", "",
                      *stages_side_by_side(best, plain)]
        else:
            lines += [intro + ":", "", best.split("\n\nCPU of the run")[0]]
        lines += ["", *(f"{c} (compiled core)" for c in cpu), ""]
    else:
        lines += ["(benchmarks/stages.py failed: no stage table)", ""]
    src = prefix_copy(path, n) if n < frames else path
    pout = os.path.join(DATA, "profile.out")
    _, helptext = ipv6flow_has_decoder()
    stats = ["--stats"] if "--stats" in helptext else []
    cmd = [sys.executable, "-m", "cProfile", "-o", pout, "-m", "ipv6flow.cli", "analyze", src,
           *dec, *stats, "--workers", "1", "--format", "json",
           "-o", os.path.join(DATA, "report-profile.json")]
    r = subprocess.run(cmd, cwd=IPV6FLOW_CWD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    st = pstats.Stats(pout)
    total = st.total_tt
    lines += [f"cProfile of `{shown}` on the first {n:,} frames ({total:.2f} s under the "
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
        if r["rc"] != 0 or r["fps"] is None:
            out.append(f"| {label} | {wall} | - | - | {r['rss_mb']:.0f} | {r['cpu']:.2f} | - | {r['check']} |")
            continue
        out.append(f"| {label} | {wall} | {r['fps']:,.0f} | {r['mbps']:,.1f} | {r['rss_mb']:.0f} | "
                   f"{r['cpu']:.2f} | {fmt_ratio(r['ratio'])} | {r['check']} |")
    return "\n".join(out)


def render_targets(caps, has_decoder) -> str:
    """The speed targets of issue 14 (and, on the real corpus mix, of issue
    19) for the complete report, per capture."""
    lines = ["| target, complete report (`ipv6flow fast`) | " +
             " | ".join(c["title"] for c in caps) + " |",
             "| --- |" + " --- |" * len(caps)]
    caveat = "" if has_decoder else " (no fast decoder: measured the default decoder)"

    def cell(cap, name):
        by = cap["by"]
        f = by.get("fast")
        real = cap["kind"] == "real"
        goals = REAL_TARGETS if real else TARGETS
        if f is None or f["rc"] != 0:
            return "not measured"
        if name == "rss":
            return f"{f['rss_mb']:.0f} MB: {'met' if f['rss_mb'] < goals['rss_mb'] else 'not met'}"
        o = by.get(name)
        if o is None or o["rc"] != 0:
            return "not measured"
        if name in ("capinfos", "fast-w2"):
            if name == "fast-w2":
                f, o, goal = o, by.get("capinfos"), goals["w2_capinfos_wall"]
                if o is None or o["rc"] != 0:
                    return "not measured"
            else:
                goal = goals["capinfos_wall"]
            q = f["wall"] / o["wall"]
            return (f"{q:.2f}x ({f['wall']:.2f} s vs {o['wall']:.2f} s): "
                    f"{'met' if q <= goal else 'not met'}{caveat}")
        ratio = f["fps"] / o["fps"]
        if name not in goals:
            return f"{fmt_ratio(ratio)} (reported, not targeted)"
        return f"{fmt_ratio(ratio)}: {'met' if ratio >= goals[name] else 'not met'}{caveat}"

    for title, name in (("wall time <= 3x `capinfos -c`", "capinfos"),
                        ("`--workers 2` (both cores) wall time <= 2x `capinfos -c`", "fast-w2"),
                        (">= 15x nfstream frames/s (10x on the real corpus mix)", "nfstream"),
                        (">= 40x tshark io,phs frames/s (generated mix)", "tshark"),
                        (">= 25x the dpkt loop frames/s (generated mix)", "dpkt"),
                        ("peak RSS < 150 MB", "rss")):
        lines.append(f"| {title} | " + " | ".join(cell(c, name) for c in caps) + " |")

    def floor_cell(cap, name):
        by = cap["by"]
        o, c = by.get(name), by.get("capinfos")
        if o is None or o["rc"] != 0 or c is None or c["rc"] != 0:
            return "not measured"
        return f"{o['wall']:.2f} s = {o['wall'] / c['wall']:.2f}x `capinfos -c` (reported)"

    for title, name in (("floor: start-up alone", "floor-startup"),
                        ("floor: ipv6flow's reader alone", "floor-read"),
                        ("floor: reader + decoder pass, no figures", "floor-pass")):
        lines.append(f"| {title} | " + " | ".join(floor_cell(c, name) for c in caps) + " |")
    return "\n".join(lines)


def render_side_by_side(caps) -> str:
    """Every row on every capture: wall time, µs per frame, and the ratio of
    ipv6flow fast's frames/s to the row's."""
    keys = list(dict.fromkeys(r["key"] for c in caps for r in c["rows"]))
    head = ["tool"]
    for c in caps:
        head += [f"{c['kind']}: wall s", f"{c['kind']}: µs/frame", f"{c['kind']}: fast ÷ this"]
    out = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for k in keys:
        label = next(r["label"] for c in caps for r in c["rows"] if r["key"] == k)
        cells = [label]
        for c in caps:
            r = c["by"].get(k)
            if r is None or r["rc"] != 0:
                cells += ["-", "-", "-"]
                continue
            wall = f"{r['wall_full']:.2f}" + (" (scaled)" if r["scaled"] else "")
            cells += [wall, f"{1e6 / r['fps']:.2f}" if r["fps"] else "-", fmt_ratio(r["ratio"])]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _capture_line(cap) -> str:
    name = os.path.relpath(cap["path"], REPO)
    frames, size, sidecar = cap["frames"], cap["size"], cap["sidecar"]
    mix = ""
    if sidecar and "expected" in sidecar:
        e = sidecar["expected"]
        tot = max(1, sidecar["frames"])
        mix = (f"; by construction carrier IPv4 {100 * e['carrier']['ipv4'] / tot:.1f}% / "
               f"IPv6 {100 * e['carrier']['ipv6'] / tot:.1f}% / non-IP {100 * e['carrier']['non_ip'] / tot:.1f}%, "
               f"tunnelled {100 * (tot - e['tunnels'].get('none', 0) - e['carrier']['non_ip']) / tot:.1f}%, "
               f"IPv6 extension headers in {e['ext_header_frames']:,} frames, "
               f"VLAN-tagged {100 * (e['vlan']['dot1q'] + e['vlan']['qinq']) / tot:.1f}%, "
               f"mean frame {sidecar['mean_frame_bytes']} bytes")
    elif sidecar and "sources" in sidecar:
        mix = (f"; the {sidecar['sources']} Ethernet captures of ../shared/captures "
               f"({sidecar['frames_once']:,} frames) joined and repeated {sidecar['repeat']} "
               f"times, {(size - 24) / frames - 16:.0f} bytes a frame on average")
    line = (f"- {cap['title']}: `{name}`, {frames:,} frames, {size:,} bytes "
            f"({size / 1e9:.2f} GB), sha256 `{cap['sha'][:16]}`{mix}")
    if cap["gen_note"]:
        line += f"; {cap['gen_note']}"
    return line


def render_section(info, caps, side, targets, a, taskset, floor) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = " and ".join(f"{os.path.basename(c['path'])} ({c['frames']:,} frames)" for c in caps)
    L = [f"## {now}: {names}", ""]
    L.append(f"- date: `{info['date']}`")
    L.append(f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
             f"Linux {info['kernel']}; load average before the run {info['loadavg']}")
    L.append(f"- software: Python {info['python']}, numpy {info['numpy']}, dpkt {info['dpkt']}, "
             f"nfstream {info['nfstream']}, {info['tshark']}, {info['tcpdump']}; "
             f"ipv6flow {info['ipv6flow']}")
    for cap in caps:
        L.append(_capture_line(cap))
    pin = ("pinned with `taskset -c 0` (but `--workers 2`, on both cores)" if taskset
           else "NOT pinned (taskset not found)")
    L.append(f"- each tool {pin}, run one after the other, file in the page cache (dropped "
             f"from it with posix_fadvise DONTNEED, then read once: as a read from disk leaves "
             f"it); "
             f"best of {a.repeat} in rounds (every tool on every capture once per round); "
             f"MB = 10^6 bytes; wall time and peak RSS from os.wait4 in a "
             f"small launcher (peak RSS floor of the launcher: {floor:.0f} MB, so smaller "
             f"figures read as that)")
    if any(c["ref_frames"] != c["frames"] for c in caps):
        L.append(f"- ipv6flow reference, tshark, nfstream and the dpkt loop ran on a copy of "
                 f"the first {a.reference_frames:,} frames (`--reference-frames`); their "
                 f"frames/s are from that run and the wall time is scaled to the whole file")
    L.append("")
    L.append("Both captures side by side:")
    L.append("")
    L.append(side)
    L.append("")
    L.append(targets)
    L.append("")
    for cap in caps:
        L.append(f"### {cap['title']}")
        L.append("")
        L.append("Commands:")
        L.append("")
        for r in cap["rows"]:
            L.append(f"- {r['label']}: `{r['shown']}`" + (f" ({r['note']})" if r["note"] else ""))
        L.append("")
        L.append(cap["table"])
        L.append("")
        for e in cap["extra"]:
            L.append(f"- {e}")
        if cap["extra"]:
            L.append("")
        if cap["prof"]:
            L.append(cap["prof"])
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
