"""Captures of sFlow datagrams read as the traffic they sample.

Strategy: ``SampledCapture`` wraps an open capture of sFlow export
datagrams (any link type, IPv4 or IPv6, UDP to the sFlow port) and hands
out, instead of the datagrams, the packet headers they sample: each
sampled header is a frame whose captured bytes are the header and whose
wire length is the sample's ``frame_length`` less ``stripped`` (the FCS
and any tags the exporter removed: what a capture of that frame would
say), with the link type of its header protocol (decode/sflow.py). So the
same decoders, fast and reference, count them.

Frames are grouped into batches of one sampling rate and one cut state
(header shorter than the frame or not) so that, before each batch, the
consumer's weight can be set (``set_weight(rate, cut)``: Summary.set_weight)
and every count is scaled as it is made. The grouping depends only on the
input, so a second pass (NAT64 catch-up) sees the same frames in the same
order. Within a group frames keep their order; groups are handed out when
full and at the end, in the order they were opened.

The datagrams' bookkeeping (agents, sequence gaps, bad datagrams, skipped
samples and records) goes to a ``SamplingState`` (analysis/sampling.py),
when one is given. Memory: one batch per open group (at most
``GROUP_ROWS`` samples each), the sequence tables capped by entries.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..decode import DecodeOptions, decode_frame
from ..decode.sflow import parse_datagram
from .base import Record
from .batch import Batch

GROUP_ROWS = 8192            # samples per batch handed out
MAX_SEQUENCES = 65536        # (agent, source) sequence numbers followed
SEQUENCE_JUMP = 1 << 20      # a forward jump larger than this is a restart, not a loss
_CARRIER_OPTS = DecodeOptions()


def udp_payload(linktype: int, data: bytes, wirelen: int, port: int):
    """(start, stop) of the payload of a UDP datagram to ``port`` in a
    captured frame, or None. ``stop`` is where the datagram ends by its
    UDP length, or where the capture does if that is sooner."""
    f = decode_frame(linktype, data, wirelen, _CARRIER_OPTS)
    at = f.l4_off
    if f.proto != 17 or at is None or at + 8 > len(data):
        return None
    if ((data[at + 2] << 8) | data[at + 3]) != port:
        return None
    ulen = (data[at + 4] << 8) | data[at + 5]
    stop = min(at + max(ulen, 8), f.l4_end or len(data), len(data))
    return at + 8, stop


class _Group:
    __slots__ = ("parts", "caplens", "wirelens", "stamps", "linktypes")

    def __init__(self):
        self.parts, self.caplens, self.wirelens, self.stamps, self.linktypes = [], [], [], [], []

    def batch(self) -> Batch:
        lens = np.array(self.caplens, dtype=np.int64)
        offsets = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=offsets[1:])
        out = Batch(b"".join(self.parts), offsets, lens,
                    np.array(self.wirelens, dtype=np.int64),
                    np.array(self.stamps, dtype=np.float64),
                    np.array(self.linktypes, dtype=np.int32))
        self.__init__()
        return out


class SampledCapture:
    """An open capture of sFlow datagrams, read as the sampled frames (see
    the module docstring). Looks like ``capture.Capture`` to the engines."""

    def __init__(self, cap, port: int, sampling, set_weight):
        self._cap = cap
        self._port = port
        self._sampling = sampling
        self._set_weight = set_weight
        self._mode = ""
        self.packets = 0             # samples handed out
        self.other_frames = 0        # frames that were not sFlow to the port
        self.format = cap.format
        self.compression = cap.compression

    # -- what the carrier reader reports -----------------------------------
    @property
    def linktypes(self):
        return self._cap.linktypes

    @property
    def truncated(self):
        return self._cap.truncated

    @property
    def warnings(self):
        extra = []
        if self.other_frames:
            extra.append(f"{self.other_frames} frames were not sFlow datagrams to UDP port "
                         f"{self._port}: skipped")
        return list(self._cap.warnings) + extra

    @property
    def bytes_read(self):
        return self._cap.bytes_read

    landed = None

    # -- the sampled frames ------------------------------------------------------
    def _batches(self) -> Iterator[tuple]:
        """(batch, rate, cut) in the order described in the module."""
        groups: dict = {}
        state = self._sampling
        seqs: dict = {}
        port = self._port
        for ts, linktype, wirelen, data in self._cap:
            where = udp_payload(linktype, data, wirelen, port)
            if where is None:
                self.other_frames += 1
                continue
            d = parse_datagram(data, where[0], where[1])
            if d.agent is None:
                if state is not None:
                    state.add_bad(d.problem)
                continue
            agent_key = (d.agent, d.sub_agent)
            lost, reset = _gap(seqs, agent_key, d.sequence)
            entry = None
            if state is not None:
                entry = state.agent(d.agent, d.sub_agent)
                state.add_datagram(entry, d, lost, reset)
            for src, seq, rate, _pool, _drops, lt, wire, start, stop in d.samples:
                cap = stop - start
                cut = cap < wire
                if state is not None:
                    lost_samples, _ = _gap(seqs, (agent_key, src), seq)
                    state.add_sample(entry, src, rate, lost_samples, cut, wire)
                g = groups.get((rate, cut))
                if g is None:
                    g = groups[(rate, cut)] = _Group()
                g.parts.append(data[start:stop])
                g.caplens.append(cap)
                g.wirelens.append(wire)
                g.stamps.append(ts)
                g.linktypes.append(lt)
                if len(g.caplens) >= GROUP_ROWS:
                    yield g.batch(), rate, cut
        for (rate, cut), g in groups.items():
            if g.caplens:
                yield g.batch(), rate, cut

    def iter_batches(self, reuse: bool = False) -> Iterator[Batch]:
        if self._mode:
            raise RuntimeError("this capture is already being read")
        self._mode = "batches"
        for batch, rate, cut in self._batches():
            self._set_weight(rate, cut)
            self.packets += len(batch)
            yield batch

    def __iter__(self) -> Iterator[Record]:
        if self._mode:
            raise RuntimeError("this capture is already being read")
        self._mode = "records"
        for batch, rate, cut in self._batches():
            self._set_weight(rate, cut)
            for rec in batch.records():
                self.packets += 1
                yield rec

    def close(self) -> None:
        self._cap.close()

    def __enter__(self) -> "SampledCapture":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _gap(seqs: dict, key, seq: int) -> tuple[int, bool]:
    """(lost, restarted) for sequence number ``seq`` of ``key``."""
    last = seqs.get(key)
    if last is None:
        if len(seqs) < MAX_SEQUENCES:
            seqs[key] = seq
        return 0, False
    seqs[key] = seq
    step = (seq - last) & 0xFFFFFFFF           # sequence numbers wrap at 2**32
    if step == 1:
        return 0, False
    if 1 < step <= SEQUENCE_JUMP:
        return step - 1, False
    return 0, True                              # repeated, backwards or far ahead
