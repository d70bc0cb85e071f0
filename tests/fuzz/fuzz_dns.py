#!/usr/bin/env python3
"""atheris harness for the compiled DNS stage (ipv6flow/_core.c ``spans``
and ``dns_parse``): one frame in ``fuzz_decoder.py``'s input layout, made
into one batch as ``fuzz_core.py`` makes it (three buffer layouts, then one
row per snap length over the same bytes).

Properties:

* the compiled walk's DNS segments and ICMPv6 spans of the batch's IP rows
  (``fast.message_spans``) equal the numpy forms' (``dns_segments``,
  ``icmpv6_spans``), which are their specification;
* the compiled DNS parser gives Python's ``dnsmsg.parse`` result (None
  where that raises DnsError) on the bytes of every DNS segment found, and
  on the frame's bytes read as a DNS message from a few offsets (the
  headers of Ethernet, IPv4 and IPv6 with UDP, and none), so the parser
  sees arbitrary bytes as well as what the walk hands it.

A sanitizer report (the C built by ``tests/sanitize.sh --fuzz``) aborts the
run. Run it as ``fuzz_core.py`` (README.md).
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts tests/ on sys.path)

import numpy as np  # noqa: E402

from conftest import fast_path  # noqa: E402
from ipv6flow.analysis import dnsmsg  # noqa: E402
from ipv6flow.analysis.nat64 import inspect_frame  # noqa: E402,F401  (imported before
from ipv6flow.fold import summarize_batch  # noqa: E402,F401  fuzz_decoder, which
from ipv6flow.summary import Summary  # noqa: E402,F401  instruments what is new)
from ipv6flow.fast import decode_batch, dns_segments, icmpv6_spans, message_spans  # noqa: E402

import fuzz_decoder as fd  # noqa: E402  (its input layout)
from fuzz_core import batch_of  # noqa: E402  (the batch of one frame)

if dnsmsg.BUILT_PARSE is None:
    sys.exit("fuzz_dns.py: the compiled DNS parser is not built (or switched off)")
print("fuzz_dns.py: compiled DNS stage", sys.modules["ipv6flow._core"].__file__, file=sys.stderr)

ICMPV6_RA = 134
OFFSETS = (0, 14 + 20 + 8, 14 + 40 + 8, 20 + 8, 40 + 8, 12)


def python_parse(msg: bytes):
    try:
        return dnsmsg.parse(msg)
    except dnsmsg.DnsError:
        return None


def check_parse(msg: bytes) -> None:
    got, want = dnsmsg.BUILT_PARSE(msg), python_parse(msg)
    assert got == want, f"{msg.hex()}: compiled {got!r} != python {want!r}"


def TestOneInput(data: bytes) -> None:
    lt, opts, frame, tail, wirelen = fd.parse(data)
    batch, _ = batch_of(frame, tail, wirelen, lt)
    with fast_path("compiled"):
        d = decode_batch(batch, opts)
        idx = d.ip_rows()
        dns, icmp = message_spans(d, idx, ICMPV6_RA)
        want_dns, want_icmp = dns_segments(d, idx), icmpv6_spans(d, idx, ICMPV6_RA)
        for name, a, b in zip(("start", "stop", "tcp", "src", "src_end", "icmp start",
                               "icmp stop"), (*dns, *icmp), (*want_dns, *want_icmp)):
            assert np.array_equal(a, b), f"{name}: compiled {a.tolist()} != numpy {b.tolist()}"
        buf = bytes(batch.buffer)
        for start, stop, tcp in zip(dns[0].tolist(), dns[1].tolist(), dns[2].tolist()):
            seg = buf[start:stop]
            for msg in (dnsmsg.tcp_messages(seg) if tcp else [seg]):
                check_parse(msg)
    for off in OFFSETS:
        check_parse(frame[off:])


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
