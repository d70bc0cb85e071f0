"""sFlow version 5 datagrams (sflow.org, "sFlow Version 5", July 2004):
the sampled packet headers they carry, and what else they hold, counted.

Strategy: one pass over the XDR words of a datagram, with every length
checked against the bytes that are there before it is used: a length or a
count that lies ends the walk with a named problem (the datagram's good
samples before that point are kept), never an exception and never an
allocation sized by a field. Pure functions on bytes; no I/O.

What is kept of a flow sample (format 1) or an expanded flow sample
(format 3): its raw packet header records (flow record format 1) whose
header protocol has a link type here (``HEADER_LINKTYPES``). Counter
samples, other sample formats (discards, enterprise formats) and other
flow records are skipped and counted by name.
"""
from __future__ import annotations

import ipaddress
import struct

from .registry import (LINKTYPE_ETHERNET, LINKTYPE_FRELAY, LINKTYPE_IPV4, LINKTYPE_IPV6,
                       LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_SFLOW_MPLS)

SFLOW_VERSION = 5
SFLOW_PORT = 6343                 # IANA "sflow"

# Sample formats (enterprise 0; data_format = enterprise << 12 | format).
SAMPLE_FLOW = 1
SAMPLE_COUNTERS = 2
SAMPLE_FLOW_EXPANDED = 3
SAMPLE_COUNTERS_EXPANDED = 4
SAMPLE_DISCARD = 5                # sFlow drop notifications (2020)
# Flow record formats (enterprise 0).
RECORD_RAW_HEADER = 1

# Link type of a sampled header, by its header_protocol. 1, 11, 12 are
# pcap's (Ethernet, raw IPv4, raw IPv6); PPP (7) and POS (14, PPP in HDLC
# framing, RFC 1662) are pcap's PPP and PPP_HDLC; frame relay is 107.
# A bare MPLS label stack has no pcap link type: ``LINKTYPE_SFLOW_MPLS``
# lies past the 16 bits a pcap or pcapng file can name, so no capture can
# collide with it (registry.LINKTYPES maps it to the MPLS parser).
HEADER_LINKTYPES = {1: LINKTYPE_ETHERNET, 5: LINKTYPE_FRELAY, 7: LINKTYPE_PPP, 11: LINKTYPE_IPV4,
                    12: LINKTYPE_IPV6, 13: LINKTYPE_SFLOW_MPLS, 14: LINKTYPE_PPP_HDLC}

# What a walk skips, by name (``Datagram.skipped``); the compiled walk
# (``_speedups.walk_sflow``) counts them in this order.
SKIP_NAMES = ("counter_samples", "discard_samples", "enterprise_samples", "other_samples",
              "trailing_bytes", "enterprise_records", "other_records", "extra_header_records",
              "other_header_protocols", "samples_without_header")

# The longest frame a sample may claim: pcap's largest snap length. A
# frame_length past it is a lie (jumbo frames stop near 9 kB, IPv6
# jumbograms are not seen on links sFlow samples); bounding it bounds the
# squares the interval sums keep (analysis/sampling.py).
MAX_FRAME_LENGTH = 262144

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">II")                     # version, agent address type
_AFTER_AGENT = struct.Struct(">IIII")            # sub agent, sequence, uptime, samples
_FLOW = struct.Struct(">IIIIIIII")               # format 1 fields
_FLOW_X = struct.Struct(">IIIIIIIIIII")          # format 3 fields
_RAW = struct.Struct(">IIII")                    # protocol, frame_length, stripped, header_len


class Sample(tuple):
    """One sampled header: (source, sequence, rate, pool, drops,
    linktype, wirelen, start, stop) -- the header is ``data[start:stop]``.
    ``source`` is (source id type, index)."""

    __slots__ = ()


_sample = tuple.__new__


class Datagram:
    """What one datagram holds.

    ``agent`` is the agent address as text (``None`` when the header
    could not be read), ``problem`` the first thing that stopped the
    walk (``None``: the whole datagram was read), ``skipped`` counts what
    was passed over by name, ``bad_samples`` the samples whose fields lie.
    """

    __slots__ = ("agent", "sub_agent", "sequence", "samples", "skipped", "problem",
                 "bad_samples")

    def __init__(self):
        self.agent = None
        self.sub_agent = 0
        self.sequence = None
        self.samples = []
        self.skipped = {}
        self.problem = None
        self.bad_samples = 0

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


def _address(kind: int, data, off: int, end: int):
    """(text, next offset) of an sFlow address, or (None, problem)."""
    if kind == 1:
        if off + 4 > end:
            return None, "cut"
        return ".".join(str(b) for b in data[off:off + 4]), off + 4
    if kind == 2:
        if off + 16 > end:
            return None, "cut"
        return str(ipaddress.IPv6Address(bytes(data[off:off + 16]))), off + 16
    return None, "bad_address_type"


def parse_datagram(data, off: int = 0, end: int | None = None) -> Datagram:
    """Walk the datagram in ``data[off:end]``; see the module docstring."""
    end = len(data) if end is None else end
    d = Datagram()
    if off + 8 > end:
        d.problem = "cut"
        return d
    version, kind = _HEAD.unpack_from(data, off)
    if version != SFLOW_VERSION:
        d.problem = "bad_version"
        return d
    agent, at = _address(kind, data, off + 8, end)
    if agent is None:
        d.problem = at
        return d
    if at + 16 > end:
        d.problem = "cut"
        return d
    d.agent = agent
    d.sub_agent, d.sequence, _, count = _AFTER_AGENT.unpack_from(data, at)
    at += 16
    # Each sample takes at least 8 bytes: a count beyond what is left is a
    # lie, found before a loop would run 2**32 times.
    if count > (end - at) // 8:
        d.problem = "bad_sample_count"
        return d
    for _ in range(count):
        if at + 8 > end:
            d.problem = "cut"
            return d
        fmt, length = _HEAD.unpack_from(data, at)
        at += 8
        stop = at + length
        if length & 3 or stop > end:
            d.problem = "bad_sample_length"
            return d
        if fmt == SAMPLE_FLOW or fmt == SAMPLE_FLOW_EXPANDED:
            _flow_sample(d, data, at, stop, fmt == SAMPLE_FLOW_EXPANDED)
        elif fmt == SAMPLE_COUNTERS or fmt == SAMPLE_COUNTERS_EXPANDED:
            d.skip("counter_samples")
        elif fmt == SAMPLE_DISCARD:
            d.skip("discard_samples")
        elif fmt >> 12:
            d.skip("enterprise_samples")
        else:
            d.skip("other_samples")
        at = stop
    if at != end:
        d.skip("trailing_bytes")
    return d


def _flow_sample(d: Datagram, data, at: int, stop: int, expanded: bool) -> None:
    if expanded:
        if at + 44 > stop:
            d.bad_samples += 1
            return
        (seq, src_type, src_index, rate, pool, drops, _, _, _, _,
         nrec) = _FLOW_X.unpack_from(data, at)
        at += 44
    else:
        if at + 32 > stop:
            d.bad_samples += 1
            return
        seq, source, rate, pool, drops, _, _, nrec = _FLOW.unpack_from(data, at)
        src_type, src_index = source >> 24, source & 0xFFFFFF
        at += 32
    if rate == 0 or nrec > (stop - at) // 8:
        d.bad_samples += 1
        return
    src = (src_type, src_index)
    kept = False
    for _ in range(nrec):
        if at + 8 > stop:
            d.bad_samples += 1
            return
        fmt, length = _HEAD.unpack_from(data, at)
        at += 8
        rstop = at + length
        if length & 3 or rstop > stop:
            d.bad_samples += 1
            return
        if fmt != RECORD_RAW_HEADER:
            d.skip("enterprise_records" if fmt >> 12 else "other_records")
        elif kept:
            d.skip("extra_header_records")          # one header per sample counts once
        elif at + 16 > rstop:
            d.bad_samples += 1
            return
        else:
            proto, frame_length, stripped, hlen = _RAW.unpack_from(data, at)
            linktype = HEADER_LINKTYPES.get(proto)
            hstart = at + 16
            if hstart + hlen > rstop or frame_length > MAX_FRAME_LENGTH \
                    or stripped > frame_length or hlen > frame_length:
                d.bad_samples += 1
                return
            if linktype is None:
                d.skip("other_header_protocols")
            else:
                kept = True
                wirelen = max(frame_length - stripped, hlen)
                d.samples.append(_sample(Sample, (src, seq, rate, pool, drops, linktype,
                                                  wirelen, hstart, hstart + hlen)))
        at = rstop
    if not kept:
        d.skip("samples_without_header")
