"""IPv4 as a service: NAT64 / 464XLAT, DS-Lite, lightweight 4over6, MAP-E
and MAP-T, found and sized in the traffic (docs/DECISIONS.md, "IPv4 as a
service").

Both decoders hand this module the same columns per IP frame as they hand
``population`` (payload family, tunnel, time, transport, ports, the
innermost IPv4 and IPv6 addresses) plus the frame's wire length; one rule
over whole arrays serves the fast path, the reference path and live
capture. For an IPv4 payload carried in IPv6 (4in6) the "innermost IPv6
header" is the outer one: its addresses are the B4/CE and the AFTR/BR.

Per frame (first match wins):

* 4in6, MAP-E (RFC 7597): one outer address's interface identifier has the
  RFC 7597 section 6 form (16 zero bits, the IPv4 address, the PSID) and
  carries the inner IPv4 address of its own side (public); that side's
  port lies in the PSID's port set (with ``--map-rule`` the rule's PSID
  length and offset; without, some PSID length at the default offset 6).
  Gateway: the other outer address (the BR).
* 4in6 with one outer address given by ``--aftr``: the other side is the
  B4; DS-Lite when the B4 side's inner IPv4 is private (RFC 1918), shared
  (RFC 6598) or from 192.0.0.0/29 (RFC 6333 B4 addresses), else lw4o6
  (RFC 7596: the B4 itself holds a public address and port set).
* 4in6 whose inner IPv4 on exactly one side is private, shared or a B4
  address, carrying TCP or UDP (or from a B4 address): DS-Lite, the other
  outer address the AFTR.
* other 4in6 (public on both sides, no MAP form, no ``--aftr``): counted
  as unclassified (two routers tunnelling look exactly like this).
* IPv6, MAP-T (RFC 7599): one address has the MAP interface-identifier
  form with a public IPv4 address and a port in its PSID's set, the other
  embeds a public IPv4 address as RFC 6052 does at /64 or /96 (the BR's
  DMR prefix, the gateway).
* IPv6 with one side in a NAT64 prefix (well-known, local-use,
  ``--nat64-prefix``, or found in the capture: DNS64, RFC 7050, PREF64,
  counted from the discovery on here and before it by the engine's
  second pass, ``Late``): NAT64, the prefix the gateway, the other
  side's /64 the client. Per client /64 the embedded IPv4 destinations and
  the flows (protocol, ports, IPv4) are kept: a destination that no AAAA
  answer of the capture names (literal IPv4, as a CLAT sends) or a flow
  also seen in plain IPv4 from 192.0.0.0/29 (RFC 7335, the CLAT's own
  side) makes the /64 a 464XLAT "CLAT suspect" -- decided at the end,
  since a DNS answer may come after the traffic.

Every table an attacker can grow is capped (see the MAX_ constants): a
frame past a cap is counted in ``untracked``, never kept; so figures are
exact below the caps, and the distinct counts are sketches (sketch.py),
exact up to their threshold.
"""

import ipaddress
import itertools

import numpy as np

from ..arrays import distinct, unique_inverse
from ..compiled import core_function
from ..decode.addresses import MAX_PREFIX_BITS, prefix_table, words_in_prefix, words_in_prefixes
from ..decode.registry import FAM_IPV4, FAM_IPV6, IPPROTO_TCP, IPPROTO_UDP, TEREDO_HI32, TUNNEL_CODE
from . import rfc6052
from .population import ODD_BIN, flow_hashes
from .sketch import HashSketch, hash_words, relative_error

MECHANISMS = ("nat64", "ds-lite", "lw4o6", "map-e", "map-t")
_NAT64, _DSLITE, _LW4O6, _MAPE, _MAPT = range(len(MECHANISMS))
THRESHOLD, P = 8192, 12          # flows, clients, IPv4 destinations per gateway
BIN_THRESHOLD, BIN_P = 512, 11   # the same per time bin
MAX_GATEWAYS = 64                # (mechanism, gateway) pairs
MAX_GATEWAY_BINS = 8192          # time bins summed over all gateways
MAX_DESTS = 256                  # IPv4 destinations listed in the report, per gateway
# Destinations a gateway counts (in the order they came) before the rest
# go to ``other``; the report lists the first MAX_DESTS of them. The
# margin lets the parts of --workers (each capped alone) merge to the one
# pass's list while no part meets more than this many (DECISIONS).
TRACK_DESTS = 2048
TOP_DESTS = 10                   # shown in text, CSV and Prometheus
MAX_CLIENTS64 = 4096             # NAT64 client /64s judged for 464XLAT
MAX_CLIENT_DESTS = 32            # embedded IPv4 destinations kept per client /64
MAX_CLIENT_FLOWS = 64            # flow keys kept per client /64
MAX_CLAT_FLOWS = 4096            # flow keys of plain IPv4 from 192.0.0.0/29
MAX_EXPLAINED = 8192             # AAAA answers inside NAT64 prefixes (for merges)
MAX_NAMES = 4                    # DNS names shown per destination
MAX_NAME_ADDRS = 1024            # IPv4 addresses whose names a report carries for merges
DEFAULT_PSID_OFFSET = 6          # RFC 7597 section 5.1

_U = np.uint64
_M32 = 0xFFFFFFFF
_4IN6 = TUNNEL_CODE["4in6"]
_NONE = TUNNEL_CODE["none"]
# candidates' rule in one compiled pass (None: the numpy rule; tests set it),
# and the codes it takes (families, tunnel kinds, 192.0.0.0/29 >> 3)
BUILT_CANDIDATES = core_function("xlat_candidates")
_xlat_candidates = BUILT_CANDIDATES
_CODES = np.array([FAM_IPV4, FAM_IPV6, _4IN6, _NONE, 0xC0000000 >> 3], dtype=np.int64)

# evidence bits per frame, and their names in the report
EV_PRIVATE, EV_SHARED, EV_B4, EV_CONFIGURED, EV_MAPIID, EV_PORTS, EV_RULE, EV_PEER, \
    EV_PUBLIC = (1 << i for i in range(9))
EVIDENCE = ((EV_PRIVATE, "private-inner"), (EV_SHARED, "shared-inner"),
            (EV_B4, "b4-range"), (EV_CONFIGURED, "configured"), (EV_MAPIID, "map-iid"),
            (EV_PORTS, "psid-ports"), (EV_RULE, "map-rule"), (EV_PEER, "rfc6052-peer"),
            (EV_PUBLIC, "public-inner"))
_EV_NAMES = {name for _, name in EVIDENCE}
# the columns the rules and the sizing read (population.flow_hashes' among
# them): the only ones a block of candidate rows keeps
READS = ("fam", "has6", "tunnel", "ntun", "ts", "proto", "sport", "dport", "v4s", "v4d",
         "v6s_hi", "v6s_lo", "v6d_hi", "v6d_lo")
# how a NAT64 gateway's prefix may be known for its confidence to be high
_STATED = {"well-known", "local-use", "configured", "rfc7050", "pref64"}


# -- rules over arrays -------------------------------------------------------

def _private(v4):
    """RFC 1918."""
    return ((v4 >> 24) == 10) | ((v4 >> 20) == 0xAC1) | ((v4 >> 16) == 0xC0A8)


def _shared(v4):
    """RFC 6598, 100.64.0.0/10."""
    return (v4 >> 22) == (0x64400000 >> 22)


def _b4(v4):
    """RFC 6333/7335, 192.0.0.0/29 (192.0.0.1 is the AFTR's)."""
    return ((v4 >> 3) == (0xC0000000 >> 3)) & (v4 != 0xC0000001)


def _public(v4):
    """Not private, shared, 0/8, loopback, link-local, 192.0.0.0/24,
    the documentation networks' neighbours aside, multicast or reserved."""
    top = v4 >> 24
    return ((v4 >= 0) & ~_private(v4) & ~_shared(v4) & (top != 0) & (top != 127) & (top < 224)
            & ((v4 >> 16) != 0xA9FE) & ((v4 >> 8) != 0xC00000))


def _map_iid(lo):
    """(has the form, IPv4, PSID) of interface identifiers ``lo`` (uint64):
    RFC 7597 section 6, 16 zero bits, 32 bits of IPv4, 16 bits of PSID."""
    form = (lo >> _U(48)) == _U(0)
    v4 = ((lo >> _U(16)) & _U(_M32)).astype(np.int64)
    psid = (lo & _U(0xFFFF)).astype(np.int64)
    return form, v4, psid


def _ports_fit(port, psid, offset, k):
    """Ports in the set of ``psid`` (length ``k``, offset ``offset``; RFC
    7597 section 5.1); a port of -1 (none to read) fits. ``port`` and
    ``psid`` are arrays, ``offset`` and ``k`` integers."""
    if k == 0:                      # no sharing: the whole address, every port
        return psid == 0
    shift = max(16 - offset - k, 0)
    mask = (1 << k) - 1
    ok = (((port >> shift) & mask) == psid) & (psid <= mask)
    if offset:
        ok &= (port >> (16 - offset)) != 0     # A = 0 (ports 0 .. 2**(16-a) - 1) is excluded
    return ok | (port < 0)


def _ports_fit_any(port, psid):
    """Without a rule: some PSID length k (1 .. 10 at offset 6) puts the
    port in the set of ``psid``; PSID 0 with no sharing (k = 0) fits any."""
    ok = (psid == 0) | (port < 0)
    for k in range(1, 16 - DEFAULT_PSID_OFFSET + 1):
        ok |= _ports_fit(port, psid, DEFAULT_PSID_OFFSET, k) & (psid < (1 << k))
    return ok


def _mapt_peer(hi, lo):
    """(embeds a public IPv4 as a DMR does, the IPv4, the prefix length):
    RFC 6052 at /64 (u octet and the last three bytes zero) or /96."""
    v64 = ((lo >> _U(24)) & _U(_M32)).astype(np.int64)
    at64 = ((lo >> _U(56)) == _U(0)) & ((lo & _U(0xFFFFFF)) == _U(0)) & _public(v64)
    v96 = (lo & _U(_M32)).astype(np.int64)
    at96 = ((lo >> _U(32)) == _U(0)) & _public(v96)
    ok = at64 | at96
    return ok, np.where(at64, v64, v96), np.where(at64, 64, 96)


def _global(hi):
    """2000::/3 and not Teredo (2001::/32)."""
    return ((hi >> _U(61)) == _U(1)) & ((hi >> _U(32)) != _U(TEREDO_HI32))


def parse_map_rule(text: str):
    """'2001:db8::/40,192.0.2.0/24,16,6' -> (v6 value, v6 length, v4 value,
    v4 length, EA bits, PSID offset); ValueError with the reason."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError(f"{text!r}: a MAP rule is IPV6PREFIX,IPV4PREFIX,EA_BITS,PSID_OFFSET")
    try:
        n6 = ipaddress.IPv6Network(parts[0], strict=False)
        n4 = ipaddress.IPv4Network(parts[1], strict=False)
        ea, offset = int(parts[2]), int(parts[3])
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None
    if not 0 <= ea <= 48 or not 0 <= offset <= 15:
        raise ValueError(f"{text!r}: EA bits must be 0-48 and the PSID offset 0-15")
    k = ea - (32 - n4.prefixlen)
    if n6.prefixlen + ea > 64:
        raise ValueError(f"{text!r}: the IPv6 prefix and the EA bits pass /64")
    if k > 16 - offset:
        raise ValueError(f"{text!r}: a PSID of {k} bits does not fit after offset {offset}")
    return (int(n6.network_address), n6.prefixlen, int(n4.network_address), n4.prefixlen,
            ea, offset)


def map_rule_text(rule) -> str:
    v6, l6, v4, l4, ea, offset = rule
    return f"{ipaddress.IPv6Address(v6)}/{l6},{ipaddress.IPv4Address(v4)}/{l4},{ea},{offset}"


def parse_aftr(text: str) -> bytes:
    """An AFTR (or BR) IPv6 address -> its 16 bytes; ValueError."""
    try:
        return ipaddress.IPv6Address(text.strip()).packed
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address such as 2001:db8::1") from None


def _v4_text(v: int) -> str:
    return str(ipaddress.IPv4Address(int(v)))


def _v6_text(value: int, length: int) -> str:
    if length == 128:
        return str(ipaddress.IPv6Address(value))
    return f"{ipaddress.IPv6Address(value)}/{length}"


# -- the figures of one gateway ---------------------------------------------

def _sketches(threshold, p):
    return [HashSketch(threshold, p) for _ in range(3)]     # flows, clients, IPv4


class Gateway:
    """Traffic of one (mechanism, gateway): totals, distinct counts, time
    bins, IPv4 destinations, and how many frames showed each evidence."""

    __slots__ = ("packets", "bytes", "distinct", "bins", "dests", "other", "evidence",
                 "unbinned")

    def __init__(self):
        self.packets = 0
        self.bytes = 0
        self.distinct = _sketches(THRESHOLD, P)
        self.bins = {}            # bin index -> [packets, bytes, [3 sketches]]
        self.dests = {}           # IPv4 int -> [packets, bytes]
        self.other = [0, 0]       # destinations past MAX_DESTS
        self.evidence = {}        # evidence name -> frames
        self.unbinned = 0         # frames whose bin was past the cap or the clock odd

    def merge_into(self, out: "Gateway", state: "TranslationState"):
        out.packets += self.packets
        out.bytes += self.bytes
        for a, b in zip(out.distinct, self.distinct):
            a.merge(b)
        for idx in sorted(self.bins):
            p, nb, sk = self.bins[idx]
            ob = out.bins.get(idx)
            if ob is None:
                if state.nbins >= MAX_GATEWAY_BINS:
                    out.unbinned += p
                    continue
                state.nbins += 1
                ob = out.bins[idx] = [0, 0, _sketches(BIN_THRESHOLD, BIN_P)]
            ob[0] += p
            ob[1] += nb
            for a, b in zip(ob[2], sk):
                a.merge(b)
        for v4, (p, nb) in self.dests.items():          # in the order they came
            _add_dest(out, v4, p, nb)
        out.other[0] += self.other[0]
        out.other[1] += self.other[1]
        for k, v in self.evidence.items():
            out.evidence[k] = out.evidence.get(k, 0) + v
        out.unbinned += self.unbinned


def _listed(g):
    """The destinations the report lists (the first MAX_DESTS counted,
    {IPv4 int: [packets, bytes]}) and [packets, bytes] of all the others."""
    listed = dict(itertools.islice(g.dests.items(), MAX_DESTS))
    other = list(g.other)
    for v4, (p, nb) in itertools.islice(g.dests.items(), MAX_DESTS, None):
        other[0] += p
        other[1] += nb
    return listed, other


def _add_dest(g, v4, p, nb):
    d = g.dests.get(v4)
    if d is None:
        if len(g.dests) >= TRACK_DESTS:
            g.other[0] += p
            g.other[1] += nb
            return
        d = g.dests[v4] = [0, 0]
    d[0] += p
    d[1] += nb


class Client64:
    """A NAT64 client /64: its traffic, the embedded IPv4 destinations it
    reached and its flow keys (for the 464XLAT judgement)."""

    __slots__ = ("packets", "bytes", "dests", "flows")

    def __init__(self):
        self.packets = 0
        self.bytes = 0
        # insertion-ordered (dicts of None): past the caps, parts merged in
        # order keep what one pass over the whole would have kept
        self.dests = {}           # IPv4 ints, at most MAX_CLIENT_DESTS
        self.flows = {}           # flow-key hashes, at most MAX_CLIENT_FLOWS

    def add_dests(self, items):
        for v in items:
            if len(self.dests) >= MAX_CLIENT_DESTS:
                break
            self.dests[v] = None

    def add_flows(self, items):
        for v in items:
            if len(self.flows) >= MAX_CLIENT_FLOWS:
                break
            self.flows[v] = None


class TranslationState:
    """What the mechanisms carried; see the module note."""

    BLOCK_ROWS = 32768       # candidate rows classified together

    def __init__(self, nat64_prefixes=(), aftr=(), map_rules=(), enabled=True):
        self.enabled = enabled    # False for sampled input (--sflow)
        self.nat64_prefixes = tuple(sorted(set(nat64_prefixes)))   # (value, length)
        self.aftr = tuple(sorted(set(aftr)))                        # 16-byte addresses
        self.map_rules = tuple(sorted(set(map_rules)))
        self.gateways = {}        # (mechanism, value, length) -> Gateway
        self.nbins = 0            # bins held over all gateways
        self.clients64 = {}       # (prefix value, length, client /64 int) -> Client64
        self.clat_flows = {}      # flow keys of plain IPv4 from 192.0.0.0/29 (ordered)
        self.untracked = {"gateways": [0, 0], "clients64": 0, "clat_flows": 0}
        self.unclassified = [0, 0]        # 4in6 frames that fit no rule
        self.port_mismatch = [0, 0]       # MAP-form frames whose port is outside the PSID's set
        # what merged reports bring (their DNS records are not in a report)
        self.frozen_explained = set()     # AAAA answers (16 bytes) inside NAT64 prefixes
        self.frozen_names = {}            # IPv4 int -> [set of names, has AAAA]
        self._blocks = []         # candidate rows waiting: (columns, wire lengths, indices)
        self._nblocked = 0
        self._aftr_words = [(int.from_bytes(a[:8], "big"), int.from_bytes(a[8:], "big"))
                            for a in self.aftr]

    # -- adding -------------------------------------------------------------
    def flush(self, interval):
        """Classify and count everything still waiting."""
        if self._blocks:
            blocks, self._blocks, self._nblocked = self._blocks, [], 0
            if len(blocks) == 1:
                c, wire, index = blocks[0]
            else:
                c = {k: np.concatenate([x[0][k] for x in blocks]) for k in blocks[0][0]}
                wire = np.concatenate([x[1] for x in blocks])
                index = None if blocks[0][2] is None else np.concatenate([x[2] for x in blocks])
            self._classify(c, wire, interval, index)

    def add_prefixes(self, prefixes, interval):
        """Count NAT64 prefixes found in the capture from here on (the
        rows waiting are classified first, without them: they came
        before; the second pass counts those, ``Late``)."""
        new = set(prefixes) - set(self.nat64_prefixes)
        if new:
            self.flush(interval)
            self.nat64_prefixes = tuple(sorted(set(self.nat64_prefixes) | new))

    def candidates(self, c) -> np.ndarray:
        """Rows that may belong to a mechanism: 4in6, IPv6 with a side in a
        NAT64 prefix or with a MAP interface identifier, plain IPv4 from or
        to 192.0.0.0/29. Cheap, so the fast path can pick rows before it
        reads their ports. In one pass of _core.c ``xlat_candidates`` where
        it is built; the numpy below is its specification."""
        nat64 = self._nat64_all()
        if _xlat_candidates is not None and len(nat64) <= MAX_PREFIX_BITS:
            out = np.empty(len(c["fam"]), dtype=bool)
            i64 = [np.ascontiguousarray(c[k], dtype=np.int64)
                   for k in ("fam", "tunnel", "ntun", "v4s", "v4d")]
            u64 = [np.ascontiguousarray(c[k], dtype=np.uint64)
                   for k in ("v6s_hi", "v6s_lo", "v6d_hi", "v6d_lo")]
            _xlat_candidates(i64[0], np.ascontiguousarray(c["has6"], dtype=bool).view(np.uint8),
                             *i64[1:], *u64, prefix_table(nat64), _CODES, out.view(np.uint8))
            return out
        fam, has6 = c["fam"], c["has6"]
        out = (fam == FAM_IPV4) & has6 & (c["tunnel"] == _4IN6) & (c["ntun"] == 1)
        six = (fam == FAM_IPV6) & has6
        if six.any():
            # a MAP interface identifier: 16 zero bits, then an IPv4 address
            # whose first octet is not 0 (one compare per side: 0 wraps)
            one, top = _U(1), _U(255)
            hit = (((c["v6s_lo"] >> _U(40)) - one) < top) | (((c["v6d_lo"] >> _U(40)) - one) < top)
            # a side in a NAT64 prefix, tested in full: a prefix found in
            # the capture may sit in a /32 that carries most of it (the
            # documentation prefix of the corpus's captures)
            hit |= words_in_prefixes(c["v6s_hi"], c["v6s_lo"], nat64)
            hit |= words_in_prefixes(c["v6d_hi"], c["v6d_lo"], nat64)
            out |= six & hit
        plain4 = (fam == FAM_IPV4) & ~has6 & (c["tunnel"] == _NONE)
        out |= plain4 & ((((c["v4s"] >> 3) == (0xC0000000 >> 3))
                          | ((c["v4d"] >> 3) == (0xC0000000 >> 3))))
        return out

    def _nat64_all(self):
        return sorted({rfc6052.WKP, rfc6052.LOCAL_USE} | set(self.nat64_prefixes))

    # -- classifying a block of rows ------------------------------------------
    def observe(self, c, wire, interval):
        """Count the rows of column arrays ``c`` (``wire``: their wire
        lengths). The candidate rows wait until BLOCK_ROWS of them have
        come (or the next ``flush``): a batch holds a few hundred, and the
        work per block is mostly a fixed cost. Frame order is kept, so
        the caps fill as they would one frame at a time."""
        if not len(c["fam"]):
            return
        sel = np.flatnonzero(self.candidates(c))
        if not len(sel):
            return
        self._blocks.append(({k: c[k][sel] for k in READS}, wire[sel], None))
        self._nblocked += len(sel)
        if self._nblocked >= self.BLOCK_ROWS:
            self.flush(interval)

    def _classify(self, c, wire, interval, index=None):
        """Classify and count candidate rows (see the module note)."""
        b = _Batch(c, wire)
        fam, has6, tunnel = b.c["fam"], b.c["has6"], b.c["tunnel"]
        t46 = (fam == FAM_IPV4) & has6 & (tunnel == _4IN6) & (b.c["ntun"] == 1)
        if t46.any():
            self._four_in_six(b, t46)
        six = (fam == FAM_IPV6) & has6
        if six.any():
            self._map_t(b, six)
            free = six & (b.mech < 0)
            if free.any():
                self._nat64(b, free)
        plain = (fam == FAM_IPV4) & ~has6 & (tunnel == _NONE)
        if plain.any():
            self._clat_side(b, plain)
        rows = np.flatnonzero(b.mech >= 0)
        if len(rows):
            self._size(b, rows, interval)

    def _mismatch(self, b, bad):
        if bad.any():
            self.port_mismatch[0] += int(np.count_nonzero(bad))
            self.port_mismatch[1] += int(b.wire[bad].sum())

    def _port_check(self, ce_hi, ce_v4, psid, port):
        """(port fits the PSID's set, the CE matched a --map-rule) per row."""
        fit = _ports_fit_any(port, psid)
        rule = np.zeros(len(psid), dtype=bool)
        for v6, l6, v4, l4, ea, offset in self.map_rules:
            k = max(0, ea - (32 - l4))
            m = words_in_prefix(ce_hi, ce_hi, v6, l6) & ~rule
            if l4:
                m &= (ce_v4 >> (32 - l4)) == (v4 >> (32 - l4))
            if m.any():
                fit = np.where(m, _ports_fit(port, psid, offset, k), fit)
                rule |= m
        return fit, rule

    def _four_in_six(self, b, t46):
        c = b.c
        sh, sl, dh, dl = c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"]
        v4s, v4d, sport, dport = c["v4s"], c["v4d"], c["sport"], c["dport"]
        # MAP-E: an outer interface identifier carries its own side's inner IPv4
        sf, sv4, spsid = _map_iid(sl)
        df, dv4, dpsid = _map_iid(dl)
        s_ce = t46 & sf & (sv4 == v4s) & _public(v4s)
        d_ce = t46 & df & (dv4 == v4d) & _public(v4d) & ~s_ce
        cand = s_ce | d_ce
        if cand.any():
            psid = np.where(s_ce, spsid, dpsid)
            port = np.where(s_ce, sport, dport)
            fit, rule = self._port_check(np.where(s_ce, sh, dh), np.where(s_ce, v4s, v4d),
                                         psid, port)
            self._mismatch(b, cand & ~fit)
            bits = EV_MAPIID | EV_PUBLIC | np.where(port >= 0, EV_PORTS, 0) \
                | np.where(rule, EV_RULE, 0)
            b.assign_sides(np.flatnonzero(cand & fit), _MAPE, s_ce, np.where(s_ce, v4d, v4s),
                           bits)
        free = t46 & (b.mech < 0)
        if not free.any():
            return
        s_b4 = _private(v4s) | _shared(v4s) | _b4(v4s)
        d_b4 = _private(v4d) | _shared(v4d) | _b4(v4d)
        s_aftr = np.zeros(b.n, dtype=bool)
        d_aftr = np.zeros(b.n, dtype=bool)
        for hi, lo in self._aftr_words:
            s_aftr |= (sh == _U(hi)) & (sl == _U(lo))
            d_aftr |= (dh == _U(hi)) & (dl == _U(lo))
        known = free & (s_aftr != d_aftr)
        b4_src = np.where(known, d_aftr, s_b4 & ~d_b4)
        inner = np.where(b4_src, v4s, v4d)
        kind = (np.where(_private(inner), EV_PRIVATE, 0) | np.where(_shared(inner), EV_SHARED, 0)
                | np.where(_b4(inner), EV_B4, 0))
        # Without --aftr only TCP and UDP tell a host behind a B4 (and the
        # B4's own 192.0.0.0/29 traffic): an ICMP message from a private
        # address is a router's (an lwAFTR's errors from its own 10/8
        # address in snabb's captures) and says nothing about who does NAT.
        proto = c["proto"]
        host = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP) | ((kind & EV_B4) != 0)
        ds = free & np.where(known, kind != 0, (s_b4 != d_b4) & host)
        lw = free & known & (kind == 0)
        remote = np.where(b4_src, v4d, v4s)
        conf = np.where(known, EV_CONFIGURED, 0)
        b.assign_sides(np.flatnonzero(ds), _DSLITE, b4_src, remote, kind | conf)
        b.assign_sides(np.flatnonzero(lw), _LW4O6, b4_src, remote, EV_PUBLIC | conf)
        rest = free & ~ds & ~lw
        if rest.any():
            self.unclassified[0] += int(np.count_nonzero(rest))
            self.unclassified[1] += int(b.wire[rest].sum())

    def _map_t(self, b, six):
        c = b.c
        sh, sl, dh, dl = c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"]
        sf, sv4, spsid = _map_iid(sl)
        df, dv4, dpsid = _map_iid(dl)
        s_ce = six & sf & _public(sv4) & _global(sh)
        d_ce = six & df & _public(dv4) & _global(dh)
        if not (s_ce.any() or d_ce.any()):
            return
        s_peer, s_pv4, s_plen = _mapt_peer(sh, sl)
        d_peer, d_pv4, d_plen = _mapt_peer(dh, dl)
        ce_src = s_ce & d_peer & _global(dh)
        ce_dst = d_ce & s_peer & _global(sh) & ~ce_src
        cand = ce_src | ce_dst
        if not cand.any():
            return
        psid = np.where(ce_src, spsid, dpsid)
        port = np.where(ce_src, c["sport"], c["dport"])
        fit, rule = self._port_check(np.where(ce_src, sh, dh), np.where(ce_src, sv4, dv4),
                                     psid, port)
        self._mismatch(b, cand & ~fit)
        rows = np.flatnonzero(cand & fit)
        if not len(rows):
            return
        plen = np.where(ce_src, d_plen, s_plen)
        peer_lo = np.where(ce_src, dl, sl)
        gl = np.where(plen == 96, peer_lo & _U(0xFFFFFFFF00000000), _U(0))
        bits = EV_MAPIID | EV_PEER | np.where(port >= 0, EV_PORTS, 0) | np.where(rule, EV_RULE, 0)
        b.assign(rows, _MAPT, ce_src, np.where(ce_src, dh, sh), gl, plen,
                 np.where(ce_src, d_pv4, s_pv4), bits)

    def _nat64(self, b, free, counted=None):
        """NAT64 rows: each to the first prefix (in sorted order) that
        holds one side and not the other. ``counted(prefix)``, when given,
        is the mask of rows that count for it (the second pass: the rest
        is still claimed, so that no later prefix takes it)."""
        c = b.c
        sh, sl, dh, dl = c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"]
        for value, length in self._nat64_all():
            s_in = free & words_in_prefix(sh, sl, value, length) & (b.mech < 0)
            d_in = free & words_in_prefix(dh, dl, value, length) & (b.mech < 0)
            out, inb = d_in & ~s_in, s_in & ~d_in
            rows = np.flatnonzero(out | inb)
            if not len(rows):
                continue
            src_client = out
            v4 = rfc6052.embedded_words(np.where(out, dh, sh)[rows], np.where(out, dl, sl)[rows], length)
            remote = np.full(b.n, -1, dtype=np.int64)
            remote[rows] = v4
            b.assign(rows, _NAT64, src_client, _U(value >> 64),
                     _U(value & 0xFFFFFFFFFFFFFFFF), length, remote, 0)
            b.cl_lo[rows] = 0                         # the client is its /64
            if counted is not None:
                keep = counted((value, length))[rows]
                rows, v4 = rows[keep], v4[keep]
                b.counted[rows] = True
                if not len(rows):
                    continue
            # per client /64: destinations and flow keys, for the 464XLAT judgement
            keys = _flow_keys(c["proto"][rows], np.where(out, c["sport"], c["dport"])[rows],
                              np.where(out, c["dport"], c["sport"])[rows], v4)
            clients = b.cl_hi[rows]
            uc, inv, first = _uniq_first(clients)
            packets = np.bincount(inv, minlength=len(uc))
            nbytes = np.bincount(inv, weights=b.wire[rows], minlength=len(uc))
            order = np.argsort(first, kind="stable").tolist()
            entries = {}
            for i in order:
                cl, p, nb = int(uc[i]), int(packets[i]), int(nbytes[i])
                key = (value, length, cl)
                e = self.clients64.get(key)
                if e is None:
                    if len(self.clients64) >= MAX_CLIENTS64:
                        self.untracked["clients64"] += p
                        continue
                    e = self.clients64[key] = Client64()
                e.packets += p
                e.bytes += nb
                if len(e.dests) < MAX_CLIENT_DESTS or len(e.flows) < MAX_CLIENT_FLOWS:
                    entries[i] = e
            if not entries:
                continue            # busy clients: their tables are full already
            # each client's destinations (those it sent to: what comes back
            # from the prefix may be an ICMPv6 error from prefix::router-ipv4)
            # and flows, in the order they came
            open_rows = np.isin(inv, np.fromiter(entries, dtype=np.int64, count=len(entries)))
            sent = out[rows] & open_rows
            dests, flows = {}, {}
            for i, v in _pairs_in_order(inv[sent], v4[sent], MAX_CLIENT_DESTS):
                dests.setdefault(i, []).append(v)
            for i, k in _pairs_in_order(inv[open_rows], keys[open_rows], MAX_CLIENT_FLOWS):
                flows.setdefault(i, []).append(k)
            for i, e in entries.items():
                e.add_dests(dests.get(i, ()))
                e.add_flows(flows.get(i, ()))

    def _clat_side(self, b, plain):
        c = b.c
        v4s, v4d, sport, dport = c["v4s"], c["v4d"], c["sport"], c["dport"]
        s7 = plain & ((v4s >> 3) == (0xC0000000 >> 3))
        d7 = plain & ~s7 & ((v4d >> 3) == (0xC0000000 >> 3))
        rows = np.flatnonzero(s7 | d7)
        if not len(rows):
            return
        src = s7[rows]
        keys = _flow_keys(c["proto"][rows], np.where(src, sport[rows], dport[rows]),
                          np.where(src, dport[rows], sport[rows]),
                          np.where(src, v4d[rows], v4s[rows]))
        self._add_clat_flows(k for k, _, _ in _in_order(keys, np.zeros(len(keys),
                                                                     dtype=np.int64)))

    def _add_clat_flows(self, keys):
        for k in keys:
            if k in self.clat_flows:
                continue
            if len(self.clat_flows) >= MAX_CLAT_FLOWS:
                self.untracked["clat_flows"] += 1
                continue
            self.clat_flows[k] = None

    # -- sizing ---------------------------------------------------------------
    def _gateway(self, key):
        g = self.gateways.get(key)
        if g is None and len(self.gateways) < MAX_GATEWAYS:
            g = self.gateways[key] = Gateway()
        return g

    def _size(self, b, rows, interval):
        if len(rows) == b.n:            # every row found its mechanism: no copy
            c, mech, ev, wire = b.c, b.mech, b.ev, b.wire
        else:
            c = {k: v[rows] for k, v in b.c.items()}
            mech, ev, wire = b.mech[rows], b.ev[rows], b.wire[rows]
        gh, gl, glen = b.gw_hi[rows], b.gw_lo[rows], b.gw_len[rows]
        gkey = hash_words(mech, gh, gl, glen)
        fh, keyed = flow_hashes(c)
        ch = hash_words(b.cl_hi[rows], b.cl_lo[rows])
        remote = b.remote[rows]
        vh = hash_words(remote)
        fb = np.floor(c["ts"] / interval)
        odd = ~(np.abs(fb) < ODD_BIN)
        bins = np.where(odd, 0, fb).astype(np.int64)
        # Gateways, then their bins, are admitted in the order their first
        # frame came in, so which get past a cap does not depend on how the
        # frames were cut into blocks (the two decoders cut differently).
        pair = np.where(odd, gkey, hash_words(gkey, bins))
        up, pinv, pfirst = _uniq_first(pair)
        tracked = np.zeros(len(up), dtype=bool)
        for pi in np.argsort(pfirst, kind="stable").tolist():
            r0 = int(pfirst[pi])
            g = self._gateway((MECHANISMS[int(mech[r0])], int(gh[r0]) << 64 | int(gl[r0]),
                               int(glen[r0])))
            if g is None or odd[r0]:
                continue
            idx = int(bins[r0])
            if idx not in g.bins:
                if self.nbins >= MAX_GATEWAY_BINS:
                    continue
                self.nbins += 1
                g.bins[idx] = [0, 0, _sketches(BIN_THRESHOLD, BIN_P)]
            tracked[pi] = True
        binned = tracked[pinv]
        ug, ginv, first = _uniq_first(gkey)
        for gi in np.argsort(first, kind="stable").tolist():
            r0 = int(first[gi])
            key = (MECHANISMS[int(mech[r0])], int(gh[r0]) << 64 | int(gl[r0]), int(glen[r0]))
            sel = np.flatnonzero(ginv == gi)
            w = wire[sel]
            g = self.gateways.get(key)
            if g is None:
                self.untracked["gateways"][0] += len(sel)
                self.untracked["gateways"][1] += int(w.sum())
                continue
            g.packets += len(sel)
            g.bytes += int(w.sum())
            for sk, h in zip(g.distinct, (fh[sel][keyed[sel]], ch[sel], vh[sel])):
                sk.add(distinct(h))
            e = ev[sel]
            for bit, name in EVIDENCE:
                n = int(np.count_nonzero(e & bit))
                if n:
                    g.evidence[name] = g.evidence.get(name, 0) + n
            for v4, p, nb in _in_order(remote[sel], w):
                _add_dest(g, v4, p, nb)
            inb = binned[sel]
            g.unbinned += int(np.count_nonzero(~inb))
            bsel = sel[inb]
            if not len(bsel):
                continue
            ub, binv = unique_inverse(bins[bsel])
            for bi, idx in enumerate(ub.tolist()):
                part = bsel[binv == bi]
                entry = g.bins[idx]
                entry[0] += len(part)
                entry[1] += int(wire[part].sum())
                for sk, h in zip(entry[2], (fh[part][keyed[part]], ch[part], vh[part])):
                    sk.add(distinct(h))

    # -- merging ----------------------------------------------------------------
    def merge(self, other: "TranslationState", interval) -> "TranslationState":
        for st in (self, other):
            st.flush(interval)
        out = TranslationState(set(self.nat64_prefixes) | set(other.nat64_prefixes),
                               set(self.aftr) | set(other.aftr),
                               set(self.map_rules) | set(other.map_rules))
        for st in (self, other):
            for key in st.gateways:                  # first frame first
                g = out._gateway(key)
                src = st.gateways[key]
                if g is None:
                    out.untracked["gateways"][0] += src.packets
                    out.untracked["gateways"][1] += src.bytes
                    continue
                src.merge_into(g, out)
            for key in st.clients64:
                e = st.clients64[key]
                o = out.clients64.get(key)
                if o is None:
                    if len(out.clients64) >= MAX_CLIENTS64:
                        out.untracked["clients64"] += e.packets
                        continue
                    o = out.clients64[key] = Client64()
                o.packets += e.packets
                o.bytes += e.bytes
                o.add_dests(e.dests)
                o.add_flows(e.flows)
            out._add_clat_flows(st.clat_flows)
            out.untracked["gateways"][0] += st.untracked["gateways"][0]
            out.untracked["gateways"][1] += st.untracked["gateways"][1]
            out.untracked["clients64"] += st.untracked["clients64"]
            out.untracked["clat_flows"] += st.untracked["clat_flows"]
            for pair, src in ((out.unclassified, st.unclassified),
                              (out.port_mismatch, st.port_mismatch)):
                pair[0] += src[0]
                pair[1] += src[1]
            out.frozen_explained |= st.frozen_explained
            for v4, (names, aaaa) in st.frozen_names.items():
                o = out.frozen_names.setdefault(v4, [set(), False])
                o[0] |= names
                o[1] = o[1] or aaaa
        return out

    # -- reports -----------------------------------------------------------------
    def _known(self, nat):
        """Every NAT64 prefix: counted here, or found in the capture."""
        found = set(nat.discovered()) if nat is not None else set()
        return sorted(set(self._nat64_all()) | found)

    def _explained(self, nat):
        """{(prefix value, length, IPv4 int)} that a AAAA answer of the
        capture names: traffic there needed no CLAT."""
        prefixes = self._known(nat)
        out = set()
        addrs = set(self.frozen_explained)
        if nat is not None:
            for by_addr in nat.aaaa.values():
                addrs.update(by_addr)
        for a in addrs:
            for value, length in prefixes:
                if rfc6052.in_prefix(a, value, length) and a[8] == 0:
                    out.add((value, length, int.from_bytes(rfc6052.extract(a, length), "big")))
        return out, addrs

    def _names(self, nat, wanted):
        """IPv4 int -> (sorted names whose A answers held it, whether any of
        them has a native AAAA answer)."""
        found = {v: [set(), False] for v in wanted}
        if nat is not None and wanted:
            prefixes = list(nat.discovered()) + self._nat64_all()
            native = {}
            for name, d in nat.a.items():
                for raw in d:
                    v = int.from_bytes(raw, "big")
                    if v not in found:
                        continue
                    found[v][0].add(name)
                    if name not in native:
                        native[name] = any(
                            not any(rfc6052.in_prefix(a6, pv, pl) for pv, pl in prefixes)
                            for a6 in nat.aaaa.get(name, ()))
                    found[v][1] = found[v][1] or native[name]
        for v, (names, aaaa) in self.frozen_names.items():
            if v in found:
                found[v][0] |= names
                found[v][1] = found[v][1] or aaaa
        return found

    def report(self, nat, interval) -> dict:
        """The ``translation`` object of the report; ``nat`` the Nat64State
        (its DNS answers explain NAT64 traffic and name destinations)."""
        self.flush(interval)
        explained, addrs = self._explained(nat)
        known = self._known(nat)
        dns64_seen = {(v, ln) for v, ln, _ in explained}
        discovered = nat.discovered() if nat is not None else {}
        # 464XLAT: client /64s with traffic no AAAA answer explains
        suspects = []
        per_prefix = {}
        for (value, length, cl), e in sorted(self.clients64.items()):
            unexplained = sorted(v for v in e.dests if (value, length, v) not in explained)
            clat = [f for f in e.flows if f in self.clat_flows]
            if not unexplained and not clat:
                continue
            evidence = (["unexplained-ipv4"] if unexplained else []) + \
                (["rfc7335-flows"] if clat else [])
            conf = "high" if clat else "medium" if (value, length) in dns64_seen else "low"
            suspects.append({
                "client": _v6_text(cl << 64, 64),
                "gateway": _v6_text(value, length),
                "evidence": evidence, "confidence": conf,
                "packets": e.packets, "bytes": e.bytes,
                "ipv4_destinations": len(e.dests),
                "unexplained_destinations": [_v4_text(v) for v in unexplained],
                "rfc7335_flows": len(clat),
            })
            per_prefix[(value, length)] = per_prefix.get((value, length), 0) + 1
        wanted = {v for g in self.gateways.values() for v in _listed(g)[0]}
        # The names of A answers travel in the report too (the lowest
        # addresses up to a cap): a part of a capture may hold the answer,
        # another the traffic.
        answered = set(self.frozen_names)
        if nat is not None:
            answered.update(int.from_bytes(raw, "big") for d in nat.a.values() for raw in d)
        carried = sorted(answered)[:MAX_NAME_ADDRS]
        names = self._names(nat, wanted | set(carried))
        gateways = []
        totals = {m: {"packets": 0, "bytes": 0, "gateways": 0} for m in MECHANISMS}
        order = {m: i for i, m in enumerate(MECHANISMS)}
        for key in sorted(self.gateways, key=lambda k: (order[k[0]], k[2], k[1])):
            mech, value, length = key
            g = self.gateways[key]
            evidence = sorted(k for k in g.evidence if k != "public-inner" or mech != "map-e")
            if mech == "nat64":
                evidence = sorted(set(evidence) | {rfc6052.kind_of(value, length)}
                                  | set(discovered.get((value, length), ()))
                                  | ({"clat-suspects"} if per_prefix.get((value, length))
                                     else set()))
            clients = len(g.distinct[1])
            if mech == "ds-lite" and clients >= 2:
                evidence = sorted(set(evidence) | {"many-b4s"})
            gateways.append(self._gateway_report(mech, value, length, g, evidence, clients,
                                                 names, interval, per_prefix))
            t = totals[mech]
            t["packets"] += g.packets
            t["bytes"] += g.bytes
            t["gateways"] += 1
        exact = all(s.exact for g in self.gateways.values() for s in g.distinct)
        return {
            "aftr": [str(ipaddress.IPv6Address(a)) for a in self.aftr],
            "map_rules": [map_rule_text(r) for r in self.map_rules],
            "mechanisms": totals,
            "gateways": gateways,
            "clat_suspects": suspects,
            "unclassified_4in6": {"packets": self.unclassified[0], "bytes": self.unclassified[1]},
            "map_port_mismatch": {"packets": self.port_mismatch[0],
                                  "bytes": self.port_mismatch[1]},
            "untracked": {"gateway_frames": self.untracked["gateways"][0],
                          "gateway_bytes": self.untracked["gateways"][1],
                          "client64_frames": self.untracked["clients64"],
                          "clat_flows": self.untracked["clat_flows"]},
            "exact": exact,
            "relative_standard_error": 0.0 if exact else relative_error(P),
            # sorted, so that merges in any order write the same report (in
            # process, merges keep the order frames came in, for the caps)
            "state": {
                "clients64": [{"gateway": _v6_text(v, ln), "client": _v6_text(cl << 64, 64),
                               "packets": e.packets, "bytes": e.bytes,
                               "destinations": [_v4_text(x) for x in sorted(e.dests)],
                               "flows": [f"{x:016x}" for x in sorted(e.flows)]}
                              for (v, ln, cl), e in sorted(self.clients64.items())],
                "clat_flows": [f"{x:016x}" for x in sorted(self.clat_flows)],
                "names": [{"address": _v4_text(v), "names": sorted(names[v][0])[:MAX_NAMES],
                           "aaaa": bool(names[v][1])} for v in carried if names[v][0]],
                "explained": sorted(str(ipaddress.IPv6Address(a)) for a in addrs
                                    if any(rfc6052.in_prefix(a, v, ln)
                                           for v, ln in known))[:MAX_EXPLAINED],
            },
        }

    def _gateway_report(self, mech, value, length, g, evidence, clients, names, interval,
                        per_prefix):
        if mech == "ds-lite":
            strong = "configured" in evidence or "many-b4s" in evidence
            conf = "high" if strong else "medium"
        elif mech == "nat64":
            # stated or announced (RFC 7050, PREF64): high; inferred from
            # DNS64 answers alone (a native AAAA that happens to end in its
            # A's address looks the same): medium
            conf = "high" if _STATED & set(evidence) else "medium"
        elif mech == "lw4o6":
            conf = "high"
        else:
            conf = "high" if "map-rule" in evidence else \
                "medium" if "psid-ports" in evidence else "low"
        bins = []
        for idx in sorted(g.bins):
            p, nb, sk = g.bins[idx]
            bins.append({"start": idx * interval, "packets": p, "bytes": nb,
                         "flows": len(sk[0]), "clients": len(sk[1]),
                         "ipv4_destinations": len(sk[2]),
                         "distinct": {"flows": sk[0].to_json(), "clients": sk[1].to_json(),
                                      "ipv4_destinations": sk[2].to_json()}})
        peak = None
        for b in bins:
            if peak is None or b["bytes"] > peak["bytes"]:
                peak = b
        if peak is not None:
            peak = {k: peak[k] for k in ("start", "packets", "bytes", "flows", "clients",
                                         "ipv4_destinations")}
        dests = []
        listed, other = _listed(g)
        for v4 in sorted(listed, key=lambda v: (-listed[v][1], -listed[v][0], v)):
            p, nb = listed[v4]
            nm, aaaa = names.get(v4, (set(), False))
            dests.append({"address": _v4_text(v4), "packets": p, "bytes": nb,
                          "names": sorted(nm)[:MAX_NAMES], "aaaa": bool(aaaa)})
        out = {
            "mechanism": mech,
            "gateway": _v6_text(value, length),
            "evidence": evidence,
            "confidence": conf,
            "packets": g.packets,
            "bytes": g.bytes,
            "flows": len(g.distinct[0]),
            "clients": clients,
            "ipv4_destinations": len(g.distinct[2]),
            "peak": peak,
            "bins": bins,
            "destinations": dests,
            "other_destinations": {"packets": other[0], "bytes": other[1]},
            "unbinned_frames": g.unbinned,
            "evidence_frames": dict(sorted(g.evidence.items())),
            "distinct": {"flows": g.distinct[0].to_json(), "clients": g.distinct[1].to_json(),
                         "ipv4_destinations": g.distinct[2].to_json()},
        }
        if mech == "nat64":
            out["clat_suspects"] = per_prefix.get((value, length), 0)
        return out

    @classmethod
    def from_report(cls, tr: dict, interval) -> "TranslationState":
        """The state a finished report's ``translation`` object stands for."""
        nat64 = set()
        st = cls((), tuple(parse_aftr(a) for a in tr.get("aftr", ())),
                 tuple(parse_map_rule(r) for r in tr.get("map_rules", ())))
        for gr in tr.get("gateways", ()):
            if gr["mechanism"] not in MECHANISMS:
                raise ValueError(f"unknown translation mechanism {gr['mechanism']!r}")
            net = ipaddress.IPv6Network(gr["gateway"], strict=False)
            key = (gr["mechanism"], int(net.network_address), net.prefixlen)
            if gr["mechanism"] == "nat64":
                nat64.add((key[1], key[2]))
            g = st._gateway(key)
            if g is None:
                continue
            g.packets, g.bytes = _count(gr["packets"]), _count(gr["bytes"])
            for sk, name in zip(g.distinct, ("flows", "clients", "ipv4_destinations")):
                sk.load(gr["distinct"][name])
            for b in gr["bins"]:
                if st.nbins >= MAX_GATEWAY_BINS:
                    g.unbinned += _count(b["packets"])
                    continue
                st.nbins += 1
                sk = _sketches(BIN_THRESHOLD, BIN_P)
                for s, name in zip(sk, ("flows", "clients", "ipv4_destinations")):
                    s.load(b["distinct"][name])
                g.bins[round(float(b["start"]) / interval)] = [_count(b["packets"]),
                                                                 _count(b["bytes"]), sk]
            for d in gr["destinations"][:MAX_DESTS]:
                v4 = int(ipaddress.IPv4Address(d["address"]))
                g.dests[v4] = [_count(d["packets"]), _count(d["bytes"])]
                if d["names"] or d["aaaa"]:
                    f = st.frozen_names.setdefault(v4, [set(), False])
                    f[0] |= {str(x) for x in d["names"][:MAX_NAMES]}
                    f[1] = f[1] or bool(d["aaaa"])
            g.other = [_count(gr["other_destinations"]["packets"]),
                       _count(gr["other_destinations"]["bytes"])]
            g.unbinned += _count(gr["unbinned_frames"])
            g.evidence = {k: _count(v) for k, v in gr["evidence_frames"].items()
                          if k in _EV_NAMES}
        state = tr.get("state") or {}
        for e in state.get("clients64", ())[:MAX_CLIENTS64]:
            net = ipaddress.IPv6Network(e["gateway"], strict=False)
            cl = int(ipaddress.IPv6Network(e["client"], strict=False).network_address) >> 64
            o = st.clients64[(int(net.network_address), net.prefixlen, cl)] = Client64()
            o.packets, o.bytes = _count(e["packets"]), _count(e["bytes"])
            o.add_dests(int(ipaddress.IPv4Address(x)) for x in e["destinations"])
            o.add_flows(int(x, 16) for x in e["flows"])
            nat64.add((int(net.network_address), net.prefixlen))
        st.clat_flows = {int(x, 16): None for x in state.get("clat_flows", ())[:MAX_CLAT_FLOWS]}
        for e in state.get("names", ())[:MAX_NAME_ADDRS]:
            f = st.frozen_names.setdefault(int(ipaddress.IPv4Address(e["address"])),
                                           [set(), False])
            f[0] |= {str(x) for x in e["names"][:MAX_NAMES]}
            f[1] = f[1] or bool(e["aaaa"])
        st.frozen_explained = {ipaddress.IPv6Address(a).packed
                               for a in state.get("explained", ())[:MAX_EXPLAINED]}
        st.nat64_prefixes = tuple(sorted(nat64 - {rfc6052.WKP, rfc6052.LOCAL_USE}))
        u = tr.get("untracked") or {}
        st.untracked = {"gateways": [_count(u.get("gateway_frames", 0)),
                                     _count(u.get("gateway_bytes", 0))],
                        "clients64": _count(u.get("client64_frames", 0)),
                        "clat_flows": _count(u.get("clat_flows", 0))}
        for pair, name in ((st.unclassified, "unclassified_4in6"),
                           (st.port_mismatch, "map_port_mismatch")):
            v = tr.get(name) or {}
            pair[0], pair[1] = _count(v.get("packets", 0)), _count(v.get("bytes", 0))
        return st


class Late(TranslationState):
    """The second pass (engine/local.py): the NAT64 rows of prefixes found
    in the capture, in the frames before the first pass counted them.
    Every row is classified as in one pass with all the prefixes known at
    the end (``prefixes``), and only the rows a job names count: ``jobs``
    is {prefix: frames before which it counts, or None for all}. Rows
    whose frame index ``observe_at`` is told. Nothing else (other
    mechanisms, unclassified 4in6, port mismatches, RFC 7335 flows) is
    counted here: the first pass counted it."""

    def __init__(self, prefixes, jobs, aftr=(), map_rules=()):
        super().__init__(prefixes, aftr, map_rules)
        self.jobs = dict(jobs)
        self._late = sorted(self.jobs)
        ends = self.jobs.values()
        self.last = None if None in ends else max(ends, default=0)

    def wants(self, c) -> np.ndarray:
        """IPv6 rows with a side in a job's prefix (the only rows that can
        count here)."""
        fam, has6 = c["fam"], c["has6"]
        six = (fam == FAM_IPV6) & has6
        if not six.any():
            return six
        return six & self.in_jobs(c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"])

    def in_jobs(self, s_hi, s_lo, d_hi, d_lo) -> np.ndarray:
        """Rows whose source or destination (address words) lies in a
        job's prefix."""
        return words_in_prefixes(s_hi, s_lo, self._late) | words_in_prefixes(d_hi, d_lo, self._late)

    def observe_at(self, c, wire, index, interval):
        """As ``observe``, for rows at frame indices ``index`` (of the file
        or part the jobs' limits are counted in)."""
        if not len(c["fam"]):
            return
        sel = self.wants(c)
        if self.last is not None:
            sel &= index < self.last
        sel = np.flatnonzero(sel)
        if not len(sel):
            return
        self._blocks.append(({k: c[k][sel] for k in READS}, wire[sel], index[sel]))
        self._nblocked += len(sel)
        if self._nblocked >= self.BLOCK_ROWS:
            self.flush(interval)

    def _classify(self, c, wire, interval, index=None):
        b = _Batch(c, wire)
        b.counted = np.zeros(b.n, dtype=bool)
        six = (c["fam"] == FAM_IPV6) & c["has6"]
        self._map_t(b, six)           # MAP-T claims its rows first, as in one pass
        free = six & (b.mech < 0)
        if free.any():
            self._nat64(b, free, lambda p: self._until(p, index))
        rows = np.flatnonzero(b.counted)
        if len(rows):
            self._size(b, rows, interval)

    def _until(self, prefix, index):
        if prefix not in self.jobs:
            return np.zeros(len(index), dtype=bool)
        end = self.jobs[prefix]
        return np.ones(len(index), dtype=bool) if end is None else index < end

    def _mismatch(self, b, bad):
        pass                          # counted by the first pass


def prepend(state: TranslationState, earlier: TranslationState, interval, drop=(),
            prefixes=()):
    """``state`` (a first pass) with ``earlier`` (the second pass over the
    frames before it, a ``Late`` or their merge) counted as if it had come
    first: each gateway and client /64 of ``earlier`` merged before the
    first pass's own, so that destinations and bins are admitted in the
    order one pass over the whole would admit them. The NAT64 gateways of
    ``drop`` (prefixes the second pass counted over the whole input) are
    removed first; ``prefixes`` (every prefix found) join the counted set."""
    state.flush(interval)
    drop = set(drop)
    if drop:
        for key in [k for k in state.gateways if k[0] == "nat64" and k[1:] in drop]:
            state.nbins -= len(state.gateways.pop(key).bins)
        for key in [k for k in state.clients64 if k[:2] in drop]:
            del state.clients64[key]
    if earlier is not None:
        earlier.flush(interval)
        for key, g in earlier.gateways.items():
            mine = state.gateways.get(key)
            if mine is None:
                if state._gateway(key) is None:
                    state.untracked["gateways"][0] += g.packets
                    state.untracked["gateways"][1] += g.bytes
                    continue
                mine = state.gateways[key]
            state.nbins -= len(mine.bins)
            fresh = Gateway()
            g.merge_into(fresh, state)
            mine.merge_into(fresh, state)
            state.gateways[key] = fresh       # in place: the dict keeps its order
        for key, e in earlier.clients64.items():
            mine = state.clients64.get(key)
            if mine is None and len(state.clients64) >= MAX_CLIENTS64:
                state.untracked["clients64"] += e.packets
                continue
            o = Client64()
            for src in (e, mine):
                if src is not None:
                    o.packets += src.packets
                    o.bytes += src.bytes
                    o.add_dests(src.dests)
                    o.add_flows(src.flows)
            state.clients64[key] = o
        state.untracked["gateways"][0] += earlier.untracked["gateways"][0]
        state.untracked["gateways"][1] += earlier.untracked["gateways"][1]
        state.untracked["clients64"] += earlier.untracked["clients64"]
    state.nat64_prefixes = tuple(sorted(set(state.nat64_prefixes) | set(prefixes)))
    return state


def _uniq_first(x):
    """``unique_inverse(x, return_first=True)`` without its stable sort of
    the whole array: the first row of each value by ``minimum.at``."""
    u, inv = unique_inverse(x)
    first = np.full(len(u), len(x), dtype=np.int64)
    np.minimum.at(first, inv, np.arange(len(x), dtype=np.int64))
    return u, inv, first


def _count(v) -> int:
    """A count read back from a report: a non-negative integer, or ValueError."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"a count must be a non-negative integer, not {v!r}")
    return v


def _in_order(values, wire):
    """(value, frames, bytes) per distinct value, in the order of each
    value's first row."""
    u, inv, first = _uniq_first(values)
    p = np.bincount(inv, minlength=len(u))
    nb = np.bincount(inv, weights=wire, minlength=len(u))
    for i in np.argsort(first, kind="stable").tolist():
        yield int(u[i]), int(p[i]), int(nb[i])


def _pairs_in_order(group, values, cap=None):
    """Distinct (group, value) pairs, in the order of their first row; with
    ``cap``, only each group's first ``cap`` of them: a Client64 table,
    which takes distinct values in order while it holds fewer than
    ``cap``, is full after the first ``cap`` whatever it held before (each
    of them it held already is a place it had filled), so the rest change
    nothing."""
    key = hash_words(group, values)
    _, _, first = _uniq_first(key)
    first = np.sort(first)
    g = group[first]
    if cap is not None and len(g) > cap:
        # each pair's rank in its group: its place among the group's pairs
        # once they are sorted (stably) by group
        order = np.argsort(g, kind="stable")
        gs = g[order]
        start = np.flatnonzero(np.concatenate(([True], gs[1:] != gs[:-1])))
        size = np.diff(np.append(start, len(gs)))
        rank = np.empty(len(g), dtype=np.int64)
        rank[order] = np.arange(len(g)) - np.repeat(start, size)
        keep = rank < cap
        first, g = first[keep], g[keep]
    return zip(g.tolist(), values[first].tolist())


def _flow_keys(proto, cport, rport, v4):
    """One hash per (protocol, client port, remote port, remote IPv4): the
    same in IPv4 before a CLAT and in IPv6 after it (SIIT keeps ports)."""
    return hash_words(proto, cport, rport, v4)


class _Batch:
    """The candidate rows of one ``observe`` and what each was found to be."""

    def __init__(self, c, wire):
        self.c = c
        self.wire = wire
        n = self.n = len(wire)
        self.mech = np.full(n, -1, dtype=np.int64)
        self.gw_hi = np.zeros(n, dtype=np.uint64)
        self.gw_lo = np.zeros(n, dtype=np.uint64)
        self.gw_len = np.full(n, 128, dtype=np.int64)
        self.cl_hi = np.zeros(n, dtype=np.uint64)
        self.cl_lo = np.zeros(n, dtype=np.uint64)
        self.remote = np.full(n, -1, dtype=np.int64)
        self.ev = np.zeros(n, dtype=np.int64)

    @staticmethod
    def _at(x, rows):
        return x[rows] if isinstance(x, np.ndarray) and x.ndim else x

    def assign(self, rows, mech, client_src, gw_hi, gw_lo, gw_len, remote, bits):
        """Rows ``rows`` are ``mech`` through gateway (gw_hi, gw_lo, gw_len);
        the client is the source where ``client_src`` (per batch row)."""
        if not len(rows):
            return
        c = self.c
        self.mech[rows] = mech
        self.gw_hi[rows] = self._at(gw_hi, rows)
        self.gw_lo[rows] = self._at(gw_lo, rows)
        self.gw_len[rows] = self._at(gw_len, rows)
        src = client_src[rows]
        self.cl_hi[rows] = np.where(src, c["v6s_hi"][rows], c["v6d_hi"][rows])
        self.cl_lo[rows] = np.where(src, c["v6s_lo"][rows], c["v6d_lo"][rows])
        self.remote[rows] = self._at(remote, rows)
        self.ev[rows] |= self._at(bits, rows)

    def assign_sides(self, rows, mech, client_src, remote, bits):
        """As ``assign``, the gateway being the other side's address."""
        if not len(rows):
            return
        c = self.c
        src = client_src[rows]
        gh = np.where(src, c["v6d_hi"][rows], c["v6s_hi"][rows])
        gl = np.where(src, c["v6d_lo"][rows], c["v6s_lo"][rows])
        self.assign(rows, mech, client_src, 0, 0, 128, remote, bits)
        self.gw_hi[rows], self.gw_lo[rows] = gh, gl
