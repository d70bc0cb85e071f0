#!/usr/bin/env python3
"""How many frames/s `ipv6flow live` takes without a kernel drop (issue 14).

    sudo python benchmarks/live_rate.py                  # both readers; adds a section to RESULTS.md
    sudo python benchmarks/live_rate.py --no-results --readers compiled --seconds 2

The link is a veth pair between two network namespaces, as in
tests/test_live.py (IPv6 off, no addresses: the link carries only what is
sent). The sender replays the benchmark mix (benchmarks/data/bench-200k.pcap
from generate.py, looped) on one end from a raw AF_PACKET socket with
``sendmmsg`` (batches of frames per system call through ctypes, qdisc
bypassed: a sender at C speed), pinned to one core; ``capture_live`` (the
fast decoder, the complete report with clients and flows) captures on the
other end, pinned to the other core. The kernel's receive work (veth, the
packet socket's copy into the TPACKET_V3 ring) runs in the sender's system
call, on the sender's core, so the capture's core does only ipv6flow's work.

Measured, for each reader (``compiled``: ipv6flow._livecap; ``ctypes``: the
pcap_next_ex loop it replaces):

* the feed: the sender alone at top speed (nothing capturing): the most
  this machine's sender core and kernel can put on the link;
* top speed with the capture running: frames sent and their rate, frames
  the capture got, kernel drops, and the capture's CPU time per frame (from
  the moment it listens to its end, so start-up is not in it): one core's
  capacity is 1 / that;
* the highest rate at which every frame sent is captured with no kernel
  drop: the top-speed run's rate when nothing was lost there (the feed is
  then the limit, and the capture's CPU time per frame says how far off its
  own is), else found by bisection on a paced sender (frames spread evenly
  in time) between a rate that passed and one that did not, each trial
  sending ``--seconds`` worth of frames (at least ``--min-frames``, several
  ring-fulls, so the 32 MiB ring cannot hide a deficit). A trial passes
  when the capture got every frame sent and the kernel dropped none; its
  rate is the rate the sender achieved.
* with ``--profile``: where the capture's time goes at top speed (cProfile
  of the capture process, top functions by own time).

Needs root (namespaces, raw sockets), iproute2 and libpcap; taskset if
present. On a machine that others share, the figures move with their load:
the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402
import run  # noqa: E402

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
MTU = 9000
READERS = ("compiled", "ctypes")

# struct msghdr / mmsghdr / iovec on 64-bit Linux
MMSG = np.dtype({"names": ["name", "namelen", "iov", "iovlen", "control", "controllen",
                           "flags", "len"],
                 "formats": ["u8", "u4", "u8", "u8", "u8", "u8", "i4", "u4"],
                 "offsets": [0, 8, 16, 24, 32, 40, 48, 56], "itemsize": 64})
IOVEC = np.dtype({"names": ["base", "len"], "formats": ["u8", "u8"], "offsets": [0, 8],
                  "itemsize": 16})


# -- the sender (runs in the sending namespace) ---------------------------------

def load_frames(path):
    """All frames of a classic pcap as (one uint8 buffer, offsets, lengths)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from ipv6flow.capture import open_capture
    data, offs, lens = [], [], []
    at = 0
    with open_capture(path) as cap:
        for rec in cap:
            data.append(rec.data)
            offs.append(at)
            lens.append(len(rec.data))
            at += len(rec.data)
    return np.frombuffer(b"".join(data), dtype=np.uint8).copy(), np.array(offs), np.array(lens)


def send(iface, path, frames, rate, batch):
    """Send ``frames`` frames of ``path`` (looped) on ``iface`` at ``rate``
    frames/s (0: as fast as possible); returns (sent, seconds, retries)."""
    buf, offs, lens = load_frames(path)
    n = len(offs)
    iov = np.zeros(n, dtype=IOVEC)
    iov["base"] = buf.ctypes.data + offs
    iov["len"] = lens
    msgs = np.zeros(n, dtype=MMSG)
    msgs["iov"] = iov.ctypes.data + np.arange(n, dtype=np.uint64) * IOVEC.itemsize
    msgs["iovlen"] = 1
    libc = ctypes.CDLL(None, use_errno=True)
    sendmmsg = libc.sendmmsg
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)     # protocol 0: sends only
    s.bind((iface, 0))
    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    fd, base = s.fileno(), msgs.ctypes.data
    sent = retries = 0
    at = 0
    t0 = time.perf_counter()
    while sent < frames:
        k = min(batch, frames - sent, n - at)
        if rate:
            due = t0 + sent / rate
            while True:
                now = time.perf_counter()
                if now >= due:
                    break
                if due - now > 0.002:
                    time.sleep(due - now - 0.001)
        r = sendmmsg(fd, base + at * MMSG.itemsize, k, 0)
        if r <= 0:
            retries += 1                 # ENOBUFS: the device queue is full; try again
            time.sleep(0.0001)
            continue
        sent += r
        at = (at + r) % n
    took = time.perf_counter() - t0
    s.close()
    return sent, took, retries


# -- the capture (runs in the capturing namespace) ------------------------------

def capture(iface, count, reader, decoder, profile=False):
    """capture_live until ``count`` frames or SIGINT; prints READY once
    listening, then a JSON line with the stats and CPU seconds (and the
    top functions of a cProfile with ``profile``)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from ipv6flow.engine import live
    if reader == "ctypes":
        live._livecap = None
    elif live._livecap is None:
        raise SystemExit("the compiled helper ipv6flow._livecap is not built")
    ready = {}

    def on_status(line):
        if line.startswith("listening"):
            t = os.times()
            ready["cpu"] = t.user + t.system
            print("READY", flush=True)

    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    from ipv6flow.options import Options
    result = live.capture_live(iface, Options(count=count, status_every=0, decoder=decoder),
                               on_status=on_status)
    summary = result.summary
    st = {**result.capture, "frames": result.frames}
    t = os.times()
    st["cpu"] = t.user + t.system - ready.get("cpu", 0.0)
    if prof is not None:
        prof.disable()
        st["profile"] = top_functions(prof, 12)
    st["ipv6_packets"] = summary.to_report()["payload"]["ipv6"]["packets"]
    print("STATS " + json.dumps(st), flush=True)


def top_functions(prof, n):
    """The ``n`` functions with the most own time: (own s, share, calls, name)."""
    import pstats
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values()) or 1.0
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:n]
    root = os.path.dirname(HERE) + os.sep
    return [(v[2], v[2] / total, v[1], f"{k[0].replace(root, '')}:{k[1]}({k[2]})")
            for k, v in rows]


# -- the driver -----------------------------------------------------------------

def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class Veth:
    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.ns_a, self.ns_b = f"v6rate-a{tag}", f"v6rate-b{tag}"
        self.if_a, self.if_b = f"v6ra{tag}", f"v6rb{tag}"

    def __enter__(self):
        for ns in (self.ns_a, self.ns_b):
            ip("netns", "add", ns)
        ip("link", "add", self.if_a, "netns", self.ns_a, "type", "veth", "peer", "name",
           self.if_b, "netns", self.ns_b)
        for ns, ifname in ((self.ns_a, self.if_a), (self.ns_b, self.if_b)):
            subprocess.run(["ip", "netns", "exec", ns, "sh", "-c",
                            f"echo 1 > /proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"],
                           check=True)
            ip("-n", ns, "link", "set", ifname, "mtu", str(MTU))
            ip("-n", ns, "link", "set", ifname, "up")
        return self

    def __exit__(self, *exc):
        for ns in (self.ns_a, self.ns_b):
            ip("netns", "del", ns, check=False)


def pinned(cpu, cmd):
    if shutil.which("taskset") and cpu is not None:
        return ["taskset", "-c", str(cpu)] + cmd
    return cmd


def run_sender(veth, a, frames, rate):
    cmd = ["ip", "netns", "exec", veth.ns_b] + pinned(a.sender_cpu, [
        sys.executable, __file__, "--send", veth.if_b, a.source, str(frames), str(rate),
        str(a.batch)])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"sender failed: {r.stderr.strip()}")
    sent, took, retries = json.loads(r.stdout.strip().splitlines()[-1])
    return {"sent": sent, "seconds": took, "rate": sent / took, "retries": retries}


def trial(veth, a, reader, frames, rate, profile=False):
    """One capture while the sender sends ``frames`` at ``rate`` (0: top speed)."""
    cmd = ["ip", "netns", "exec", veth.ns_a] + pinned(a.capture_cpu, [
        sys.executable, __file__, "--capture", veth.if_a, str(frames), reader, a.decoder]
        + (["--profile"] if profile else []))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    got_ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("READY"):
                got_ready.set()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    if not got_ready.wait(60):
        proc.kill()
        raise SystemExit(f"capture never listened: {proc.stderr.read()}")
    sent = run_sender(veth, a, frames, rate)
    try:
        proc.wait(3)                     # ends by itself at --count when nothing was lost
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # some were lost: drain the ring and stop
        proc.wait(30)
    t.join(10)
    stats = [json.loads(x[6:]) for x in lines if x.startswith("STATS ")]
    if proc.returncode != 0 or not stats:
        raise SystemExit(f"capture failed: {proc.stderr.read()}")
    st = stats[0]
    ok = st["frames"] == sent["sent"] and st["dropped"] == 0
    return {"reader": reader, "target": rate, **sent, "captured": st["frames"],
            "kernel_dropped": st["dropped"], "kernel_received": st["received"],
            "cpu": st["cpu"],
            "us_per_frame": 1e6 * st["cpu"] / max(st["frames"], 1), "reader_ran": st["reader"],
            "profile": st.get("profile"), "ok": ok}


def say(r):
    tgt = "top speed" if not r["target"] else f"{r['target']:,.0f}/s"
    print(f"  {r['reader']:8} {tgt:>12}: sent {r['sent']:,} at {r['rate']:,.0f}/s, "
          f"captured {r['captured']:,}, kernel drops {r['kernel_dropped']:,}, capture CPU "
          f"{r['us_per_frame']:.2f} us/frame -> {'ok' if r['ok'] else 'LOST'}", flush=True)


def search(veth, a, reader, top):
    """The highest rate with nothing lost: the top-speed run's when it lost
    nothing, else bisection on the paced rate below it."""
    if top["ok"]:
        return top["rate"], "feed", []
    lo, hi, best = 0.0, top["rate"], 0.0
    trials = []
    rate = min(a.start or hi * 0.5, hi)
    for _ in range(a.steps):
        frames = max(int(rate * a.seconds), a.min_frames)
        r = trial(veth, a, reader, frames, int(rate))
        say(r)
        trials.append(r)
        if r["ok"]:
            lo = rate
            best = max(best, r["rate"])
            if r["rate"] < 0.97 * rate:
                return best, "feed", trials      # nothing lost, but the sender fell behind
            if rate >= hi * 0.97:
                break
        else:
            hi = rate
        rate = (lo + hi) / 2 if lo else hi / 2
    return best, "capture", trials


def render(info, feed, tops, best, limit, trials, a):
    lines = [f"## Live capture rate, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: "
             "the benchmark mix on a veth pair (issue 14)", ""]
    lines += [f"- date: `{info['date']}`",
              f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, Linux "
              f"{info['kernel']}; load average before the run {info['loadavg']}",
              f"- software: Python {info['python']}, numpy {info['numpy']}; ipv6flow "
              f"{info['ipv6flow']}",
              f"- link: veth pair between two network namespaces, MTU {MTU}; sender: the "
              f"frames of `{os.path.relpath(a.source, run.REPO)}` looped, raw AF_PACKET "
              f"socket, `sendmmsg` of {a.batch} frames, qdisc bypassed, pinned to CPU "
              f"{a.sender_cpu}; capture: `capture_live` (`ipv6flow live`), decoder "
              f"{a.decoder}, complete report, 32 MiB ring, pinned to CPU {a.capture_cpu}",
              "- command: `" + " ".join(["python", "benchmarks/live_rate.py"] + sys.argv[1:])
              + "`",
              f"- feed (the sender alone, nothing capturing): {feed['rate']:,.0f} frames/s "
              f"({feed['sent']:,} frames in {feed['seconds']:.2f} s)", ""]
    lines += ["| reader | highest rate with nothing lost | limited by | top speed: sent/s | "
              "captured | kernel drops | capture CPU µs/frame | one core's capacity (1/CPU) |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for reader in a.readers:
        t = tops[reader]
        lines.append(f"| {reader} | {best[reader]:,.0f} frames/s | {limit[reader]} | "
                     f"{t['rate']:,.0f} | {t['captured']:,} of {t['sent']:,} | "
                     f"{t['kernel_dropped']:,} | {t['us_per_frame']:.2f} | "
                     f"{1e6 / t['us_per_frame']:,.0f} frames/s |")
    if all(r in best for r in READERS) and best["ctypes"]:
        lines += ["", f"Compiled over ctypes: {best['compiled'] / best['ctypes']:.2f}x the "
                  "highest rate with nothing lost"
                  + (" (the compiled figure is the feed's: a floor)"
                     if limit["compiled"] == "feed" else "")
                  + f", {tops['ctypes']['us_per_frame'] / tops['compiled']['us_per_frame']:.2f}x "
                  "less capture CPU per frame at top speed, one core's capacity "
                  f"{tops['ctypes']['us_per_frame'] / tops['compiled']['us_per_frame']:.2f}x."]
    lines += ["", "Every trial (paced: frames spread evenly; a trial is ok when every frame "
              "sent was captured and the kernel dropped none):", "",
              "| reader | target frames/s | sent | sent/s | captured | kernel drops | "
              "capture CPU µs/frame | ok |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
              "--- |"]
    for r in trials:
        target = f"{r['target']:,}" if r["target"] else "top speed"
        lines.append(f"| {r['reader']} | {target} | {r['sent']:,} | {r['rate']:,.0f} | "
                     f"{r['captured']:,} | {r['kernel_dropped']:,} | {r['us_per_frame']:.2f} | "
                     f"{'ok' if r['ok'] else 'lost'} |")
    for reader in a.readers:
        prof = tops[reader].get("profile")
        if not prof:
            continue
        lines += ["", f"cProfile of the capture at top speed, {reader} reader (the run above), "
                  "top functions by own time:", "", "| own s | % | calls | function |",
                  "| ---: | ---: | ---: | --- |"]
        lines += [f"| {own:.2f} | {100 * share:.0f}% | {calls:,} | `{name}` |"
                  for own, share, calls, name in prof]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--send", nargs=5, metavar=("IFACE", "PCAP", "FRAMES", "RATE", "BATCH"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--capture", nargs=4, metavar=("IFACE", "COUNT", "READER", "DECODER"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true",
                    help="profile the capture in a second top-speed run of each reader")
    ap.add_argument("--source", default=None,
                    help="pcap to replay (default: benchmarks/data/bench-200k.pcap, generated)")
    ap.add_argument("--readers", nargs="+", choices=READERS, default=list(READERS))
    ap.add_argument("--decoder", choices=("fast", "reference"), default="fast")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a paced trial")
    ap.add_argument("--min-frames", type=int, default=200_000)
    ap.add_argument("--top-frames", type=int, default=2_000_000,
                    help="frames sent at top speed")
    ap.add_argument("--steps", type=int, default=7, help="bisection steps per reader")
    ap.add_argument("--start", type=float, default=0, help="first paced rate tried")
    ap.add_argument("--batch", type=int, default=256, help="frames per sendmmsg")
    ap.add_argument("--capture-cpu", type=int, default=0)
    ap.add_argument("--sender-cpu", type=int, default=1)
    ap.add_argument("--no-results", action="store_true")
    a = ap.parse_args(argv)
    if a.send:
        iface, path, frames, rate, batch = a.send
        print(json.dumps(send(iface, path, int(frames), float(rate), int(batch))))
        return 0
    if a.capture:
        iface, count, reader, decoder = a.capture
        capture(iface, int(count), reader, decoder, a.profile)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, raw sockets)")
    if a.source is None:
        a.source = generate.default_out(200_000, None)
        if not os.path.exists(a.source):
            os.makedirs(run.DATA, exist_ok=True)
            generate.generate(a.source, 200_000, None, 6)
    a.source = os.path.abspath(a.source)
    info = run.machine_info()
    print(f"load average {info['loadavg']}; source {a.source}", flush=True)
    tops, best, limit, trials = {}, {}, {}, []
    with Veth() as veth:
        feed = run_sender(veth, a, a.top_frames, 0)
        print(f"  feed (no capture): {feed['rate']:,.0f} frames/s", flush=True)
        for reader in a.readers:
            r = trial(veth, a, reader, a.top_frames, 0)
            say(r)
            if r["reader_ran"] != reader:
                raise SystemExit(f"asked for the {reader} reader, {r['reader_ran']} ran")
            tops[reader] = r
            trials.append(r)
        for reader in a.readers:
            best[reader], limit[reader], t = search(veth, a, reader, tops[reader])
            trials += t
            print(f"  {reader}: highest rate with nothing lost {best[reader]:,.0f} frames/s "
                  f"(limited by the {limit[reader]})", flush=True)
        if a.profile:
            for reader in a.readers:
                r = trial(veth, a, reader, a.top_frames, 0, profile=True)
                tops[reader]["profile"] = r["profile"]
    section = render(info, feed, tops, best, limit, trials, a)
    print()
    print(section)
    if not a.no_results:
        run.write_results(run.RESULTS, section)
        print(f"added to {run.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
