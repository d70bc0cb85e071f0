"""The vectorized decoder (see kernel.py for the strategy).

``decode_batch`` runs the numpy kernel over one capture Batch and returns
what the analyses read, as arrays: the packed frame key of every row the
kernel decoded, the rows it left to the reference decoder, and on demand
the decoded columns of its rows (``batch_columns``: decode/columns.py's
columns), the transport payloads of DNS segments (``dns_segments``) and
the ICMPv6 messages (``icmpv6_spans``; both at once: ``message_spans``).
Nothing here counts or judges: ``ipv6flow.fold`` hands these arrays to the
analyses and the Summary, and decodes the fallback rows with the reference
decoder.
"""

from functools import lru_cache

import numpy as np

from ..decode import decode_frame
from ..decode.columns import COLUMNS
from ..decode.columns import frame_columns as reference_columns
from ..decode.frame import frame_key
from ..decode.registry import (DNS_PORT, FAM_IPV4, FAM_IPV6, FAM_NON_IP, ETH, ICMP, ICMP_OF,
                               IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPV4, IPV6,
                               LINKTYPE_ETHERNET, TCP, UDP)
from ..compiled import core_function
from . import core
from .core import classify, compiled_columns
from .kernel import _SHIFT, unpack

__all__ = ["Decoded", "decode_batch", "batch_columns", "gather_columns", "address_columns", "dns_segments",
           "icmpv6_spans", "message_spans", "record", "unpack_key", "frame_keys", "frame_columns"]

# _core.c spans, for the compiled pass's rows (configured with it); tests
# set None: the numpy forms
BUILT_SPANS = core_function("spans") if core.BUILT is not None else None
_spans = BUILT_SPANS

# One FrameKey per distinct packed key (a batch has few distinct keys).
unpack_key = lru_cache(maxsize=4096)(unpack)
KEY_FIELDS = _SHIFT          # field -> (shift, mask) of a packed key


class Decoded:
    """What the kernel made of one batch: ``keys`` (a packed FrameKey per
    row, meaningless for fallback rows), ``fallback`` (indices of the rows
    the reference decoder must decode), ``fast`` (a mask, True for the
    others), ``rows`` (the kernel's row state: ``payload``/``carrier``
    family codes, innermost header offsets), and the batch."""

    __slots__ = ("batch", "keys", "fallback", "fast", "rows")

    def __init__(self, batch, keys, fallback, rows):
        self.batch, self.keys, self.fallback, self.rows = batch, keys, fallback, rows
        self.fast = np.ones(len(batch), dtype=bool)
        self.fast[fallback] = False

    def ip_mask(self):
        """True for the kernel's rows with an IP payload."""
        return self.fast & (self.rows.payload != FAM_NON_IP)

    def ip_rows(self):
        """Indices of the kernel's rows with an IP payload."""
        return np.flatnonzero(self.ip_mask())

    def v6_mask(self):
        """True for the kernel's rows with an IPv6 payload header."""
        return self.fast & (self.rows.payload == FAM_IPV6) & (self.rows.v6 >= 0)


def decode_batch(batch, opts) -> Decoded:
    keys, fallback, rows = classify(batch, opts)
    return Decoded(batch, keys, fallback, rows)


def record(batch, i):
    """(ts, linktype, wirelen, bytes) of row ``i``, for the reference decoder."""
    off, cap = int(batch.offsets[i]), int(batch.caplens[i])
    return (float(batch.ts[i]), int(batch.linktypes[i]), int(batch.wirelens[i]),
            bytes(batch.buffer[off:off + cap]))


def _ipv4_addresses(rows, idx):
    """Innermost IPv4 source and destination of rows ``idx`` (-1: none)."""
    v4 = rows.v4[idx]
    n = len(idx)
    v4s = np.full(n, -1, dtype=np.int64)
    v4d = np.full(n, -1, dtype=np.int64)
    h4 = np.flatnonzero(v4 >= 0)
    if len(h4):
        # source then destination: one 8-byte word
        a = rows.word(v4[h4] + IPV4.SRC, 2 * IPV4.ADDR_LEN).astype(np.int64)
        v4s[h4], v4d[h4] = (a >> 32) & 0xFFFFFFFF, a & 0xFFFFFFFF
    return v4s, v4d


def address_columns(d: Decoded, idx) -> dict:
    """The address columns (fam, tunnel, ntun, has6, v4s, v4d, v6s_hi ..
    v6d_lo) of the kernel's rows ``idx``: what translation's candidates and
    the service traffic read (a subset of ``batch_columns``)."""
    rows = d.rows
    v4s, v4d = _ipv4_addresses(rows, idx)
    a6 = [rows.addr(k)[idx] for k in range(4)]
    return {"fam": rows.payload[idx], "tunnel": rows.tunnel[idx], "ntun": rows.ntun[idx],
            "has6": rows.v6[idx] >= 0,
            "v4s": v4s, "v4d": v4d, "v6s_hi": a6[0], "v6s_lo": a6[1], "v6d_hi": a6[2],
            "v6d_lo": a6[3]}


def batch_columns(d: Decoded, idx, last=False) -> dict:
    """The decode/columns.py columns of the kernel's IP rows ``idx``: by
    the compiled pass's ``columns`` where its rows are, else by
    ``gather_columns``. ``last``: nothing reads ``d`` afterwards, so the
    compiled rows are gathered in place (``compiled_columns``) and ``d``
    is left without them."""
    c = compiled_columns(d.rows, d.batch, idx, in_place=last)
    if c is None:
        return gather_columns(d, idx)
    if last:
        d.rows = None
    return c


def gather_columns(d: Decoded, idx) -> dict:
    """The decode/columns.py columns of the kernel's IP rows ``idx``, read
    with array gathers (as ``columns.frame_columns`` reads one frame): the
    specification of _core.c ``columns``."""
    rows, batch = d.rows, d.batch
    fam, proto = rows.payload[idx], rows.proto[idx]
    l4, l4end = rows.l4[idx], rows.l4end[idx]
    n = len(idx)
    sport = np.full(n, -1, dtype=np.int64)
    dport = np.full(n, -1, dtype=np.int64)
    icmp = np.full(n, -1, dtype=np.int64)
    has_l4 = l4 >= 0
    tcp_udp = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)
    t = np.flatnonzero(has_l4 & tcp_udp & (l4 + UDP.DPORT + 2 <= l4end))
    if len(t):
        ports = rows.u32(l4[t] + UDP.SPORT)                # source then destination port
        sport[t], dport[t] = ports >> 16, ports & 0xFFFF
    ic = np.flatnonzero(has_l4 & ~tcp_udp
                        & (proto == np.where(fam == FAM_IPV6, ICMP_OF[FAM_IPV6], ICMP_OF[FAM_IPV4]))
                        & (l4 < l4end))
    icmp[ic] = rows.u8(l4[ic] + ICMP.TYPE)
    v4s, v4d = _ipv4_addresses(rows, idx)
    has6 = rows.v6[idx] >= 0
    a6 = [rows.addr(k)[idx] for k in range(4)]
    mac_s = np.full(n, -1, dtype=np.int64)
    mac_d = np.full(n, -1, dtype=np.int64)
    eth = np.flatnonzero((batch.linktypes[idx] == LINKTYPE_ETHERNET)
                         & (batch.caplens[idx] >= ETH.SRC + ETH.ADDR_LEN))
    if len(eth):
        at = batch.offsets[idx[eth]].astype(np.int64)
        w0 = rows.u64(at + ETH.DST)                        # destination, 2 bytes of source
        mac_d[eth] = (w0 >> np.uint64(16)).astype(np.int64)
        mac_s[eth] = ((w0 & np.uint64(0xFFFF)).astype(np.int64) << 32) \
            | rows.u32(at + ETH.SRC + 2)
    flags = np.full(n, -1, dtype=np.int64)
    tf = np.flatnonzero(has_l4 & (proto == IPPROTO_TCP) & (l4 + TCP.FLAGS + 1 <= l4end))
    if len(tf):
        flags[tf] = rows.u8(l4[tf] + TCP.FLAGS)
    return {"fam": fam, "tunnel": rows.tunnel[idx], "ts": batch.ts[idx].astype(np.float64),
            "proto": proto, "sport": sport, "dport": dport, "icmp": icmp, "v4s": v4s,
            "v4d": v4d, "has6": has6, "v6s_hi": a6[0], "v6s_lo": a6[1],
            "v6d_hi": a6[2], "v6d_lo": a6[3], "mac_s": mac_s, "mac_d": mac_d,
            "wire": batch.wirelens[idx].astype(np.int64),
            "carrier": np.where(rows.carrier[idx] == FAM_IPV6, FAM_IPV6, FAM_IPV4),
            "flags": flags, "ntun": rows.ntun[idx]}


def dns_segments(d: Decoded, idx):
    """The UDP datagrams and TCP segments to or from the DNS port among the
    kernel's rows ``idx`` whose payload is readable (as
    ``nat64.dns_payload`` finds one frame's): arrays (start, stop, tcp,
    source start, source stop) of byte offsets into the batch buffer."""
    rows = d.rows
    sport = getattr(rows, "sport", None)
    if sport is not None:
        # the compiled pass read the ports (where l4 + 4 <= l4end): pick the
        # port-53 rows first, then ask for a whole UDP header
        idx = idx[(sport[idx] == DNS_PORT) | (rows.dport[idx] == DNS_PORT)]
    proto, l4, l4end = rows.proto[idx], rows.l4[idx], rows.l4end[idx]
    tp = (l4 >= 0) & ((proto == IPPROTO_UDP) | (proto == IPPROTO_TCP)) & (l4 + UDP.LEN <= l4end)
    cand = idx[tp]
    at = rows.l4[cand]
    if sport is None:
        port53 = (rows.u16(at + UDP.SPORT) == DNS_PORT) | (rows.u16(at + UDP.DPORT) == DNS_PORT)
        cand, at = cand[port53], at[port53]
    end = rows.l4end[cand]
    tcp = rows.proto[cand] == IPPROTO_TCP
    ulen = rows.u16(at + UDP.ULEN)
    doff = (rows.u8(at + TCP.DOFF) >> 4) * 4
    start = np.where(tcp, at + doff, at + UDP.LEN)
    stop = np.where(tcp, end, at + ulen)
    ok = np.where(tcp, (at + TCP.LEN <= end) & (doff >= TCP.LEN) & (at + doff <= end),
                  (ulen >= UDP.LEN) & (at + ulen <= end))
    cand, start, stop, tcp = cand[ok], start[ok], stop[ok], tcp[ok]
    ip = rows.ip[cand]
    v6 = rows.payload[cand] == FAM_IPV6
    src = np.where(v6, ip + IPV6.SRC, ip + IPV4.SRC)
    src_end = src + np.where(v6, IPV6.ADDR_LEN, IPV4.ADDR_LEN)
    return start, stop, tcp, src, src_end


def icmpv6_spans(d: Decoded, idx, icmp_type=None):
    """(start, stop) of the ICMPv6 messages among the kernel's rows ``idx``
    (of type ``icmp_type`` only, when given)."""
    rows = d.rows
    fam, proto, l4, l4end = rows.payload[idx], rows.proto[idx], rows.l4[idx], rows.l4end[idx]
    sel = idx[(fam == FAM_IPV6) & (proto == IPPROTO_ICMPV6) & (l4 >= 0) & (l4 < l4end)]
    if icmp_type is not None:
        sel = sel[rows.u8(rows.l4[sel]) == icmp_type]
    return rows.l4[sel], rows.l4end[sel]


def message_spans(d: Decoded, idx, icmp_type=None):
    """``(dns_segments(d, idx), icmpv6_spans(d, idx, icmp_type))``: by one
    walk of the rows in _core.c ``spans`` where the compiled pass made
    them, else by the numpy forms (its specification)."""
    out = getattr(d.rows, "out", None)
    if _spans is None or out is None:
        return dns_segments(d, idx), icmpv6_spans(d, idx, icmp_type)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    m = len(idx)
    dns = np.empty((5, m), dtype=np.int64)
    icmp = np.empty((2, m), dtype=np.int64)
    k, j = _spans(d.batch.buffer, out.reshape(-1), idx, dns.reshape(-1), icmp.reshape(-1),
                  -1 if icmp_type is None else icmp_type)
    return ((dns[0, :k], dns[1, :k], dns[2, :k] != 0, dns[3, :k], dns[4, :k]),
            (icmp[0, :j], icmp[1, :j]))


# -- per-row forms, for the differential tests ------------------------------------

def frame_keys(batch, opts):
    """Per-row ``FrameKey``s, and how many rows fell back (for differential
    tests; the analysis path never builds these)."""
    keys, fallback, _ = classify(batch, opts)
    out = [unpack_key(k) for k in keys.tolist()]
    for i in fallback.tolist():
        _, lt, wire, data = record(batch, i)
        out[i] = frame_key(decode_frame(lt, data, wire, opts))
    return out, len(fallback)


def frame_columns(batch, opts):
    """Per-row ``columns.frame_columns`` tuples (None for non-IP rows),
    for differential tests as ``frame_keys``."""
    d = decode_batch(batch, opts)
    idx = d.ip_rows()
    cols = batch_columns(d, idx)
    out = [None] * len(batch)
    for i, row in zip(idx.tolist(), zip(*(cols[c].tolist() for c in COLUMNS))):
        out[i] = row
    for i in d.fallback.tolist():
        ts_i, lt, wire, data = record(batch, i)
        out[i] = reference_columns(decode_frame(lt, data, wire, opts), lt, data, ts_i, wire)
    return out
