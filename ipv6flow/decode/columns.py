"""The columns of a decoded frame: the few numbers per IP frame the
analyses read (clients, flows, interface identifiers, the scorecard,
translation), whichever decoder made them.

``frame_columns`` reads them from one reference-decoded frame;
``fast.batch_columns`` gathers the same from the numpy kernel's rows, and
the differential tests compare the two. Families and tunnel kinds are
registry codes (``FAM_*``, ``TUNNEL_CODE``).
"""

import numpy as np

from .registry import (ETH, FAM_IPV4, FAM_IPV6, ICMP, ICMP_OF, IPPROTO_TCP, LINKTYPE_ETHERNET,
                       PORTED, TCP, TUNNEL_CODE, UDP)

COLUMNS = ("fam", "tunnel", "ts", "proto", "sport", "dport", "icmp", "v4s", "v4d",
           "has6", "v6s_hi", "v6s_lo", "v6d_hi", "v6d_lo", "mac_s", "mac_d",
           "wire", "carrier", "flags", "ntun")
DTYPES = {"ts": np.float64, "has6": bool, "v6s_hi": np.uint64, "v6s_lo": np.uint64,
          "v6d_hi": np.uint64, "v6d_lo": np.uint64}


def empty_columns() -> dict:
    return {c: np.zeros(0, dtype=DTYPES.get(c, np.int64)) for c in COLUMNS}


def frame_columns(f, linktype: int, data, ts: float, wirelen: int):
    """The columns (in ``COLUMNS`` order) of a decoded IP frame; None for
    a frame with no IP payload. ``flags``: the TCP flags byte (-1 when
    not TCP or not captured)."""
    if f.payload == "non_ip":
        return None
    v6 = f.payload == "ipv6"
    proto = f.proto
    sport = dport = icmp = flags = -1
    if f.l4_off is not None:
        at, end = f.l4_off, f.l4_end
        if proto in PORTED and at + UDP.DPORT + 2 <= end:
            sport = (data[at + UDP.SPORT] << 8) | data[at + UDP.SPORT + 1]
            dport = (data[at + UDP.DPORT] << 8) | data[at + UDP.DPORT + 1]
            if proto == IPPROTO_TCP and at + TCP.FLAGS + 1 <= end:
                flags = data[at + TCP.FLAGS]
        elif proto == ICMP_OF[FAM_IPV6 if v6 else FAM_IPV4] and at < end:
            icmp = data[at + ICMP.TYPE]
    v4s = int.from_bytes(f.src4, "big") if f.src4 is not None else -1
    v4d = int.from_bytes(f.dst4, "big") if f.dst4 is not None else -1
    has6 = f.src6 is not None
    if has6:
        s, d = int.from_bytes(f.src6, "big"), int.from_bytes(f.dst6, "big")
    else:
        s = d = 0
    if linktype == LINKTYPE_ETHERNET and len(data) >= ETH.SRC + ETH.ADDR_LEN:
        mac_d = int.from_bytes(data[ETH.DST:ETH.DST + ETH.ADDR_LEN], "big")
        mac_s = int.from_bytes(data[ETH.SRC:ETH.SRC + ETH.ADDR_LEN], "big")
    else:
        mac_d = mac_s = -1
    return (FAM_IPV6 if v6 else FAM_IPV4, TUNNEL_CODE[f.tunnel], ts, proto, sport, dport,
            icmp, v4s, v4d, has6, s >> 64, s & 0xFFFFFFFFFFFFFFFF, d >> 64,
            d & 0xFFFFFFFFFFFFFFFF, mac_s, mac_d, wirelen,
            FAM_IPV6 if f.carrier == "ipv6" else FAM_IPV4, flags, len(f.tunnels))


def columns_of(rows) -> dict:
    """Column arrays from a list of ``frame_columns`` tuples."""
    if not rows:
        return empty_columns()
    out = {}
    for name, values in zip(COLUMNS, zip(*rows)):
        out[name] = np.array(values, dtype=DTYPES.get(name, np.int64))
    return out
