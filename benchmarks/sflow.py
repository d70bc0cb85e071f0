#!/usr/bin/env python3
"""sFlow through the fast path: samples per second on one core.

    python benchmarks/sflow.py [--frames N] [--rate R] [--runs K]

Writes ``data/bench-sflow-<N>.pcap``: the benchmark mix (generate.py, its
default seed) sampled 1 in ``R`` at random (seeded), each sample's first
128 bytes in a raw packet header record (Ethernet, frame_length counting
the FCS, stripped 4), 8 flow samples per sFlow v5 datagram, the datagrams
over IPv4/UDP to port 6343 in a classic pcap, as an agent's export would
be captured. Then times ``ipv6flow analyze --sflow --workers 1`` on it
(the whole report, fast decoder) ``--runs`` times and prints the best
wall time and the best CPU time (user + system, of the child): the machine
is shared, so the best of several runs is the figure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from ipv6flow.capture import open_capture          # noqa: E402
from ipv6flow.capture.sflow import udp_frame       # noqa: E402

PER_DATAGRAM = 8
HEADER = 128


def u32(x):
    return struct.pack(">I", x)


def sample(frame: bytes, wirelen: int, seq: int, rate: int) -> bytes:
    head = frame[:HEADER]
    pad = bytes(-len(head) % 4)
    rec = u32(1) + u32(wirelen + 4) + u32(4) + u32(len(head)) + head + pad
    body = (u32(seq) + u32(3) + u32(rate) + u32(seq * rate) + u32(0) + u32(3) + u32(4) + u32(1)
            + u32(1) + u32(len(rec)) + rec)
    return u32(1) + u32(len(body)) + body


def write_sflow(src: str, out: str, rate: int, seed: int = 1) -> tuple[int, int]:
    rng = random.Random(seed)
    samples, datagrams = [], 0
    n = 0
    with open(out, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))

        def flush(ts):
            nonlocal datagrams
            datagrams += 1
            d = (u32(5) + u32(1) + bytes([192, 0, 2, 1]) + u32(0) + u32(datagrams) + u32(0)
                 + u32(len(samples)) + b"".join(samples))
            f = udp_frame("192.0.2.1", 50000, "192.0.2.2", 6343, d)
            sec = int(ts)
            fh.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(f), len(f)) + f)
            samples.clear()

        with open_capture(src) as cap:
            for ts, lt, wire, data in cap:
                if rng.random() * rate >= 1:
                    continue
                n += 1
                samples.append(sample(data, wire, n, rate))
                if len(samples) == PER_DATAGRAM:
                    flush(ts)
            if samples:
                flush(ts)
    return n, datagrams


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=2_000_000,
                    help="frames of the benchmark mix to sample from (default 2M)")
    ap.add_argument("--rate", type=int, default=1, help="1 in RATE (default 1: every frame)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    data = os.path.join(HERE, "data")
    os.makedirs(data, exist_ok=True)
    label = f"{args.frames // 1000}k" if args.frames < 1_000_000 else f"{args.frames // 10**6}M"
    bench = os.path.join(data, f"bench-{label}.pcap")
    if not os.path.exists(bench):
        subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--frames",
                        str(args.frames), "--out", bench, "-q"], check=True)
    out = os.path.join(data, f"bench-sflow-{label}-r{args.rate}.pcap")
    if not os.path.exists(out):
        n, d = write_sflow(bench, out, args.rate)
    else:
        n = d = None
    times, cpus = [], []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--sflow",
                              "--workers", "1", "--format", "json", "--no-progress", out],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    rep = json.loads(res.stdout)
    samples = rep["sampling"]["samples"]
    best = min(times)
    print(json.dumps({"file": os.path.relpath(out, ROOT), "bytes": os.path.getsize(out),
                      "samples": samples, "datagrams": rep["sampling"]["datagrams"],
                      "runs_s": [round(x, 2) for x in times], "best_s": round(best, 2),
                      "samples_per_s": round(samples / best),
                      "cpu_s": [round(x, 2) for x in cpus], "best_cpu_s": round(min(cpus), 2),
                      "samples_per_cpu_s": round(samples / min(cpus)),
                      "machine": platform.processor()
                      or platform.machine(), "cpus": os.cpu_count(),
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1))


if __name__ == "__main__":
    main()
