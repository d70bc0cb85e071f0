#!/usr/bin/env python3
"""Build the real-traffic benchmark capture from the corpus of ../shared.

The generated capture (generate.py) is our own mix: large frames, many
tunnels and extension headers. This one is made of real traffic only: every
Ethernet capture of ../shared/captures (MANIFEST link type exactly
``ether``, not compressed; 133 files, 66,272 frames), joined in file-name
order with ``mergecap -a -F pcap``, and that join repeated (16 times by
default: 1,060,352 frames, about 260 MB) so that a run lasts long enough to
measure. The result is deterministic: the same corpus gives the same bytes.

    python benchmarks/realmix.py                 # benchmarks/data/realmix-16.pcap
    python benchmarks/realmix.py --repeat 4 --out x.pcap

A sidecar ``FILE.json`` records the frames, the sha256, the sources and how
the file was made, as generate.py's does.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
SHARED = os.environ.get("IPV6FLOW_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
CAPTURES = os.path.join(SHARED, "captures")
DEFAULT_REPEAT = 16
PCAP_HEADER = 24
RECORD_HEADER = 16


def default_out(repeat: int) -> str:
    return os.path.join(DATA, f"realmix-{repeat}.pcap")


def sources(captures: str = CAPTURES) -> list[dict]:
    """The MANIFEST rows taken: Ethernet only, not compressed, readable."""
    manifest = os.path.join(captures, "MANIFEST.tsv")
    if not os.path.exists(manifest):
        raise SystemExit(f"{manifest}: not found (the corpus of ../shared is needed; "
                         "set IPV6FLOW_SHARED)")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    rows = [r for r in rows if r["link_types"] == "ether"
            and not r["file"].endswith((".gz", ".zst")) and r["packets"].isdigit()]
    return sorted(rows, key=lambda r: r["file"])


def count_records(path: str) -> int:
    """Records of a classic little- or big-endian pcap (walking the headers)."""
    with open(path, "rb") as fh:
        head = fh.read(PCAP_HEADER)
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        n = 0
        while True:
            rh = fh.read(RECORD_HEADER)
            if len(rh) < RECORD_HEADER:
                return n
            caplen = struct.unpack(order + "I", rh[8:12])[0]
            fh.seek(caplen, 1)
            n += 1


def build(out: str, repeat: int = DEFAULT_REPEAT, captures: str = CAPTURES) -> dict:
    if shutil.which("mergecap") is None:
        raise SystemExit("mergecap (Wireshark) is needed: apt-get install tshark")
    rows = sources(captures)
    t0 = time.monotonic()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        joined = os.path.join(tmp, "joined.pcap")
        subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", joined,
                        *[os.path.join(captures, r["file"]) for r in rows]],
                       check=True, capture_output=True)
        once = count_records(joined)
        want = sum(int(r["packets"]) for r in rows)
        if once != want:
            raise SystemExit(f"mergecap wrote {once} records, the MANIFEST counts {want}")
        with open(joined, "rb") as fh:
            header = fh.read(PCAP_HEADER)
            body = fh.read()
    digest = hashlib.sha256()
    tmp_out = out + ".tmp"
    with open(tmp_out, "wb") as fh:
        fh.write(header)
        digest.update(header)
        for _ in range(repeat):
            fh.write(body)
            digest.update(body)
    os.replace(tmp_out, out)
    info = {"frames": once * repeat, "bytes": os.path.getsize(out),
            "sha256": digest.hexdigest(), "repeat": repeat, "sources": len(rows),
            "frames_once": once, "made_by": f"benchmarks/realmix.py --repeat {repeat}",
            "elapsed_s": round(time.monotonic() - t0, 2)}
    with open(out + ".json", "w") as fh:
        json.dump(info, fh, indent=1)
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                    help=f"times the joined corpus is repeated (default {DEFAULT_REPEAT})")
    ap.add_argument("--out", default=None, help="output pcap (default benchmarks/data/"
                                                "realmix-<repeat>.pcap)")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    info = build(a.out or default_out(a.repeat), a.repeat)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
