#!/usr/bin/env python3
"""atheris harness: one frame, the reference decoder against the numpy
kernel, key for key and report for report.

Input layout (all of it is fuzzed):

    byte 0    link type: an index into LINKTYPES (the supported ones, then
              a few unsupported ones)
    byte 1    options: low 3 bits pick max_tunnel_depth from DEPTHS,
              bit 3 adds a 6rd prefix, bits 4-5 pick max_chain
    byte 2    snap-length cut: 0 none, else the frame is cut that many
              bytes before its end (the cut bytes follow it in the batch
              buffer, where a read past caplen would find them)
    byte 3    wire length: the captured length plus this
    rest      the frame

Properties: ``decode_frame`` never raises; ``ipv6flow.fast.frame_keys``
on a one-row Batch (rows built as tests/strategies.py builds them, with
the row ending the buffer, and again followed by its cut bytes and
filler) gives ``summary.frame_key`` of the reference Frame, and
``ipv6flow.fast.frame_columns`` its clients-and-flows columns; and the fast
``summarize_batch`` gives the same Summary (figures, NAT64 traffic, DNS
and RA evidence, clients and flows) as the reference decoder with
``inspect_frame``.

    python tests/fuzz/fuzz_decoder.py CORPUS_DIR [SEED_DIRS...] -max_len=4096
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts tests/ on sys.path)

with atheris.instrument_imports(include=["ipv6flow"]):
    from ipv6flow.decode import columns as dcols
    from ipv6flow.analysis.nat64 import inspect_frame
    from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix
    from ipv6flow.fast import frame_columns, frame_keys
    from ipv6flow.fold import summarize_batch
    from ipv6flow.decode.frame import frame_key
    from ipv6flow.summary import Summary

import numpy as np  # noqa: E402

from ipv6flow.capture.batch import Batch  # noqa: E402

LINKTYPES = (0, 1, 9, 12, 14, 50, 101, 104, 105, 107, 108, 113, 127, 228, 229, 276,
             147, 2, 65535)
DEPTHS = (8, 0, 1, 2, 3, 4, 9, 16)
CHAINS = (64, 8, 9, 1)
SIXRD = (parse_prefix("2a01:e30::/28"), parse_prefix("2a02:1234:5678:9abc:de00::/72"))


def options(b: int) -> DecodeOptions:
    return DecodeOptions(sixrd_prefixes=SIXRD if b & 8 else (),
                         max_tunnel_depth=DEPTHS[b & 7], max_chain=CHAINS[(b >> 4) & 3])


def one_row(before: bytes, data: bytes, after: bytes, wirelen: int, lt: int) -> Batch:
    return Batch(before + data + after, np.array([len(before)], dtype=np.int64),
                 np.array([len(data)], dtype=np.int64), np.array([wirelen], dtype=np.int64),
                 np.array([1.7e9]), np.array([lt], dtype=np.int32))


def parse(data: bytes):
    if len(data) < 4:
        data = data + bytes(4 - len(data))
    lt = LINKTYPES[data[0] % len(LINKTYPES)]
    opts = options(data[1])
    frame = data[4:]
    cut = min(data[2], len(frame))
    kept, tail = frame[:len(frame) - cut], frame[len(frame) - cut:]
    return lt, opts, kept, tail, len(frame) + data[3]


def TestOneInput(data: bytes) -> None:
    lt, opts, frame, tail, wirelen = parse(data)
    f = decode_frame(lt, frame, wirelen, opts)
    want = frame_key(f)
    layouts = [(b"", b""), (b"", tail), (b"\x60\x00\x45", b"\x86\xdd" + tail + b"\xff" * 8)]
    want_cols = dcols.frame_columns(f, lt, frame, 1.7e9, wirelen)
    for before, after in layouts:
        batch = one_row(before, frame, after, wirelen, lt)
        keys, _ = frame_keys(batch, opts)
        assert keys[0] == want, f"kernel {keys[0]} != reference {want} ({before!r}, {after!r})"
        cols = frame_columns(batch, opts)[0]
        assert cols == want_cols, f"columns {cols} != reference {want_cols} ({before!r}, {after!r})"
    # the whole fast Summary against the reference one (DNS, RA, NAT64 too)
    batch = one_row(b"", frame, tail, wirelen, lt)
    fast, ref = Summary(60.0), Summary(60.0)
    static = ref.nat64.static_prefixes()
    summarize_batch(fast, batch, opts, None, static)
    ref.add(f, 1.7e9, wirelen, lt, frame)
    inspect_frame(ref.nat64, f, frame, wirelen, static, True)
    a, b = fast.to_report(), ref.to_report()
    assert a == b, {k: (a[k], b[k]) for k in b if a.get(k) != b[k]}


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
