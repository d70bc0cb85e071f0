#!/usr/bin/env python3
"""Memory of ``ipv6flow analyze`` on large hostile captures, measured.

    python tests/hostile/memory.py generate KIND OUT.pcap [--size-mb N]
    python tests/hostile/memory.py measure FILE... [--decoder fast] [--workers 1]
    python tests/hostile/memory.py all [--dir /tmp/ipv6flow-memory] [--size-mb 1024]

KIND (each a classic Ethernet pcap, written with numpy in large blocks, so
a GiB takes seconds; write it to /tmp, never into the repository):

* ``addresses``: random IPv6 source and destination on every frame, a
  tenth of the destinations in 64:ff9b::/96 (random embedded IPv4, so the
  NAT64 client and destination counts see millions of distinct values),
  behind random extension-header chains of 0..12 headers (256 templates of
  random types, lengths and upper layers);
* ``bins``: the same frames, each one in a time bin of its own (timestamps
  61 s apart: the time series is keyed by attacker-chosen timestamps);
* ``dns-names``: DNS responses (UDP from port 53), each for a different
  random name with a random AAAA (the DNS state is keyed by names);
* ``dns-bodies``: distinct 60 kB DNS responses (messages are held before
  they are parsed; MAX_PENDING counts them, not their bytes);
* ``dns-answers``: one name, a different random AAAA from a different
  resolver address in every response (names are capped, answers and
  resolvers per name are not).

``measure`` runs ``python -m ipv6flow.cli analyze`` through a small
launcher that forks it and reads ``os.wait4`` (peak RSS of a forked child
starts at the size of its parent: see benchmarks/README.md) and prints
wall time, peak RSS (MB = 10**6 bytes) and the frames reported.
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate as g  # noqa: E402

BLOCK = 8192                # frames per template block


def _templates(rng, count=256):
    """(bytes of an Ethernet frame, offset of the IPv6 source) for random
    extension chains and upper layers."""
    out = []
    for _ in range(count):
        types = [rng.choice((0, 43, 44, 51, 60, 135, 139, 140, 253, 254))
                 for _ in range(rng.choice((0, 0, 0, 1, 2, 3, 5, 8, 12)))]
        nh, body = g.chain(types, rng.choice((6, 17, 58, 59)), rng.randbytes(rng.randint(0, 24)))
        out.append((g.eth(g.ip6(body, nh)), 14 + 8))
    return out


def _write_blocks(fh, make_block, size):
    written = 24
    fh.write(g.pcap_header())
    k = 0
    while written < size:
        blob = make_block(k)
        fh.write(blob)
        written += len(blob)
        k += 1
    return written


def gen_addresses(path, size, spread=False, seed=1):
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    templates = _templates(rng)
    wkp = np.frombuffer(bytes.fromhex("0064ff9b0000000000000000"), dtype=np.uint8)
    t0 = g.T0

    def block(k):
        frame, src_at = templates[k % len(templates)]
        n, flen = BLOCK, len(frame)
        rec = np.zeros((n, 16 + flen), dtype=np.uint8)
        rec[:, 16:] = np.frombuffer(frame, dtype=np.uint8)
        first = k * BLOCK
        step = 61 if spread else 0
        ts = (t0 + (np.arange(first, first + n, dtype=np.int64) * step if spread
                    else (np.arange(first, first + n) // 10000))).astype("<u4")
        rec[:, 0:4] = ts.view(np.uint8).reshape(n, 4)
        rec[:, 8:12] = np.frombuffer(struct.pack("<I", flen), dtype=np.uint8)
        rec[:, 12:16] = np.frombuffer(struct.pack("<I", flen), dtype=np.uint8)
        s = 16 + src_at
        rec[:, s:s + 32] = nprng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        nat = np.arange(n) % 10 == 0
        rec[nat, s + 16:s + 28] = wkp
        return rec.tobytes()

    with open(path, "wb") as fh:
        return _write_blocks(fh, block, size)


def gen_dns_names(path, size, seed=2):
    rng = random.Random(seed)

    def block(k):
        parts = []
        for i in range(2048):
            name = rng.randbytes(rng.randint(4, 40)).replace(b".", b"_") + b".example"
            q = g.dns_name(name)
            m = g.dns_msg(i, 0x8180, [(q, 28)], [(g.u16(0xC00C), 28, rng.randbytes(16))])
            f = g.dns_frames(True, m)
            parts.append(g.pcap_record(f, ts=k))
        return b"".join(parts)

    with open(path, "wb") as fh:
        return _write_blocks(fh, block, size)


def gen_dns_bodies(path, size, seed=3):
    rng = random.Random(seed)
    q = g.dns_name(b"big.example")

    def block(k):
        parts = []
        for i in range(16):
            m = g.dns_msg(i, 0x8180, [(q, 1)], [(g.u16(0xC00C), 1, bytes(4))]) \
                + rng.randbytes(16) + bytes(60000)
            f = g.dns_frames(False, m)
            parts.append(g.pcap_record(f, ts=k))
        return b"".join(parts)

    with open(path, "wb") as fh:
        return _write_blocks(fh, block, size)


def gen_dns_answers(path, size, seed=4):
    """One name, a different random AAAA (from a different resolver) in
    every response: the DNS state is capped by names, not answers."""
    rng = random.Random(seed)
    q = g.dns_name(b"one.example")

    def block(k):
        parts = []
        for i in range(4096):
            m = g.dns_msg(i, 0x8180, [(q, 28)], [(g.u16(0xC00C), 28, rng.randbytes(16))])
            f = g.eth(g.ip6(g.udp(m, 53, 40000), 17, rng.randbytes(16), g.V6_A))
            parts.append(g.pcap_record(f, ts=k))
        return b"".join(parts)

    with open(path, "wb") as fh:
        return _write_blocks(fh, block, size)


GENERATORS = {
    "addresses": lambda p, s: gen_addresses(p, s),
    "bins": lambda p, s: gen_addresses(p, s, spread=True),
    "dns-names": gen_dns_names,
    "dns-bodies": gen_dns_bodies,
    "dns-answers": gen_dns_answers,
}

_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "ipv6flow.cli"] + sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss]))
"""


def run_peak(args, timeout=None):
    """``python -m ipv6flow.cli ARGS`` through the launcher: (exit code,
    peak RSS in kB as os.wait4 gives it, wall seconds, stderr text)."""
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, *map(str, args)], capture_output=True,
                       timeout=timeout, cwd=str(HERE.parents[1]))
    code, rss_kb = json.loads(r.stdout.decode().splitlines()[-1])
    return code, rss_kb, time.perf_counter() - started, r.stderr.decode("utf-8", "replace")


def measure(path, decoder="fast", workers=1, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        args = ["analyze", "--no-progress", "--decoder", decoder, "--workers", str(workers),
                "--format", "json", "-o", str(out), *extra, str(path)]
        code, rss_kb, wall, err = run_peak(args)
        frames = None
        if out.exists():
            rep = json.loads(out.read_text())
            frames = rep["totals"]["packets"]
            report_mb = out.stat().st_size / 1e6
        else:
            report_mb = 0
    return {"file": str(path), "bytes": os.path.getsize(path), "decoder": decoder,
            "workers": workers, "exit": code, "wall_s": round(wall, 2),
            "peak_rss_mb": round(rss_kb * 1024 / 1e6, 1), "frames": frames,
            "report_mb": round(report_mb, 1), "stderr": err[-300:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("generate")
    p.add_argument("kind", choices=sorted(GENERATORS))
    p.add_argument("out", type=Path)
    p.add_argument("--size-mb", type=int, default=1024)
    p = sub.add_parser("measure")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--decoder", default="fast")
    p.add_argument("--workers", type=int, default=1)
    p = sub.add_parser("all")
    p.add_argument("--dir", type=Path, default=Path("/tmp/ipv6flow-memory"))
    p.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    if args.cmd == "generate":
        started = time.perf_counter()
        n = GENERATORS[args.kind](args.out, args.size_mb << 20)
        print(f"{args.out}: {n / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s")
    elif args.cmd == "measure":
        for f in args.files:
            print(json.dumps(measure(f, args.decoder, args.workers)))
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        for kind, mb in (("addresses", args.size_mb // 4), ("addresses", args.size_mb)):
            path = args.dir / f"{kind}-{mb}.pcap"
            if not path.exists():
                GENERATORS[kind](path, mb << 20)
            print(json.dumps(measure(path)))


if __name__ == "__main__":
    main()
