#!/usr/bin/env python3
"""Build the seed corpora of the two harnesses.

    python tests/fuzz/seeds.py OUT_DIR [--captures DIR] [--max-len N]

writes OUT_DIR/reader/ (whole files: the real captures of ../shared/captures,
the samples and the hostile corpus of tests/hostile/generate.py, each cut
to --max-len bytes) and OUT_DIR/decoder/ (single frames of those files, in
fuzz_decoder.py's input layout, at most --per-file frames from each).
"""

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from fuzz_decoder import LINKTYPES  # noqa: E402

from ipv6flow.capture import open_capture  # noqa: E402
from ipv6flow.errors import CaptureError  # noqa: E402


def files(captures: Path, hostile: Path):
    for base in (captures, ROOT / "samples", hostile):
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.endswith((".md", ".tsv", ".json", ".py")):
                yield p


def put(folder: Path, data: bytes) -> None:
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--captures", type=Path, default=ROOT.parent / "shared" / "captures")
    ap.add_argument("--max-len", type=int, default=65536)
    ap.add_argument("--per-file", type=int, default=40)
    args = ap.parse_args()
    reader, decoder = args.out / "reader", args.out / "decoder"
    reader.mkdir(parents=True, exist_ok=True)
    decoder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        generate.build(Path(tmp), bomb_mb=1, include_big=False)
        for p in files(args.captures, Path(tmp)):
            data = p.read_bytes()
            put(reader, data[:args.max_len])
            try:
                with open_capture(p) as cap:
                    for i, rec in enumerate(cap):
                        if i >= args.per_file:
                            break
                        lt = LINKTYPES.index(rec.linktype) if rec.linktype in LINKTYPES else 16
                        put(decoder, bytes([lt, 0, 0, 0]) + rec.data[:4096])
            except CaptureError:
                pass
    print(len(os.listdir(reader)), "reader seeds,", len(os.listdir(decoder)), "decoder seeds")


if __name__ == "__main__":
    main()
