"""Clients, flows and interface identifiers: who is on IPv6, not only how
many bytes are.

Both decoders hand this module the same few numbers per IP frame (its
*columns*, decode/columns.py: payload family, tunnel, time, transport, the
innermost IPv4 and IPv6 addresses, ports, ICMP type, Ethernet addresses);
everything after
that -- which side is the client, the client's key, the flow's 5-tuple,
the interface-identifier class -- is worked out here on whole arrays, so
one rule serves the fast path, the reference path and live capture, and
the differential tests compare the columns each decoder extracts.

The rules (docs/DECISIONS.md, "Clients and flows"):

Client side, judged on the innermost IP header (the payload's):
  1. with ``--client-prefix``: the side whose innermost IPv4 or IPv6
     address lies in a client prefix, when only one side does; no side
     inside: the frame is not a client's (transit), both inside: rule 2;
  2. a multicast or broadcast destination: the source;
  3. TCP/UDP: the side with the ephemeral port -- the port >= 1024 when the
     other is below, else the higher port; equal ports decide nothing;
  4. ICMP echo request and ICMPv6 echo request / router solicitation: the
     source; echo replies: the destination;
  5. otherwise the frame is counted as unattributed.

Client key (``--client-key``): ``mac`` the client side's Ethernet address
(frames on Ethernet links); ``ipv4`` the client side of the innermost IPv4
header (so 6in4 and Teredo clients are keyed by their IPv4 address);
``ipv6-64`` the /64 of the client side of the innermost IPv6 header (so
privacy addresses within a /64 are one client, and DS-Lite clients are
keyed by their IPv6 side); ``auto`` (default) ``mac`` on Ethernet links,
else ``ipv6-64`` for IPv6 payloads and ``ipv4`` for IPv4 payloads.

A client's families: IPv4 when an IPv4 payload was attributed to it; IPv6
when an IPv6 payload was, with the client side's address global (2000::/3,
so not link-local neighbour discovery); "link-local only" when it was seen
only with other IPv6 addresses. IPv6-capable = IPv6-only + dual-stack.

Flows: the bidirectional 5-tuple of the innermost IP header (ports 0 for
other protocols than TCP and UDP); TCP and UDP frames whose ports cannot
be read (non-first fragments, cut headers) are counted as unkeyed.

Interface identifiers: the innermost IPv6 source of every IPv6 payload,
when global (2000::/3) and not Teredo (whose low 64 bits are not an
interface identifier), classified as in addr6 (ipv6toolkit, RFC 7707
section 4.1), first match wins: eui64 (ff:fe in bytes 3-4 of the IID),
isatap, embedded_ipv4 (::a.b.c.d, or four words that read as decimal
bytes), embedded_port (a service port in the low or second-lowest word, rest
zero), low_byte (only the low 24 bits set), pattern_bytes (more than two
zero bytes), random.
"""

import ipaddress
import math

import numpy as np

from ..compiled import core_function
from ..decode.addresses import Prefix, ints_in_prefix, prefix_mask, words_in_prefix
from ..decode.columns import columns_of
from ..decode.registry import (FAM_IPV4, FAM_IPV6, IPPROTO_TCP, IPPROTO_UDP,
                               ISATAP_IID_HI32, ISATAP_IID_MASK, TEREDO_HI32, TUNNEL_KINDS,
                               is_isatap_iid)
from ..arrays import code_groups, distinct_set, unique_first
from .sketch import HashSketch, hash_words, relative_error

# what identifies a client; OFF (--no-clients): no clients, flows or interface
# ids. Declared with the other option values (options.py imports no numpy,
# so that the command line's help pages need none).
from ..options import CLIENT_KEYS, OFF  # noqa: E402
IID_CLASSES = ("eui64", "isatap", "embedded_ipv4", "embedded_port", "low_byte", "pattern_bytes",
               "random")

THRESHOLD, P = 8192, 12          # clients, flows, interface identifiers
BIN_THRESHOLD, BIN_P = 512, 12   # flows per time bin (4 KiB each at most)
MAX_FLOW_BINS = 4096             # time bins with a flow count (2.8 days of minutes)
BIN_PENDING = 1 << 19            # (bin, family, flow) triples waiting (10 bytes each)
assert 2 * MAX_FLOW_BINS <= 1 << 16         # a tracked bin's slot and family in 16 bits
ODD_BIN = 2.0 ** 58              # as the Summary's bins: a clock past int64 once scaled


def one_bin(lo: float, hi: float, interval: float):
    """The time bin every timestamp between ``lo`` and ``hi`` (a batch's
    earliest and latest) falls in, or None when they span several, or a
    clock is odd (NaN, infinite, past int64 once scaled): division by the
    interval and floor are monotonic, so the two ends decide."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    first = math.floor(lo / interval)
    return first if abs(first) < ODD_BIN and first == math.floor(hi / interval) else None

_TAG_MAC, _TAG_V4, _TAG_V6 = 1, 2, 3

# The groups ``code_groups`` sorts each stream's distinct hashes into, by
# the low bits ``stream_hashes`` gives them (see there). Clients (bit 0
# IPv4, bit 1 global IPv6): codes 0, 1, 3, 2 in that order, so that the
# IPv4 clients (1, 3) and the global IPv6 ones (3, 2) are each one slice.
# Flows (tunnel * 2 + family): the IPv4 flows of every tunnel, then the
# IPv6 ones. Interface identifiers: by class.
CLIENT_GROUPS = np.array([0, 1, 3, 2], dtype=np.int64)
_FLOW_V6 = 16                    # tunnel codes fit in four bits
assert len(TUNNEL_KINDS) <= _FLOW_V6
FLOW_GROUPS = np.array([(code & 1) * _FLOW_V6 + (code >> 1) for code in range(32)],
                       dtype=np.int64)
IID_GROUPS = np.arange(8, dtype=np.int64)
_SIDE_SRC, _SIDE_DST = 1, 2
_U = np.uint64
_SERVER_PORTS = (21, 22, 23, 25, 49, 53, 80, 110, 123, 179, 220, 389, 443, 547, 993, 995,
                  1194, 3306, 5060, 5061, 5432, 6446, 8080)
SERVER_PORT = np.zeros(65536, dtype=bool)     # ports the embedded_port class reads in an IID
for _p in _SERVER_PORTS:
    SERVER_PORT[_p] = True
    SERVER_PORT[int(str(_p), 16)] = True       # written as hex digits: ::443 is 0x443


# -- the compiled form of the per-row rules (_core.c ``population``) -------

COMPILED_INPUTS = ("fam", "tunnel", "proto", "sport", "dport", "icmp", "v4s", "v4d", "v6s_hi",
                   "v6s_lo", "v6d_hi", "v6d_lo", "mac_s", "mac_d")
COMPILED_OUTPUTS = ("side", "tag", "value", "flow_h", "flow_keyed", "client_h", "flow_coded",
                    "iid_sel", "iid_addr", "iid_prefix")
_UNSIGNED = ("value", "flow_h", "client_h", "flow_coded", "iid_addr", "iid_prefix")
_MODE_CODES = {"auto": 0, "mac": 1, "ipv4": 2, "ipv6-64": 3}


def _load_compiled():
    """``_core.population`` configured with this module's tables, or None
    (not built, or switched off as the compiled classifier is: fast/core.py)."""
    configure = core_function("configure_population")
    if configure is None:
        return None
    try:
        configure({
            "COUNTS": (len(COMPILED_INPUTS), len(COMPILED_OUTPUTS)),
            "ICMP_SIDE": ICMP_SIDE, "SERVER_PORT": SERVER_PORT.view(np.uint8),
            "FAM_IPV4": FAM_IPV4, "FAM_IPV6": FAM_IPV6, "IPPROTO_TCP": IPPROTO_TCP,
            "IPPROTO_UDP": IPPROTO_UDP, "TEREDO_HI32": TEREDO_HI32,
            "ISATAP_IID_MASK": ISATAP_IID_MASK, "ISATAP_IID_HI32": ISATAP_IID_HI32,
            "TAG_MAC": _TAG_MAC, "TAG_V4": _TAG_V4, "TAG_V6": _TAG_V6,
            "SIDE_SRC": _SIDE_SRC, "SIDE_DST": _SIDE_DST})
    except (KeyError, ValueError):
        return None             # built from other sources (tests/test_core.py fails CI)
    return core_function("population")


def _int64(a):
    a = np.asarray(a)
    if a.dtype == np.uint64:
        a = a.view(np.int64)
    return np.ascontiguousarray(a, dtype=np.int64)


def derive_compiled(c, mode: str, prefixes=()) -> dict:
    """``Population.derive`` by the compiled pass, with the rows' stream
    hashes besides (client_h, flow_coded, iid_sel/iid_addr/iid_prefix: what
    ``_clients``, ``_flows`` and ``_iids`` would hash)."""
    n = len(c["fam"])
    out = np.empty((len(COMPILED_OUTPUTS), n), dtype=np.int64)
    spec = []
    for pfam, (value, length) in prefixes:
        if pfam == FAM_IPV4:
            mask = prefix_mask(length, 32)
            spec.append((pfam, 0, 0, value & mask, mask))
        else:
            mask = prefix_mask(length)
            spec.append((pfam, (value & mask) >> 64, mask >> 64, value & mask & _WORD,
                         mask & _WORD))
    compiled(tuple(_int64(c[k]) for k in COMPILED_INPUTS),
             np.ascontiguousarray(c["has6"], dtype=bool).view(np.uint8), out.reshape(-1),
             _MODE_CODES[mode], spec)
    d = dict(zip(COMPILED_OUTPUTS, out))
    for k in _UNSIGNED:
        d[k] = d[k].view(np.uint64)
    d["flow_keyed"] = d["flow_keyed"] != 0
    d["iid_sel"] = d["iid_sel"] != 0
    return d


def parse_client_prefix(text: str):
    """'100.64.0.0/10' or '2001:db8::/32' -> (family, Prefix)."""
    net = ipaddress.ip_network(text, strict=False)
    return (FAM_IPV4 if net.version == 4 else FAM_IPV6,
            Prefix(int(net.network_address), net.prefixlen))


# -- rules over column arrays ----------------------------------------------

# ICMP types that name the client: requests and solicitations come from
# it, replies go to it (index: 257 * is_icmpv6 + type + 1; type -1: none).
ICMP_SIDE = np.zeros(2 * 257, dtype=np.int64)
ICMP_SIDE[8 + 1] = _SIDE_SRC                     # ICMP echo request
ICMP_SIDE[0 + 1] = _SIDE_DST                     # ICMP echo reply
ICMP_SIDE[257 + 128 + 1] = ICMP_SIDE[257 + 133 + 1] = _SIDE_SRC   # ICMPv6 echo request, RS
ICMP_SIDE[257 + 129 + 1] = _SIDE_DST             # ICMPv6 echo reply

_WORD = (1 << 64) - 1
BUILT = _load_compiled()        # _core.population, or None
compiled = BUILT                # the one derive uses (tests set None: the numpy rules)
# _core.c's flows by time bin of a batch over several bins, or None (tests
# set None: the numpy form in _bin_flows, its specification)
BUILT_BIN_FLOWS = core_function("bin_flows")
bin_flows = BUILT_BIN_FLOWS


def client_side(c, prefixes=()) -> np.ndarray:
    """0 (undecided), 1 (source) or 2 (destination) per row."""
    fam, sport, dport = c["fam"], c["sport"], c["dport"]
    v6 = fam == FAM_IPV6
    n = len(fam)
    # 3: ports. A port >= 1024 outranks any port below; then the higher
    # wins; rows without ports have -1 on both sides and stay undecided.
    ks = sport + (sport >= 1024) * 65536
    kd = dport + (dport >= 1024) * 65536
    side = (ks > kd) * _SIDE_SRC + (kd > ks) * _SIDE_DST
    # 4: ICMP (rows with ports have no ICMP type, and the other way round)
    side += ICMP_SIDE[v6 * 257 + c["icmp"] + 1]
    # 2: multicast or broadcast destination
    v4d = c["v4d"]
    mcast = np.where(v6, (c["v6d_hi"] >> _U(56)) == _U(0xFF),
                     ((v4d >> 28) == 0xE) | (v4d == 0xFFFFFFFF))
    side[mcast] = _SIDE_SRC
    if prefixes:
        s_in = np.zeros(n, dtype=bool)
        d_in = np.zeros(n, dtype=bool)
        has4, has6 = c["v4s"] >= 0, c["has6"]
        for pfam, (value, length) in prefixes:
            if pfam == FAM_IPV4:
                s_in |= has4 & ints_in_prefix(c["v4s"], value, length)
                d_in |= has4 & ints_in_prefix(c["v4d"], value, length)
            else:
                s_in |= has6 & words_in_prefix(c["v6s_hi"], c["v6s_lo"], value, length)
                d_in |= has6 & words_in_prefix(c["v6d_hi"], c["v6d_lo"], value, length)
        side = np.where(s_in & ~d_in, _SIDE_SRC,
                        np.where(d_in & ~s_in, _SIDE_DST, np.where(s_in, side, 0)))
    return side


def client_keys(c, side, mode: str):
    """(tag, value) per row; tag 0 where the row has no key in this mode."""
    src = side == _SIDE_SRC
    n = len(side)
    tag = np.zeros(n, dtype=np.int64)
    value = np.zeros(n, dtype=np.uint64)
    mac = np.where(src, c["mac_s"], c["mac_d"])
    v4 = np.where(src, c["v4s"], c["v4d"])
    v6 = np.where(src, c["v6s_hi"], c["v6d_hi"])
    v6lo = np.where(src, c["v6s_lo"], c["v6d_lo"])
    # 0.0.0.0, ::, and link-local /64s identify no one (DHCP, DAD, ND)
    has_mac, has4 = mac >= 0, v4 > 0
    has6 = c["has6"] & ((v6 >> _U(54)) != _U(0x3FA)) & ((v6 | v6lo) != _U(0))
    if mode == "mac":
        use = [(has_mac, _TAG_MAC, mac)]
    elif mode == "ipv4":
        use = [(has4, _TAG_V4, v4)]
    elif mode == "ipv6-64":
        use = [(has6, _TAG_V6, v6)]
    else:
        fam6 = c["fam"] == FAM_IPV6
        use = [(has_mac, _TAG_MAC, mac),
                (~has_mac & fam6 & has6, _TAG_V6, v6),
                (~has_mac & ~fam6 & has4, _TAG_V4, v4)]
    for ok, t, val in use:
        ok = ok & (side != 0) & (tag == 0)
        tag[ok] = t
        value[ok] = val[ok].astype(np.uint64)
    return tag, value


def _bit_count(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy 2's ``bitwise_count``, by bytes on older numpy)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def iid_classes(lo: np.ndarray) -> np.ndarray:
    """Index into ``IID_CLASSES`` of each interface identifier (uint64)."""
    hi32 = (lo >> _U(32)).astype(np.int64)
    lo32 = (lo & _U(0xFFFFFFFF)).astype(np.int64)
    top, lo16, up16 = lo32 >> 24, lo32 & 0xFFFF, lo32 >> 16
    zero_hi = hi32 == 0
    words = [hi32 >> 16, hi32 & 0xFFFF, up16, lo16]
    # zero bytes: the top bit of each byte of ``z`` is set iff that byte
    # of ``lo`` is zero (no carry crosses bytes: each sum stays below 256)
    low7 = _U(0x7F7F7F7F7F7F7F7F)
    z = ~(((lo & low7) + low7) | lo | low7)
    zero_bytes = _bit_count(z)
    conds = [
        ((hi32 & 0xFF) == 0xFF) & (top == 0xFE),                        # eui64
        is_isatap_iid(hi32),                                             # isatap
        zero_hi & (top != 0) & (lo16 != 0),                              # ::a.b.c.d
        zero_hi & (top == 0) & SERVER_PORT[lo16],                        # port
        zero_hi & ((lo32 & 0xFF00) == 0) & SERVER_PORT[up16],            # port, reversed
        zero_hi & (top == 0) & (lo16 != 0),                              # low_byte
        np.logical_and.reduce([w <= 0x255 for w in words]),              # decimal bytes
        zero_bytes > 2,                                                  # pattern_bytes
    ]
    choice = [0, 1, 2, 3, 3, 4, 2, 5]
    return np.select(conds, choice, default=len(IID_CLASSES) - 1)


def flow_hashes(c):
    """(hash, keyed) per row: the bidirectional 5-tuple's hash, and whether
    the row has one (TCP and UDP need readable ports)."""
    fam, proto = c["fam"], c["proto"]
    v6 = fam == FAM_IPV6
    tp = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)
    keyed = ~tp | (c["sport"] >= 0)
    ports = np.where(tp, 1, 0)
    sp, dp = c["sport"] * ports, c["dport"] * ports
    a_hi = np.where(v6, c["v6s_hi"], _U(0))
    a_lo = np.where(v6, c["v6s_lo"], c["v4s"].astype(np.uint64))
    b_hi = np.where(v6, c["v6d_hi"], _U(0))
    b_lo = np.where(v6, c["v6d_lo"], c["v4d"].astype(np.uint64))
    swap = (a_hi > b_hi) | ((a_hi == b_hi) & ((a_lo > b_lo) | ((a_lo == b_lo) & (sp > dp))))
    x_hi, y_hi = np.where(swap, b_hi, a_hi), np.where(swap, a_hi, b_hi)
    x_lo, y_lo = np.where(swap, b_lo, a_lo), np.where(swap, a_lo, b_lo)
    xp, yp = np.where(swap, dp, sp), np.where(swap, sp, dp)
    h = hash_words(fam * 256 + proto, x_hi, x_lo, y_hi, y_lo, xp * 65536 + yp)
    return h, keyed


def stream_hashes(c, d) -> dict:
    """What each distinct count of a row counts, given ``derive``'s ``d``:
    the client's hash with its families in the low two bits (``client_h``,
    0 for rows without a client key: bit 0 IPv4, bit 1 global IPv6), the
    flow's hash with its tunnel and family in the low five bits
    (``flow_coded``), and for global, non-Teredo IPv6 sources
    (``iid_sel``) the address's and its /64's hash with the interface-
    identifier class in the low three bits (``iid_addr``, ``iid_prefix``;
    0 elsewhere). One item per client, flow, address: what it is counted
    under rides along in bits its hash gives up."""
    side, tag = d["side"], d["tag"]
    fam6 = c["fam"] == FAM_IPV6
    hi = np.where(side == _SIDE_SRC, c["v6s_hi"], c["v6d_hi"])
    bits = np.where(fam6, np.where((hi >> _U(61)) == _U(1), _U(2), _U(0)), _U(1))
    client_h = np.where(tag != 0, (hash_words(tag, d["value"]) & ~_U(3)) | bits, _U(0))
    code = c["tunnel"].astype(np.uint64) * _U(2) + fam6
    flow_coded = (d["flow_h"] & ~_U(31)) | code
    shi, slo = c["v6s_hi"], c["v6s_lo"]
    sel = fam6 & c["has6"] & ((shi >> _U(61)) == _U(1)) & ((shi >> _U(32)) != _U(TEREDO_HI32))
    iid_addr = np.zeros(len(sel), dtype=np.uint64)
    iid_prefix = np.zeros(len(sel), dtype=np.uint64)
    if sel.any():
        hi, lo = shi[sel], slo[sel]
        cls = iid_classes(lo).astype(np.uint64)
        iid_addr[sel] = (hash_words(hi, lo) & ~_U(7)) | cls
        iid_prefix[sel] = (hash_words(hi) & ~_U(7)) | cls
    return {"client_h": client_h, "flow_coded": flow_coded, "iid_sel": sel,
            "iid_addr": iid_addr, "iid_prefix": iid_prefix}


# -- clients ---------------------------------------------------------------

class ClientSet:
    """Distinct clients and the families each was seen with, as three
    sketches of client-key hashes: every client, clients seen with IPv4,
    clients seen with global IPv6. While all three are exact, so are the
    figures (the intersection is computed); past the threshold the
    categories come from inclusion-exclusion over the sketches."""

    def __init__(self):
        self.all, self.v4, self.v6 = (HashSketch(THRESHOLD, P) for _ in range(3))

    @property
    def exact(self) -> bool:
        return self.all.exact and self.v4.exact and self.v6.exact

    def add(self, h, bounds):
        """``code_groups(client_h, CLIENT_GROUPS)``: every client, those
        seen with IPv4, those seen with global IPv6."""
        self.all.add(h)
        self.v4.add(h[bounds[1]:bounds[3]])
        self.v6.add(h[bounds[2]:bounds[4]])

    def merge(self, other: "ClientSet"):
        self.all.merge(other.all)
        self.v4.merge(other.v4)
        self.v6.merge(other.v6)

    def figures(self) -> dict:
        n4, n6, total = len(self.v4), len(self.v6), len(self.all)
        if self.v4.exact and self.v6.exact:
            dual = len(np.intersect1d(self.v4.hashes, self.v6.hashes, assume_unique=True))
        else:
            union = HashSketch(THRESHOLD, P)
            union.merge(self.v4)
            union.merge(self.v6)
            dual = max(0, n4 + n6 - len(union))
        v4only, v6only = max(0, n4 - dual), max(0, n6 - dual)
        return {"total": total, "ipv4_only": v4only, "ipv6_only": v6only, "dual_stack": dual,
                "link_local_only": max(0, total - v4only - v6only - dual)}

    def to_json(self) -> dict:
        return {"all": self.all.to_json(), "ipv4": self.v4.to_json(), "ipv6": self.v6.to_json()}

    def load(self, data: dict) -> "ClientSet":
        self.all.load(data["all"])
        self.v4.load(data["ipv4"])
        self.v6.load(data["ipv6"])
        return self


# -- the state a Summary keeps ---------------------------------------------

def _sketch():
    return HashSketch(THRESHOLD, P)


def _bin_sketches():
    return [HashSketch(BIN_THRESHOLD, BIN_P), HashSketch(BIN_THRESHOLD, BIN_P)]


class Population:
    """Clients, flows and interface identifiers of what a Summary holds.

    ``mode`` None means "not set yet" (an empty Summary, the identity of
    merge); two Populations with different modes or client prefixes do not
    merge. Rows come in as column arrays (``observe``) or one reference
    frame at a time (``add_row``, buffered and observed in blocks).
    """

    FLUSH_EVERY = 4096

    def __init__(self, mode=None, prefixes=()):
        self.mode = mode
        self.prefixes = tuple(prefixes)          # canonical strings
        self._parsed = tuple(parse_client_prefix(p) for p in self.prefixes)
        self.clients = ClientSet()
        self.attributed = 0
        self.unattributed = 0
        self.flows = {FAM_IPV4: _sketch(), FAM_IPV6: _sketch()}
        self.by_tunnel = {}                      # tunnel code -> HashSketch
        self.unkeyed = 0
        self.bins = {}                           # bin index -> [ipv4, ipv6] sketches
        self.untracked = 0                       # keyed frames of bins past MAX_FLOW_BINS
        self.iid_total = [_sketch(), _sketch()]  # source addresses, their /64s
        self._slots = {}                         # bin index -> slot (_bin_flows' triples)
        self._bin_pending = []                   # (slot * 2 + family, flow) arrays
        self._npending_bins = 0
        self.iid = {k: [_sketch(), _sketch()] for k in range(len(IID_CLASSES))}
        self._rows = []

    # -- adding -----------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.mode != OFF

    def add_row(self, row, interval):
        if row is None or self.mode == OFF:
            return
        self._rows.append(row)
        if len(self._rows) >= self.FLUSH_EVERY:
            self.flush(interval)

    def flush(self, interval):
        if self._rows:
            rows, self._rows = self._rows, []
            self.observe(columns_of(rows), interval)
        self._flush_bins()

    def derive(self, c) -> dict:
        """What clients, flows and the scorecard share of a block of rows:
        the client side, the client key (tag, value), the flow hash."""
        mode = self.mode if self.mode not in (None, OFF) else "auto"
        if compiled is not None:
            return derive_compiled(c, mode, self._parsed)
        side = client_side(c, self._parsed)
        tag, value = client_keys(c, side, mode)
        h, keyed = flow_hashes(c)
        return {"side": side, "tag": tag, "value": value, "flow_h": h, "flow_keyed": keyed}

    def observe(self, c, interval, derived=None):
        """Count the rows of column arrays ``c`` (in frame order)."""
        n = len(c["fam"])
        if not n or self.mode == OFF:
            return
        d = derived if derived is not None else self.derive(c)
        if "client_h" not in d:                     # the numpy rules' derive
            d = {**d, **stream_hashes(c, d)}
        self._clients(c, d)
        self._flows(c, interval, d)
        self._iids(c, d)

    # Each stream is deduplicated with one sort per batch: the few bits a
    # row's hash loses at the bottom carry what it is counted under (the
    # client's families, the flow's tunnel and family, the address's
    # class), so one sort gives every sketch its distinct items.

    def _clients(self, c, d):
        tag = d["tag"]
        keyed = tag != 0
        k = int(np.count_nonzero(keyed))
        self.attributed += k
        self.unattributed += len(tag) - k
        if k:
            self.clients.add(*code_groups(d["client_h"], CLIENT_GROUPS, keyed))

    def _flows(self, c, interval, d):
        keyed = d["flow_keyed"]
        self.unkeyed += int(np.count_nonzero(~keyed))
        flows, b = code_groups(d["flow_coded"], FLOW_GROUPS, keyed)
        for t in range(len(TUNNEL_KINDS)):
            if b[t] < b[t + 1] or b[_FLOW_V6 + t] < b[_FLOW_V6 + t + 1]:
                s = self.by_tunnel.get(t)
                if s is None:
                    s = self.by_tunnel[t] = _sketch()
                s.add(flows[b[t]:b[t + 1]])
                s.add(flows[b[_FLOW_V6 + t]:b[_FLOW_V6 + t + 1]])
        v4, v6 = flows[:b[_FLOW_V6]], flows[b[_FLOW_V6]:b[-1]]
        self.flows[FAM_IPV4].add(v4)
        self.flows[FAM_IPV6].add(v6)
        if len(flows):
            self._bin_flows(c["ts"], keyed, d["flow_coded"], interval, v4, v6)

    def _bin_flows(self, ts, keyed, coded, interval, v4, v6):
        """Flows per time bin of the rows ``keyed`` picks; ``v4, v6`` are
        their distinct IPv4 and IPv6 flows, for a batch in one bin."""
        first = one_bin(float(ts.min()), float(ts.max()), interval)
        if first is not None:
            self._bin_group(first, v4, v6, int(np.count_nonzero(keyed)))
            return
        if bin_flows is not None:
            self._bin_flows_compiled(ts, keyed, coded, interval)
            return
        fb = np.floor(ts / interval)
        h, fb = coded[keyed], fb[keyed]
        ok = np.abs(fb) < ODD_BIN
        if not ok.all():
            self.untracked += int(np.count_nonzero(~ok))
            fb, h = fb[ok], h[ok]
        if not len(fb):
            return
        u, hinv = unique_first(h)
        b = fb.astype(np.int64)
        ub, inv = unique_first(b)
        ubl = ub.tolist()
        tracked = self._admit(ubl)
        if not tracked.all():
            keep = tracked[inv]
            self.untracked += len(b) - int(np.count_nonzero(keep))
            inv, h, hinv = inv[keep], h[keep], hinv[keep]
            if not len(h):
                return                  # every bin of the batch past the cap
        # The distinct (bin, family, flow) triples: the key is the bin's
        # rank, the family bit, then the flow's rank in ``u``. They wait,
        # with their bin's slot, for _flush_bins: a batch spread over many
        # bins would otherwise make one sketch addition per bin and family
        # (real traffic: 5,000 a run, 150 a batch).
        m = len(u)
        key = distinct_set((inv * 2 + (h & _U(1)).astype(np.int64)) * m + hinv)
        group = key // m
        self._pend(ubl, group >> 1, group & 1, u[key % m])

    def _bin_flows_compiled(self, ts, keyed, coded, interval):
        """``_bin_flows`` of a batch over several bins by _core.c
        ``bin_flows``: the batch's bins in order of first appearance with
        their rows, and its distinct (bin, flow) pairs, which are the
        distinct triples below (a flow's family bit is its low bit); the
        bins admitted, the rows counted untracked and the pairs waiting for
        _flush_bins are the numpy form's."""
        n = len(ts)
        bins, rows, pair_bins = (np.empty(n, dtype=np.int64) for _ in range(3))
        pair_flows = np.empty(n, dtype=np.uint64)
        k, odd, npairs = bin_flows(np.ascontiguousarray(ts, dtype=np.float64).view(np.int64),
                                   np.ascontiguousarray(keyed, dtype=bool).view(np.uint8),
                                   np.ascontiguousarray(coded, dtype=np.uint64),
                                   float(interval), ODD_BIN, bins, rows, pair_bins, pair_flows)
        self.untracked += odd
        if not k:
            return
        ubl = bins[:k].tolist()
        tracked = self._admit(ubl)
        pb, pf = pair_bins[:npairs], pair_flows[:npairs]
        if not tracked.all():
            self.untracked += int(rows[:k][~tracked].sum())
            keep = tracked[pb]
            pb, pf = pb[keep], pf[keep]
            if not len(pb):
                return
        self._pend(ubl, pb, pf & _U(1), pf)

    def _admit(self, ubl):
        """Admit the bins ``ubl`` (a batch's, in order of first appearance)
        while there is room, so which bins get a flow count does not depend
        on how frames were batched; whether each is tracked."""
        if len(self.bins) < MAX_FLOW_BINS:
            for idx in ubl:
                if idx not in self.bins:
                    if len(self.bins) >= MAX_FLOW_BINS:
                        break
                    self.bins[idx] = _bin_sketches()
        return np.fromiter((x in self.bins for x in ubl), dtype=bool, count=len(ubl))

    def _pend(self, ubl, rank, family, flows):
        """The distinct (bin, family, flow) triples of a batch (each bin's
        rank in ``ubl``, its family bit, the flow's hash) wait, with their
        bin's slot, for _flush_bins."""
        slots, bins = self._slots, self.bins
        rank_slot = np.fromiter((slots.setdefault(idx, len(slots)) if idx in bins else 0
                                 for idx in ubl), dtype=np.uint16, count=len(ubl))
        self._bin_pending.append((rank_slot[rank] * np.uint16(2) + family.astype(np.uint16),
                                  flows & ~_U(31)))
        self._npending_bins += len(flows)
        if self._npending_bins >= BIN_PENDING:
            self._flush_bins()

    def _flush_bins(self):
        """Add the waiting (bin, family, flow) triples, grouped by bin and
        family (a radix sort of 16-bit slot numbers): one addition per
        sketch however many batches they came from. A set's sketch does
        not depend on the order or grouping of its items."""
        if not self._bin_pending:
            return
        parts, self._bin_pending, self._npending_bins = self._bin_pending, [], 0
        g = np.concatenate([a for a, _ in parts])
        f = np.concatenate([b for _, b in parts])
        order = np.argsort(g, kind="stable")
        g, f = g[order], f[order]
        ends = np.cumsum(np.bincount(g)).tolist()
        idx_of = list(self._slots)
        start = 0
        for gid, end in enumerate(ends):
            if end > start:
                self.bins[idx_of[gid >> 1]][gid & 1].add(f[start:end])
                start = end

    def _bin_group(self, idx, v4, v6, frames):
        """The distinct IPv4 and IPv6 flows of a batch in bin ``idx``."""
        pair = self.bins.get(idx)
        if pair is None:
            if len(self.bins) >= MAX_FLOW_BINS:
                self.untracked += frames
                return
            pair = self.bins[idx] = _bin_sketches()
        pair[0].add(v4)
        pair[1].add(v6)

    def _iids(self, c, d):
        sel = d["iid_sel"]
        if not sel.any():
            return
        ah, ba = code_groups(d["iid_addr"], IID_GROUPS, sel)
        ph, bp = code_groups(d["iid_prefix"], IID_GROUPS, sel)
        self.iid_total[0].add(ah)
        self.iid_total[1].add(ph)
        for k in range(len(IID_CLASSES)):
            if ba[k] < ba[k + 1] or bp[k] < bp[k + 1]:
                self.iid[k][0].add(ah[ba[k]:ba[k + 1]])
                self.iid[k][1].add(ph[bp[k]:bp[k + 1]])

    # -- merging ----------------------------------------------------------
    def merge(self, other: "Population", interval) -> "Population":
        """A new Population holding both (both are flushed first)."""
        for p in (self, other):
            p.flush(interval)
        if self.mode is not None and other.mode is not None and \
                (self.mode, self.prefixes) != (other.mode, other.prefixes):
            raise ValueError(f"cannot merge reports with client keys {self.describe()} "
                             f"and {other.describe()}")
        first = self if self.mode is not None else other
        out = Population(first.mode, first.prefixes)
        for p in (self, other):
            out.clients.merge(p.clients)
            out.attributed += p.attributed
            out.unattributed += p.unattributed
            out.unkeyed += p.unkeyed
            out.untracked += p.untracked
            for f in (FAM_IPV4, FAM_IPV6):
                out.flows[f].merge(p.flows[f])
            for t, s in p.by_tunnel.items():
                out.by_tunnel.setdefault(t, _sketch()).merge(s)
            for idx in sorted(p.bins):
                if idx not in out.bins and len(out.bins) >= MAX_FLOW_BINS:
                    continue
                pair = out.bins.setdefault(idx, _bin_sketches())
                pair[0].merge(p.bins[idx][0])
                pair[1].merge(p.bins[idx][1])
            for i in (0, 1):
                out.iid_total[i].merge(p.iid_total[i])
            for k, pair in p.iid.items():
                out.iid[k][0].merge(pair[0])
                out.iid[k][1].merge(pair[1])
        return out

    def describe(self) -> str:
        text = self.mode or "auto"
        return text + "".join(f" --client-prefix {p}" for p in self.prefixes)

    # -- reports ----------------------------------------------------------
    def bin_flows(self, idx):
        self._flush_bins()
        pair = self.bins.get(idx)
        if pair is None:
            return None
        return {"ipv4": len(pair[0]), "ipv6": len(pair[1])}

    def report(self) -> tuple[dict, dict]:
        """The ``clients`` and ``flows`` sections of the JSON report."""
        self._flush_bins()
        fig = self.clients.figures()
        capable = fig["ipv6_only"] + fig["dual_stack"]
        exact = self.clients.exact
        iid_exact = all(s.exact for s in self.iid_total) and \
            all(s.exact for pair in self.iid.values() for s in pair)
        clients = {
            "key": self.mode or "auto",
            "client_prefixes": list(self.prefixes),
            **fig,
            "ipv6_capable": capable,
            "share_ipv6_capable": capable / fig["total"] if fig["total"] else None,
            "frames": {"attributed": self.attributed, "unattributed": self.unattributed},
            "exact": exact,
            "relative_standard_error": 0.0 if exact else relative_error(P),
            "interface_ids": {
                "sources": {"addresses": len(self.iid_total[0]),
                            "prefixes64": len(self.iid_total[1])},
                "addresses": {name: len(self.iid[k][0]) for k, name in enumerate(IID_CLASSES)},
                "prefixes64": {name: len(self.iid[k][1]) for k, name in enumerate(IID_CLASSES)},
                "exact": iid_exact,
                "relative_standard_error": 0.0 if iid_exact else relative_error(P),
            },
        }
        n4, n6 = len(self.flows[FAM_IPV4]), len(self.flows[FAM_IPV6])
        fexact = all(s.exact for s in self.flows.values()) and \
            all(s.exact for s in self.by_tunnel.values())
        flows = {
            "total": n4 + n6,
            "ipv4": n4,
            "ipv6": n6,
            "share_ipv6": n6 / (n4 + n6) if n4 + n6 else None,
            "by_tunnel": {k: len(self.by_tunnel[i]) if i in self.by_tunnel else 0
                          for i, k in enumerate(TUNNEL_KINDS)},
            "unkeyed_frames": self.unkeyed,
            "exact": fexact,
            "relative_standard_error": 0.0 if fexact else relative_error(P),
            "bins": {"tracked": len(self.bins), "untracked_frames": self.untracked,
                     "exact_below": BIN_THRESHOLD,
                     "relative_standard_error": relative_error(BIN_P)},
        }
        return clients, flows

    def sketches(self, interval) -> dict:
        """Everything a later merge needs, as plain JSON."""
        self._flush_bins()
        return {
            "clients": self.clients.to_json(),
            "flows": {"ipv4": self.flows[FAM_IPV4].to_json(), "ipv6": self.flows[FAM_IPV6].to_json(),
                      "by_tunnel": {TUNNEL_KINDS[t]: s.to_json()
                                    for t, s in sorted(self.by_tunnel.items())}},
            "bins": [{"start": idx * interval, "ipv4": p[0].to_json(), "ipv6": p[1].to_json()}
                     for idx, p in sorted(self.bins.items())],
            "interface_ids": {"sources": [s.to_json() for s in self.iid_total],
                              **{name: [s.to_json() for s in self.iid[k]]
                                 for k, name in enumerate(IID_CLASSES)}},
        }

    @classmethod
    def from_report(cls, report: dict, interval) -> "Population":
        clients, flows = report.get("clients"), report.get("flows")
        sk = report.get("sketches")
        if clients is None or flows is None or sk is None:
            return cls(OFF)           # made with --no-clients (or before clients existed)
        p = cls(clients["key"], clients["client_prefixes"])
        p.attributed = clients["frames"]["attributed"]
        p.unattributed = clients["frames"]["unattributed"]
        p.unkeyed = flows["unkeyed_frames"]
        p.untracked = flows["bins"]["untracked_frames"]
        p.clients.load(sk["clients"])
        p.flows[FAM_IPV4].load(sk["flows"]["ipv4"])
        p.flows[FAM_IPV6].load(sk["flows"]["ipv6"])
        for name, data in sk["flows"]["by_tunnel"].items():
            p.by_tunnel[TUNNEL_KINDS.index(name)] = _sketch().load(data)
        for b in sk["bins"][:MAX_FLOW_BINS]:
            pair = p.bins[round(b["start"] / interval)] = _bin_sketches()
            pair[0].load(b["ipv4"])
            pair[1].load(b["ipv6"])
        ii = sk["interface_ids"]
        for i in (0, 1):
            p.iid_total[i].load(ii["sources"][i])
        for k, name in enumerate(IID_CLASSES):
            for i in (0, 1):
                p.iid[k][i].load(ii[name][i])
        return p
