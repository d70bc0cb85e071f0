"""The columnar fast path: whole batches of frames classified with numpy.

Strategy. Every row (frame) of a batch carries a small state: the token of
the header it is at (Ethernet, IPv4, IPv6, UDP, GRE), its offset, the end of
the enclosing packet, and the figures found so far. Each round takes all rows
at one token and advances them one header with array operations, exactly as
the reference engine advances one frame (``ipv6flow.decode``), until every
row is DONE or FALLBACK. The extension-header chain is a loop over depth.

The kernel only decides what it is sure of. Anything odd -- a header cut by
the snap length, a malformed field, a rare link layer or tunnel option, a
chain deeper than ``MAX_DEPTH`` -- turns the row into FALLBACK, and the
caller decodes those rows with the reference decoder. So every frame gets
the reference decoder's answer by construction; the differential tests
check it frame for frame.

Kernels here assume checked inputs (STYLE habit 7): offsets and lengths
come from the capture reader. Gathers use ``np.take(..., mode='clip')`` so
that no index can fault, and every value read is used only where a length
check says it lies inside the frame.

Every protocol number, port and header offset comes from
``decode/registry.py``; the lookup tables below (``ET_TOKEN``,
``GRE_TOKEN``, ``GENEVE_TOKEN``, ``PPP_TOKEN``, ``VERSION_TOKEN``,
``AYIYA_TOKEN``, ``IS_MPLS``, ``UDP_TUNNEL_KIND``,
``PROTO_TOKEN``/``PROTO_KIND``, ``IS_TUNNEL_PORT``,
``EXT_BIT``, ``UL_MIN``, ``TRANSPORT_CODE``, ``LINKTYPE_START``) are built
from its tables at import, and a registry entry marked ``KERNEL`` without
a step here fails at import.
"""

import numpy as np

from ..decode import registry as reg
from ..decode.addresses import ADDRESS_CLASSES, _CLASS_PREFIXES, parse_prefix, words_in_prefix
from ..decode.registry import (ANOMALIES, AYIYA, ERSPAN, ETH, ETHERTYPE_ERSPAN2,
                               ETHERTYPE_ERSPAN3, ETHERTYPE_PPP, EXT, EXT_NAMES, FAM_IPV4, FAM_IPV6,
                               FAM_NON_IP, FAMILY_NAMES, GENEVE, GRE, GTPU, IPPROTO_AH,
                               IPPROTO_DSTOPTS, IPPROTO_ESP, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS,
                               IPPROTO_NONE, IPPROTO_ROUTING, IPV4, IPV6, KERNEL, L2TP, LLC_SNAP,
                               MPLS, SLL, SLL2, VLAN, PPP_ADDRESS, PPP_COMPRESSED, PPP_CONTROL,
                               PPP_PROTOCOLS, PPPOE, TEREDO, TRANSPORT, TRANSPORT_KEYS,
                               TUNNEL_CODE, TUNNEL_KINDS, UDP, UDP_PORT_TEREDO, VXLAN,
                               ETHERTYPE_MAX_LENGTH, ETHERTYPE_PPPOE_SESS, is_6to4, is_isatap_iid,
                               is_teredo)
from ..decode.frame import FrameKey

# Row tokens.
T_DONE, T_FALLBACK, T_ETH, T_IPV4, T_IPV6, T_UDP, T_GRE = range(7)
T_LLC = 7                                   # 802.3 length field: LLC follows (step_eth only)
# The reference decoder's parser tokens this kernel has a step for.
TOKENS = {"eth": T_ETH, "ipv4": T_IPV4, "ipv6": T_IPV6, "udp": T_UDP, "gre": T_GRE}

K_NONE, K_6IN4, K_6TO4, K_ISATAP, K_6RD, K_TEREDO = (TUNNEL_CODE[k] for k in (
    "none", "6in4", "6to4", "isatap", "6rd", "teredo"))
K_GRE, K_GTPU, K_VXLAN, K_4IN6, K_6IN6, K_IPIP = (TUNNEL_CODE[k] for k in (
    "gre", "gtpu", "vxlan", "4in6", "6in6", "ipip"))
K_GENEVE, K_L2TP, K_AYIYA = (TUNNEL_CODE[k] for k in ("geneve", "l2tp", "ayiya"))

# Extension headers: one bit per by_type name (253 and 254 share one).
EXT_TYPE_NAMES = tuple(sorted(set(EXT_NAMES.values())))   # sorted, as frame_key sorts
EXT_BIT = np.zeros(256, dtype=np.int64)
for _nh, _name in EXT_NAMES.items():
    EXT_BIT[_nh] = 1 << EXT_TYPE_NAMES.index(_name)
IS_EXT = EXT_BIT != 0
# Repeats are judged per next-header value, as the reference does (253 and
# 254 share a by_type name but are different headers): one bit per value.
SEEN_BIT = np.zeros(256, dtype=np.int64)
for _i, _nh in enumerate(sorted(EXT_NAMES)):
    SEEN_BIT[_nh] = 1 << _i
ANOMALY_NAMES = tuple(sorted(ANOMALIES))
A_BIT = {name: 1 << i for i, name in enumerate(ANOMALY_NAMES)}
UNKNOWN_NH = np.array([not reg.is_known_protocol(nh) for nh in range(256)])
UL_MIN = np.ones(256, dtype=np.int64)          # RFC 7112 check, as registry.UPPER_LAYER_MIN
for _nh, _min in reg.UPPER_LAYER_MIN.items():
    UL_MIN[_nh] = _min

# Transport code by family * 256 + protocol: 1 + index into
# TRANSPORT_KEYS[family], 0 for non-IP.
TRANSPORT_CODE = np.zeros(len(FAMILY_NAMES) * 256, dtype=np.int64)
for _fam, _names in TRANSPORT.items():
    _code, _keys = reg.FAMILY_CODE[_fam], TRANSPORT_KEYS[_fam]
    TRANSPORT_CODE[_code * 256:(_code + 1) * 256] = _keys.index("other") + 1
    for _proto, _name in _names.items():
        TRANSPORT_CODE[_code * 256 + _proto] = _keys.index(_name) + 1

CLASS_NAMES = ADDRESS_CLASSES
_CLASS_MASKS = []
for _name, _prefix in _CLASS_PREFIXES:
    _p = parse_prefix(_prefix)
    _value, _mask = _p.value, _p.mask()
    _CLASS_MASKS.append((ADDRESS_CLASSES.index(_name),
                         np.uint64(_value >> 64), np.uint64(_mask >> 64),
                         np.uint64(_value & (2**64 - 1)), np.uint64(_mask & (2**64 - 1))))
CLASS_OTHER = ADDRESS_CLASSES.index("other")


def _class_luts():
    """Class of each /16 (``CLASS16``), -1 for the few /16s that a longer
    prefix of the table splits (::, 64:ff9b::, 2001::, 3fff::). For those,
    ``SPLIT32`` lists the prefixes of /17 to /32 (value and mask over the
    first 32 bits, with the class), tried after the /16's own class
    (``BASE16``), and ``FULL32`` the first 32 bits of the prefixes longer
    than /32, which take the full comparison."""
    base = np.full(65536, CLASS_OTHER, dtype=np.int64)
    # Paint in reverse table order so that the first match wins.
    for name, prefix in reversed(_CLASS_PREFIXES):
        value, length = parse_prefix(prefix)
        if length <= 16:
            first = value >> 112
            base[first:first + (1 << (16 - length))] = ADDRESS_CLASSES.index(name)
    lut = base.copy()
    split, full = [], set()
    for name, prefix in _CLASS_PREFIXES:
        value, length = parse_prefix(prefix)
        if length > 16:
            lut[value >> 112] = -1
            if length <= 32:
                mask32 = ((1 << length) - 1) << (32 - length)
                split.append((value >> 96, mask32, ADDRESS_CLASSES.index(name)))
            else:
                full.add(value >> 96)
    return lut, base, split, np.array(sorted(full), dtype=np.int64)


CLASS16, BASE16, SPLIT32, FULL32 = _class_luts()

MAX_DEPTH = 8          # extension headers walked vectorially; deeper chains fall back
# Most reference parser steps one encapsulation level can take on the
# kernel's path: Ethernet, three VLAN tags, PPPoE, IP, UDP (then VXLAN).
MAX_LAYERS_PER_TUNNEL = 7
MAX_ROUNDS = 24        # token rounds per batch; rows still going fall back
MAX_VLAN_TAGS = 3      # tags read in step_eth; a fourth goes to the reference
MAX_MPLS_LABELS = 8    # label stack entries read; a deeper stack goes to the reference


def _kernel_token(entry):
    """The kernel's token for a dispatch entry of the registry: its step
    when the entry is the kernel's, else T_FALLBACK (the reference decodes
    the row). An entry the registry gives the kernel must have a step."""
    if entry.kernel != KERNEL:
        return T_FALLBACK
    if entry.token not in TOKENS:
        raise AssertionError(f"registry entry {entry} is the kernel's, which has no step for "
                             f"{entry.token!r}")
    return TOKENS[entry.token]


# Lookup tables replace np.isin on the hot path (one gather instead of a
# sort); all built from the registry.
# Ethertype -> token: other ethertypes are not IP; VLAN tags are read in
# step_eth (so a tag left after MAX_VLAN_TAGS falls back), PPPoE and MPLS
# in by_ethertype (T_FALLBACK here: the step reads them).
IS_VLAN = np.zeros(65536, dtype=bool)
IS_VLAN[list(reg.VLAN_ETHERTYPES)] = True
IS_MPLS = np.zeros(65536, dtype=bool)
IS_MPLS[[et for et, e in reg.ETHERTYPES.items() if e.token == "mpls"]] = True
ET_TOKEN = np.full(65536, T_DONE, dtype=np.int8)
ET_TOKEN[:ETHERTYPE_MAX_LENGTH + 1] = T_LLC
_IN_STEP = {"vlan": "step_eth", "pppoe": "by_ethertype", "mpls": "by_ethertype"}
for _et, _e in reg.ETHERTYPES.items():
    if _e.token in _IN_STEP and _e.kernel != KERNEL:
        raise AssertionError(f"{_e}: {_IN_STEP[_e.token]} reads it; the registry says reference")
    ET_TOKEN[_et] = T_FALLBACK if _e.token in _IN_STEP else _kernel_token(_e)
# Inside GRE: a step; T_DONE: not followed at all (encap.gre returns None);
# T_PPP: read in step_gre (PPP, ERSPAN).
T_PPP = T_LLC          # (a marker in GRE_TOKEN only, never a row's token)
GRE_TOKEN = np.full(65536, T_DONE, dtype=np.int8)
_GRE_IN_STEP = ("ppp", "erspan2", "erspan3")
for _et, _e in reg.GRE_PROTOCOLS.items():
    if _e.token in _GRE_IN_STEP and _e.kernel != KERNEL:
        raise AssertionError(f"{_e}: step_gre reads it; the registry says reference")
    GRE_TOKEN[_et] = T_PPP if _e.token in _GRE_IN_STEP else _kernel_token(_e)
# Inside Geneve: a step, else nothing the reference follows (the datagram
# is then tried as Teredo, as any UDP whose tunnel header declines).
GENEVE_TOKEN = np.full(65536, T_DONE, dtype=np.int8)
for _et, _e in reg.GENEVE_PROTOCOLS.items():
    GENEVE_TOKEN[_et] = _kernel_token(_e)
# An IP version nibble -> its step (link.by_version); others: not IP.
VERSION_TOKEN = np.full(16, T_DONE, dtype=np.int8)
for _v, _token in reg.IP_VERSIONS.items():
    VERSION_TOKEN[_v] = TOKENS[_token]
# A PPP protocol (2 bytes, or 1 compressed) -> its step; others: not IP.
PPP_TOKEN = np.full(65536, T_DONE, dtype=np.int8)
for _proto, _token in PPP_PROTOCOLS.items():
    PPP_TOKEN[_proto] = TOKENS[_token]
# AYIYA's next header -> its step; others: declined.
AYIYA_TOKEN = np.full(256, T_DONE, dtype=np.int8)
for _nh, _token in reg.AYIYA_NEXT.items():
    AYIYA_TOKEN[_nh] = TOKENS[_token]
# UDP tunnel ports; the kernel's own tunnels are dispatched in step_udp.
IS_TUNNEL_PORT = np.zeros(65536, dtype=bool)
IS_TUNNEL_PORT[list(reg.UDP_TUNNELS)] = True
UDP_KERNEL_TUNNELS = {p: t.kind for p, t in reg.UDP_TUNNELS.items() if t.kernel == KERNEL}
# the UDP tunnel kinds with a step here (UDP_STEPS)
UDP_TUNNEL_STEPS = ("gtpu", "vxlan", "geneve", "l2tp", "ayiya")
assert set(UDP_KERNEL_TUNNELS.values()) <= set(UDP_TUNNEL_STEPS), "a UDP tunnel without a step"
# the kind of tunnel each port leads to (0: not a tunnel port, or the reference's)
UDP_TUNNEL_KIND = np.zeros(65536, dtype=np.int8)
for _port, _kind in UDP_KERNEL_TUNNELS.items():
    UDP_TUNNEL_KIND[_port] = TUNNEL_CODE[_kind]

# Bit layout of a row's int64 key (see ``pack`` / ``unpack``).
_FIELDS = (("carrier", 2), ("payload", 2), ("tunnel", 4), ("transport", 3),
           ("ext", len(EXT_TYPE_NAMES)), ("rtype", 9), ("chain", 7),
           ("anom", len(ANOMALY_NAMES)), ("src", 4), ("dst", 4))
_SHIFT = {}
_s = 0
for _f, _bits in _FIELDS:
    _SHIFT[_f] = (_s, (1 << _bits) - 1)
    _s += _bits
assert _s <= 63


class Rows:
    """The per-row state of one batch (all arrays of length n)."""

    def __init__(self, buf, offsets, caplens):
        n = len(offsets)
        self.buf = buf
        self.n = n
        self.tok = np.full(n, T_FALLBACK, dtype=np.int8)
        self.pos = offsets.astype(np.int64, copy=True)
        self.end = self.pos + caplens
        self.carrier = np.zeros(n, dtype=np.int64)
        self.payload = np.zeros(n, dtype=np.int64)
        self.tunnel = np.zeros(n, dtype=np.int64)       # outermost kind
        self.ntun = np.zeros(n, dtype=np.int64)
        self.pending = np.zeros(n, dtype=np.int64)      # kind being entered
        self.proto = np.zeros(n, dtype=np.int64)
        self.ext = np.zeros(n, dtype=np.int64)
        self.rtype = np.full(n, -1, dtype=np.int64)
        self.chain = np.full(n, -1, dtype=np.int64)
        self.anom = np.zeros(n, dtype=np.int64)
        self.v6 = np.full(n, -1, dtype=np.int64)        # innermost IPv6 header offset
        self.ip = np.full(n, -1, dtype=np.int64)        # innermost IP header offset
        self.v4 = np.full(n, -1, dtype=np.int64)        # innermost IPv4 header offset
        self.l4 = np.full(n, -1, dtype=np.int64)        # its upper-layer header
        self.l4end = np.zeros(n, dtype=np.int64)
        self._addr = {}                                 # see addr()
        self._h6 = None
        self._windows = {}

    # -- gathers ------------------------------------------------------------
    def u8(self, at):
        return np.take(self.buf, at, mode="clip").astype(np.int64)

    def u16(self, at):
        b = self.buf
        return (np.take(b, at, mode="clip").astype(np.int64) << 8) | np.take(b, at + 1, mode="clip")

    def u32(self, at):
        return self.word(at, 4).astype(np.int64)

    def u64(self, at):
        return self.word(at, 8).astype(np.uint64)

    def word(self, at, width):
        """The big-endian ``width``-byte word (4 or 8) at ``at[i]`` of each
        row: one gather from an unaligned view of the buffer whose item i
        is bytes i .. i + width (a 1-d gather of 4 or 8 bytes per row costs
        what a 1-byte ``np.take`` does, several times less than a 2-d one)."""
        return self._gather(("word", width), at, width, lambda buf: np.ndarray(
            shape=(len(buf) - width + 1,), dtype=f">u{width}", buffer=buf, strides=(1,)))

    def block(self, at, width):
        """Bytes ``at[i] .. at[i] + width`` of each row, as an (n, width)
        array: rows of a sliding-window view of the buffer, picked by one
        1-d index (several times faster than a 2-d ``np.take``)."""
        return self._gather(("block", width), at, width,
                            lambda buf: np.lib.stride_tricks.sliding_window_view(buf, width))

    def _gather(self, key, at, width, make):
        """Items ``at`` of a view of the buffer (made once per batch by
        ``make`` over a buffer of at least ``width`` bytes), the start
        clipped into the buffer as ``np.take(mode='clip')`` clips."""
        view = self._windows.get(key)
        if view is None:
            buf = self.buf
            if len(buf) < width:
                buf = np.concatenate((buf, np.zeros(width - len(buf), dtype=np.uint8)))
            view = self._windows[key] = make(buf)
        return view[np.clip(at, 0, len(view) - 1)]

    def addr(self, k):
        """Word ``k`` (0 source high, 1 source low, 2 destination high, 3
        destination low) of each row's innermost IPv6 addresses, 0 where
        there is none: gathered once per batch, when first asked (after the
        walk), for the address classes, clients, flows and NAT64 traffic."""
        w = self._addr.get(k)
        if w is None:
            if self._h6 is None:
                self._h6 = np.flatnonzero(self.v6 >= 0)
            w = self._addr[k] = np.zeros(self.n, dtype=np.uint64)
            w[self._h6] = self.u64(self.v6[self._h6] + IPV6.SRC + IPV6.LOW * k)
        return w

    def fall(self, idx):
        self.tok[idx] = T_FALLBACK


def _enter(rows, idx):
    """Rows in ``idx`` have validated the header they were entering: count
    the pending tunnel (first one is the frame's tunnel)."""
    k = rows.pending[idx]
    t = idx[k != 0]
    if len(t):
        first = rows.ntun[t] == 0
        rows.tunnel[t[first]] = rows.pending[t[first]]
        rows.ntun[t] += 1
        rows.pending[t] = 0


def step_eth(rows, idx, opts):
    idx = _depth_ok(rows, idx, opts)
    pos, end = rows.pos[idx], rows.end[idx]
    ok = pos + ETH.LEN <= end
    rows.fall(idx[~ok])
    idx, pos, end = idx[ok], pos[ok], end[ok]
    _enter(rows, idx)
    et = rows.u16(pos + ETH.TYPE)
    pos = pos + ETH.LEN
    for _ in range(MAX_VLAN_TAGS):
        tagged = IS_VLAN[et]
        if not tagged.any():
            break
        ok = ~tagged | (pos + VLAN.LEN <= end)
        rows.fall(idx[~ok])
        if not ok.all():
            idx, pos, end, et, tagged = idx[ok], pos[ok], end[ok], et[ok], tagged[ok]
        t = np.flatnonzero(tagged)
        et[t] = rows.u16(pos[t] + VLAN.TYPE)
        pos[t] += VLAN.LEN
    # 802.3 length field: LLC. SNAP carries an ethertype (any OUI, as the
    # reference's llc reads it); other LLC (STP) holds no IP.
    llc = et <= ETHERTYPE_MAX_LENGTH
    if llc.any():
        lp, le = pos[llc], end[llc]
        snap = (le - lp >= LLC_SNAP.LEN) & (rows.u8(lp) == LLC_SNAP.DSAP) \
            & (rows.u8(lp + 1) == LLC_SNAP.SSAP) & (rows.u8(lp + 2) == LLC_SNAP.CONTROL)
        # no SNAP: an 802.3 length (0), which by_ethertype reads as "not IP"
        et[llc] = np.where(snap, rows.u16(lp + LLC_SNAP.TYPE), 0)
        pos[llc] = np.where(snap, lp + LLC_SNAP.LEN, lp)
    by_ethertype(rows, idx, et, pos, end)


def by_ethertype(rows, idx, et, pos, end):
    """Rows ``idx`` at ``pos`` after ethertype ``et`` (link.by_ethertype):
    an 802.3 length is not IP, a VLAN tag left over goes to the reference,
    PPPoE sessions and MPLS label stacks are read here."""
    rows.tok[idx] = np.where(et <= ETHERTYPE_MAX_LENGTH, T_DONE, ET_TOKEN[et]).astype(np.int8)
    rows.pos[idx] = pos
    pp = np.flatnonzero(et == ETHERTYPE_PPPOE_SESS)
    if len(pp):
        _pppoe(rows, idx[pp], pos[pp], end[pp])
    mp = np.flatnonzero(IS_MPLS[et])
    if len(mp):
        _mpls(rows, idx[mp], pos[mp], end[mp])


def ppp_protocol(rows, at, end):
    """The PPP protocol field at ``at`` (link.ppp_protocol): (token, offset
    after it). The token is T_FALLBACK where the field is cut (the
    reference's "truncated"), T_DONE for a protocol that is not IP."""
    b = rows.u8(at)
    compressed = (b & PPP_COMPRESSED) != 0
    proto = np.where(compressed, b, rows.u16(at))
    after = at + np.where(compressed, 1, 2)
    return np.where(after > end, T_FALLBACK, PPP_TOKEN[proto]).astype(np.int8), after


def _pppoe(rows, idx, pos, end):
    """PPPoE session stage (link.pppoe): a header cut before the PPP
    protocol's two bytes is the reference's; another version, type or
    code holds no IP."""
    whole = pos + PPPOE.LEN + 2 <= end
    session = whole & (rows.u8(pos + PPPOE.VER_TYPE) == PPPOE.VERSION_TYPE) \
        & (rows.u8(pos + PPPOE.CODE) == PPPOE.SESSION_DATA)
    tok, after = ppp_protocol(rows, pos + PPPOE.LEN, end)
    rows.tok[idx] = np.where(session, tok, np.where(whole, T_DONE, T_FALLBACK))
    rows.pos[idx] = np.where(session, after, pos)


def _mpls(rows, idx, pos, end):
    """An MPLS label stack (link.mpls) to its bottom entry, then the IP
    version nibble; a stack cut short (the reference's "truncated") or
    deeper than MAX_MPLS_LABELS goes to the reference."""
    at = pos.copy()
    going = np.ones(len(idx), dtype=bool)
    cut = np.zeros(len(idx), dtype=bool)
    for _ in range(MAX_MPLS_LABELS):
        g = np.flatnonzero(going)
        if not len(g):
            break
        short = at[g] + MPLS.LEN > end[g]
        cut[g[short]] = True
        going[g[short]] = False
        g = g[~short]
        bottom = (rows.u8(at[g] + MPLS.BOS) & MPLS.BOS_BIT) != 0
        at[g] += MPLS.LEN
        going[g[bottom]] = False
    tok = VERSION_TOKEN[rows.u8(at) >> 4]
    rows.tok[idx] = np.where(cut | going | (at + 1 > end), T_FALLBACK, tok).astype(np.int8)
    rows.pos[idx] = at


# IP protocol -> next token and pending tunnel kind (ip.IP_PROTOCOLS);
# index 256 stands for "stop here" (non-first fragment, ESP).
PROTO_TOKEN = np.full(257, T_DONE, dtype=np.int8)
PROTO_KIND = {False: np.zeros(257, dtype=np.int64), True: np.zeros(257, dtype=np.int64)}
for _proto, _e in reg.IP_PROTOCOLS.items():
    PROTO_TOKEN[_proto] = _kernel_token(_e)
    PROTO_KIND[False][_proto] = TUNNEL_CODE[_e.kind4 or "none"]
    PROTO_KIND[True][_proto] = TUNNEL_CODE[_e.kind6 or "none"]


def _next_by_proto(rows, idx, proto, pos, pend, v6):
    """Dispatch on an IP protocol number (256: stop), as ip.IP_PROTOCOLS."""
    rows.tok[idx] = PROTO_TOKEN[proto]
    rows.pending[idx] = PROTO_KIND[v6][proto]
    rows.pos[idx] = pos
    rows.end[idx] = pend
    rows.l4[idx] = np.where(proto == 256, -1, pos)   # as Frame.l4_off / l4_end
    rows.l4end[idx] = pend


def _enter_ip(rows, idx, pos, fam):
    """Rows ``idx`` enter a validated IP header of family ``fam`` at ``pos``:
    the first IP header is the carrier, the latest the payload."""
    _enter(rows, idx)
    rows.carrier[idx] = np.where(rows.carrier[idx] == FAM_NON_IP, fam, rows.carrier[idx])
    rows.payload[idx] = fam
    rows.ip[idx] = pos


def _depth_ok(rows, idx, opts):
    """Rows about to count one more tunnel than the cap allows fall back."""
    over = (rows.pending[idx] != 0) & (rows.ntun[idx] >= opts.max_tunnel_depth)
    rows.fall(idx[over])
    return idx[~over]


def step_ipv4(rows, idx, opts):
    idx = _depth_ok(rows, idx, opts)
    pos, end = rows.pos[idx], rows.end[idx]
    v = rows.u8(pos + IPV4.VER_IHL)
    ihl = (v & 0x0F) * 4
    tot = rows.u16(pos + IPV4.TOTAL_LEN)
    pend = np.where(tot == 0, end, np.minimum(end, pos + tot))
    ok = (pos + IPV4.LEN <= end) & (v >> 4 == 4) & (ihl >= IPV4.LEN) & ((tot == 0) | (tot >= ihl)) \
        & (pos + ihl <= pend)
    rows.fall(idx[~ok])
    idx, pos, ihl, pend = idx[ok], pos[ok], ihl[ok], pend[ok]
    _enter_ip(rows, idx, pos, FAM_IPV4)
    rows.v4[idx] = pos
    proto = rows.u8(pos + IPV4.PROTO)
    rows.proto[idx] = proto
    frag = rows.u16(pos + IPV4.FRAG) & IPV4.FRAG_OFFSET_MASK
    proto = np.where(frag != 0, 256, proto)             # non-first fragment: done
    _next_by_proto(rows, idx, proto, pos + ihl, pend, False)


def _sixin4_kind(rows, idx, pos, opts):
    """Refine pending 6in4 by the inner IPv6 addresses (decode.sixin4_kind)."""
    p = rows.pending[idx] == K_6IN4
    if not p.any():
        return
    i, at = idx[p], pos[p]
    src_hi, dst_hi = rows.u64(at + IPV6.SRC), rows.u64(at + IPV6.DST)
    kind = np.full(len(i), K_6IN4, dtype=np.int64)
    six = is_6to4(src_hi >> np.uint64(48)) | is_6to4(dst_hi >> np.uint64(48))
    iid_s, iid_d = rows.u32(at + IPV6.SRC + IPV6.LOW), rows.u32(at + IPV6.DST + IPV6.LOW)
    isatap = is_isatap_iid(iid_s) | is_isatap_iid(iid_d)
    sixrd = np.zeros(len(i), dtype=bool)
    long_prefix = False
    for value, length in opts.sixrd_prefixes:
        if length > 64:             # needs the low word too: leave to the reference
            long_prefix = True
            continue
        sixrd |= words_in_prefix(src_hi, None, value, length) \
            | words_in_prefix(dst_hi, None, value, length)
    kind[sixrd] = K_6RD
    kind[isatap] = K_ISATAP
    kind[six] = K_6TO4
    rows.pending[i] = kind
    if long_prefix:
        rows.fall(i[~isatap & ~six])


def step_ipv6(rows, idx, opts):
    idx = _depth_ok(rows, idx, opts)
    pos, end = rows.pos[idx], rows.end[idx]
    ok = (pos + IPV6.LEN <= end) & (rows.u8(pos) >> 4 == 6)
    rows.fall(idx[~ok])
    idx, pos, end = idx[ok], pos[ok], end[ok]
    _sixin4_kind(rows, idx, pos, opts)
    keep = rows.tok[idx] != T_FALLBACK
    idx, pos, end = idx[keep], pos[keep], end[keep]
    _enter_ip(rows, idx, pos, FAM_IPV6)
    rows.v6[idx] = pos
    plen = rows.u16(pos + IPV6.PLEN)
    nh = rows.u8(pos + IPV6.NH)
    decl = np.where((plen == 0) & (nh != IPPROTO_NONE), end, pos + IPV6.LEN + plen)
    limit = np.minimum(end, decl)
    outermost = rows.chain[idx] < 0

    # -- the extension-header walk, one header per round, all rows at once --
    cur = pos + IPV6.LEN
    n = np.zeros(len(idx), dtype=np.int64)
    seen = np.zeros(len(idx), dtype=np.int64)          # ext bits seen in this chain
    dst_count = np.zeros(len(idx), dtype=np.int64)
    first_frag = np.zeros(len(idx), dtype=bool)
    going = np.ones(len(idx), dtype=bool)               # still walking
    follow = np.ones(len(idx), dtype=bool)              # decode what comes next
    fallback = np.zeros(len(idx), dtype=bool)
    ext, anom, rtype = rows.ext[idx], rows.anom[idx], rows.rtype[idx]
    # Past max_chain headers the reference stops with chain_too_long: leave
    # such chains (and any deeper than MAX_DEPTH) to it.
    depth_cap = max(0, min(MAX_DEPTH, opts.max_chain))
    for depth in range(depth_cap + 1):
        act = going & IS_EXT[nh]
        if not act.any():
            break
        a = np.flatnonzero(act)
        if depth == depth_cap:
            fallback[a] = True
            going[a] = False
            break
        h, c = nh[a], cur[a]
        bit, sbit = EXT_BIT[h], SEEN_BIT[h]
        n[a] += 1
        is_dst = h == IPPROTO_DSTOPTS
        dst_count[a] += is_dst
        rep = np.where(is_dst, dst_count[a] > 2, (seen[a] & sbit) != 0)
        seen[a] |= sbit
        ext[a] |= bit
        anom[a] |= np.where(rep, A_BIT["repeated_header"], 0)
        anom[a] |= np.where((h == IPPROTO_HOPOPTS) & (n[a] != 1), A_BIT["hbh_not_first"], 0)
        esp = h == IPPROTO_ESP
        going[a[esp]] = False
        follow[a[esp]] = False
        rest = ~esp
        a, h, c = a[rest], h[rest], c[rest]
        lim = limit[a]
        b1 = rows.u8(c + EXT.HLEN)
        hlen = np.where(h == IPPROTO_FRAGMENT, EXT.LEN,
                        np.where(h == IPPROTO_AH, (b1 + 2) * 4, (b1 + 1) * 8))
        cut = c + hlen > lim                             # runs past bytes or length: reference
        fallback[a[cut]] = True
        going[a[cut]] = False
        a, h, c, hlen = a[~cut], h[~cut], c[~cut], hlen[~cut]
        # Routing type: one per frame here; a second routing header (rare,
        # and already a repeat) goes to the reference decoder.
        r = h == IPPROTO_ROUTING
        if r.any():
            ar = a[r]
            rt = rows.u8(c[r] + EXT.ROUTING_TYPE)
            again = rtype[ar] >= 0
            fallback[ar[again]] = True
            going[ar[again]] = False
            rtype[ar] = rt
            anom[ar] |= np.where(rt == 0, A_BIT["rh0"], 0)
        nxt = rows.u8(c + EXT.NH)
        f = h == IPPROTO_FRAGMENT
        if f.any():
            af, cf = a[f], c[f]
            w = rows.u16(cf + EXT.FRAG_OFFSET)
            fo, more = w >> 3, w & 1
            nonfirst = fo != 0
            going[af[nonfirst]] = False
            follow[af[nonfirst]] = False
            anom[af] |= np.where((fo == 0) & (more == 0), A_BIT["atomic_fragment"], 0)
            first_frag[af[(fo == 0) & (more == 1)]] = True
        nh[a] = nxt                  # a non-first fragment keeps it as its protocol
        cur[a] = c + hlen

    # fragments' and ESP's protocol: nh as it stands (ESP: 50; non-first: nxt)
    done_walk = follow & ~fallback
    anom = anom | np.where(done_walk & UNKNOWN_NH[nh], A_BIT["unknown_next_header"], 0)
    nfit = done_walk & first_frag & (nh != IPPROTO_NONE) & (cur + UL_MIN[nh] > decl)
    anom = anom | np.where(nfit, A_BIT["chain_not_in_first_fragment"], 0)
    rows.ext[idx], rows.anom[idx], rows.rtype[idx] = ext, anom, rtype
    rows.chain[idx] = np.where(outermost, n, rows.chain[idx])
    rows.proto[idx] = nh
    rows.fall(idx[fallback])
    keep = ~fallback
    idx, nh, cur, limit, follow = idx[keep], nh[keep], cur[keep], limit[keep], follow[keep]
    _next_by_proto(rows, idx, np.where(follow, nh, 256), cur, limit, True)


def step_udp(rows, idx, opts):
    pos, end = rows.pos[idx], rows.end[idx]
    ok = pos + UDP.LEN <= end
    rows.fall(idx[~ok])
    idx, pos, end = idx[ok], pos[ok], end[ok]
    sport, dport = rows.u16(pos + UDP.SPORT), rows.u16(pos + UDP.DPORT)
    ulen = rows.u16(pos + UDP.ULEN)
    uend = np.where((ulen >= UDP.LEN) & (pos + ulen <= end), pos + ulen, end)
    pay = pos + UDP.LEN
    rows.tok[idx] = T_DONE
    on_s, on_d = IS_TUNNEL_PORT[sport], IS_TUNNEL_PORT[dport]
    tun = on_s | on_d
    # between two tunnel ports the reference tries both: its decision
    both = on_s & on_d & (sport != dport)
    kind = np.where(on_d, UDP_TUNNEL_KIND[dport], UDP_TUNNEL_KIND[sport])
    rows.fall(idx[both | (tun & (kind == 0))])      # (0: a port the kernel has no step for)
    # Each tunnel's step takes the rows whose header it accepts, sends the
    # unsure ones to the reference, and declines the others, which the
    # reference then tries as Teredo like any other datagram.
    declined = np.zeros(len(idx), dtype=bool)
    for code, step in UDP_STEPS.items():
        m = np.flatnonzero(tun & ~both & (kind == code))
        if len(m):
            declined[m] = step(rows, idx[m], pay[m], uend[m])
    # Teredo: over IPv4, UDP length valid (decode.encap.teredo)
    t = (~tun | declined) & (rows.payload[idx] == FAM_IPV4) & (ulen >= UDP.LEN)
    if t.any():
        ti, tp, te = idx[t], pay[t], uend[t]
        decl_end = pos[t] + ulen[t]
        on_port = (sport[t] == UDP_PORT_TEREDO) | (dport[t] == UDP_PORT_TEREDO)
        auth = (tp + TEREDO.AUTH_LEN <= te) & (rows.u8(tp) == TEREDO.INDICATION) \
            & (rows.u8(tp + 1) == TEREDO.AUTH)
        tp = np.where(auth, tp + TEREDO.AUTH_LEN + rows.u8(tp + TEREDO.ID_LEN)
                      + rows.u8(tp + TEREDO.AUTH_DATA_LEN) + TEREDO.NONCE_CONFIRMATION, tp)
        origin = (tp + TEREDO.ORIGIN_LEN <= te) & (rows.u8(tp) == TEREDO.INDICATION) \
            & (rows.u8(tp + 1) == TEREDO.ORIGIN)
        tp = np.where(origin, tp + TEREDO.ORIGIN_LEN, tp)
        plen = rows.u16(tp + IPV6.PLEN)
        s_pfx, d_pfx = rows.u32(tp + IPV6.SRC), rows.u32(tp + IPV6.DST)
        good = (tp + IPV6.LEN <= te) & ((rows.u8(tp) >> 4) == 6) \
            & (tp + IPV6.LEN + plen <= decl_end) & (on_port | is_teredo(s_pfx) | is_teredo(d_pfx))
        gi = ti[good]
        rows.tok[gi] = T_IPV6
        rows.pending[gi] = K_TEREDO
        rows.pos[gi] = tp[good]
        rows.end[gi] = te[good]


def _tunnel(rows, idx, accept, unsure, tok, kind, at, end):
    """Rows ``idx`` of one UDP tunnel step: the accepted enter ``kind`` at
    ``at`` with step ``tok``, the unsure go to the reference; returns the
    declined (left T_DONE, for the Teredo test)."""
    a = np.flatnonzero(accept)
    ai = idx[a]
    rows.tok[ai] = tok[a]
    rows.pending[ai] = kind
    rows.pos[ai] = at[a]
    rows.end[ai] = end[a]
    rows.fall(idx[unsure])
    return ~accept & ~unsure


def _gtpu(rows, idx, pay, end):
    """GTPv1-U T-PDU (encap.gtpu), with its optional fields and extension
    headers."""
    fl = rows.u8(pay + GTPU.FLAGS)
    hdr = (pay + GTPU.LEN <= end) & ((fl >> GTPU.VERSION_SHIFT) == GTPU.VERSION) \
        & ((fl & GTPU.PT) != 0) & (rows.u8(pay + GTPU.TYPE) == GTPU.T_PDU)
    opt = (fl & GTPU.OPTIONAL) != 0
    hdr &= ~opt | (pay + GTPU.LEN + GTPU.OPT_LEN <= end)
    at = pay + GTPU.LEN + np.where(opt, GTPU.OPT_LEN, 0)
    # extension headers: a length byte (4-byte units, 0 refused), the next
    # type last; the reference reads at most MAX_EXTENSIONS and declines a
    # chain whose next type is not 0 after MAX_EXTENSIONS - 1 of them
    going = hdr & opt & ((fl & GTPU.E_FLAG) != 0) \
        & (rows.u8(pay + GTPU.LEN + GTPU.OPT_NEXT_EXT) != 0)
    for _ in range(GTPU.MAX_EXTENSIONS - 1):
        g = np.flatnonzero(going)
        if not len(g):
            break
        a, e = at[g], end[g]
        ln = rows.u8(a) * GTPU.EXT_UNIT
        bad = (a >= e) | (ln == 0) | (a + ln > e)
        hdr[g[bad]] = False
        going[g[bad]] = False
        g, a, ln = g[~bad], a[~bad], ln[~bad]
        at[g] = a + ln
        going[g[rows.u8(a + ln - 1) == 0]] = False
    hdr &= ~going
    tok = VERSION_TOKEN[rows.u8(at) >> 4]
    accept = hdr & (at < end) & (tok != T_DONE)
    return _tunnel(rows, idx, accept, np.zeros(len(idx), dtype=bool), tok, K_GTPU, at, end)


def _vxlan(rows, idx, pay, end):
    """VXLAN (encap.vxlan): the I flag, then Ethernet."""
    accept = (pay + VXLAN.LEN <= end) & ((rows.u8(pay + VXLAN.FLAGS) & VXLAN.I_FLAG) != 0)
    tok = np.full(len(idx), T_ETH, dtype=np.int8)
    return _tunnel(rows, idx, accept, np.zeros(len(idx), dtype=bool), tok, K_VXLAN,
                   pay + VXLAN.LEN, end)


def _geneve(rows, idx, pay, end):
    """Geneve (encap.geneve): version 0, options, a protocol type."""
    b0 = rows.u8(pay + GENEVE.VER_OPT)
    hdr = (pay + GENEVE.LEN <= end) & ((b0 >> GENEVE.VERSION_SHIFT) == 0)
    tok = GENEVE_TOKEN[rows.u16(pay + GENEVE.PROTO)]
    at = pay + GENEVE.LEN + (b0 & GENEVE.OPT_MASK) * GENEVE.OPT_UNIT
    return _tunnel(rows, idx, hdr & (tok != T_DONE) & (tok != T_FALLBACK),
                   hdr & (tok == T_FALLBACK), tok, K_GENEVE, at, end)


def _l2tp(rows, idx, pay, end):
    """L2TPv2 data message carrying PPP (encap.l2tp); a PPP protocol field
    cut short is the reference's ("truncated")."""
    fl = rows.u16(pay + L2TP.FLAGS)
    hdr = (pay + L2TP.LEN <= end) & ((fl & L2TP.VERSION_MASK) == L2TP.VERSION) \
        & ((fl & L2TP.T_BIT) == 0)
    at = pay + L2TP.FLAGS_LEN + np.where((fl & L2TP.L_BIT) != 0, L2TP.LENGTH, 0) \
        + L2TP.TUNNEL_SESSION + np.where((fl & L2TP.S_BIT) != 0, L2TP.NS_NR_LEN, 0)
    o = (fl & L2TP.O_BIT) != 0
    hdr &= ~o | (at + L2TP.OFFSET_SIZE <= end)
    at = np.where(o, at + L2TP.OFFSET_SIZE + rows.u16(at), at)
    ac = (end - at >= 2) & (rows.u8(at) == PPP_ADDRESS) & (rows.u8(at + 1) == PPP_CONTROL)
    at = np.where(ac, at + 2, at)
    tok, after = ppp_protocol(rows, at, end)
    return _tunnel(rows, idx, hdr & (tok != T_DONE) & (tok != T_FALLBACK),
                   hdr & (tok == T_FALLBACK), tok, K_L2TP, after, end)


def _ayiya(rows, idx, pay, end):
    """AYIYA (encap.ayiya): identity and signature, then IPv6 or IPv4."""
    tok = AYIYA_TOKEN[rows.u8(pay + AYIYA.NEXT)]
    at = pay + AYIYA.LEN + (1 << (rows.u8(pay + AYIYA.ID_LEN) >> 4)) \
        + AYIYA.SIG_UNIT * (rows.u8(pay + AYIYA.SIG_LEN) >> 4)
    accept = (pay + AYIYA.LEN <= end) & (tok != T_DONE)
    return _tunnel(rows, idx, accept, np.zeros(len(idx), dtype=bool), tok, K_AYIYA, at, end)


# UDP tunnel kind code -> its step (all of UDP_TUNNEL_STEPS)
UDP_STEPS = {TUNNEL_CODE[k]: f for k, f in (("gtpu", _gtpu), ("vxlan", _vxlan),
                                            ("geneve", _geneve), ("l2tp", _l2tp),
                                            ("ayiya", _ayiya))}
assert set(UDP_STEPS) == {TUNNEL_CODE[k] for k in UDP_TUNNEL_STEPS}


def step_gre(rows, idx, opts):
    """GRE versions 0 and 1 (encap.gre): IP, Ethernet, PPP (PPTP) and
    ERSPAN II/III inside; a header cut before its 4 bytes is the
    reference's ("truncated"); what the reference does not follow is done."""
    pos, end = rows.pos[idx], rows.end[idx]
    cut = pos + GRE.LEN > end
    rows.fall(idx[cut])
    idx, pos, end = idx[~cut], pos[~cut], end[~cut]
    fl, b1 = rows.u8(pos + GRE.FLAGS), rows.u8(pos + GRE.VER)
    ver = b1 & GRE.VERSION_MASK
    seq = (fl & GRE.SEQ) != 0
    v0 = (ver == 0) & ((fl & GRE.ROUTING) == 0)
    hlen0 = GRE.OPT_LEN * (((fl & GRE.CHECKSUM) != 0).astype(np.int64) + ((fl & GRE.KEY) != 0)
                           + seq)
    v1 = (ver == 1) & (pos + GRE.LEN + GRE.OPT_LEN <= end) & (rows.u16(pos + GRE.PAYLOAD_LEN) != 0)
    hlen1 = GRE.OPT_LEN * (1 + seq.astype(np.int64) + ((b1 & GRE.ACK) != 0))
    at = pos + GRE.LEN + np.where(v0, hlen0, hlen1)
    proto = rows.u16(pos + GRE.PROTO)
    tok = np.where(v0 | v1, GRE_TOKEN[proto], T_DONE).astype(np.int8)
    rows.tok[idx] = tok
    rows.pending[idx] = K_GRE
    rows.pos[idx] = at
    # PPP in enhanced GRE: optional address and control, then the protocol
    p = np.flatnonzero((tok == T_PPP) & (proto == ETHERTYPE_PPP))
    if len(p):
        a, e = at[p], end[p]
        ac = (e - a >= 2) & (rows.u8(a) == PPP_ADDRESS) & (rows.u8(a + 1) == PPP_CONTROL)
        rows.tok[idx[p]], rows.pos[idx[p]] = ppp_protocol(rows, np.where(ac, a + 2, a), e)
    # ERSPAN: type II's header where GRE has a sequence number (type I:
    # none), type III's 12 bytes and its optional subheader
    e2 = np.flatnonzero((tok == T_PPP) & (proto == ETHERTYPE_ERSPAN2))
    rows.tok[idx[e2]] = T_ETH
    rows.pos[idx[e2]] = at[e2] + np.where(seq[e2], ERSPAN.V2_LEN, 0)
    e3 = np.flatnonzero((tok == T_PPP) & (proto == ETHERTYPE_ERSPAN3))
    if len(e3):
        a = at[e3]
        sub = (rows.u8(a + ERSPAN.V3_O_BYTE) & ERSPAN.V3_O_BIT) != 0
        rows.tok[idx[e3]] = np.where(a + ERSPAN.V3_LEN <= end[e3], T_ETH, T_DONE)
        rows.pos[idx[e3]] = a + ERSPAN.V3_LEN + np.where(sub, ERSPAN.V3_SUBHEADER, 0)


STEPS = ((T_ETH, step_eth), (T_IPV4, step_ipv4), (T_IPV6, step_ipv6), (T_UDP, step_udp),
         (T_GRE, step_gre))

# Link type -> the kernel's first step (registry.LINKTYPES; others: reference).
LINKTYPE_START = {}
for _lt, _e in reg.LINKTYPES.items():
    if _e.kernel == KERNEL:
        LINKTYPE_START.setdefault(_e.token, []).append(_lt)
RAW_LINKTYPES = tuple(sorted(LINKTYPE_START.get("raw", ())))   # IP, family by version
COOKED = {"sll": SLL, "sll2": SLL2}           # Linux cooked captures: an ethertype
assert set(LINKTYPE_START) <= {"eth", "raw", "raw_ipv4", "raw_ipv6"} | set(COOKED), \
    "a link type without a step"


def start(rows, linktypes):
    """First token per row from its link type (others: reference)."""
    lt = linktypes
    for token, first in (("eth", T_ETH), ("raw_ipv4", T_IPV4), ("raw_ipv6", T_IPV6)):
        if token in LINKTYPE_START:
            rows.tok[np.isin(lt, LINKTYPE_START[token])] = first
    raw = np.isin(lt, RAW_LINKTYPES)
    if raw.any():
        ri = np.flatnonzero(raw)
        ok = rows.pos[ri] < rows.end[ri]
        v = rows.u8(rows.pos[ri]) >> 4
        rows.tok[ri[ok & (v == 4)]] = T_IPV4
        rows.tok[ri[ok & (v == 6)]] = T_IPV6
        rows.tok[ri[ok & (v != 4) & (v != 6)]] = T_DONE
    for token, layout in COOKED.items():
        m = np.isin(lt, LINKTYPE_START.get(token, []))
        if m.any():
            si = np.flatnonzero(m)
            p = rows.pos[si]
            ok = p + layout.LEN <= rows.end[si]
            et = rows.u16(p + layout.TYPE)
            rows.tok[si] = T_FALLBACK
            rows.pos[si] = p + layout.LEN
            by_ethertype(rows, si[ok], et[ok], p[ok] + layout.LEN, rows.end[si[ok]])


def classify(batch, opts):
    """Run the kernel over a batch. Returns (keys, fallback_rows, rows): an
    int64 key per row (meaningless for fallback rows), the indices of the
    rows the reference decoder must decode, and the row state (offsets of
    the innermost headers, for NAT64 and DNS)."""
    buf = np.frombuffer(batch.buffer, dtype=np.uint8)
    if not len(buf):
        # np.take cannot clip into an empty array; every row is empty, and
        # every length check below fails on a one-byte stand-in as well.
        buf = np.zeros(1, dtype=np.uint8)
    rows = Rows(buf, batch.offsets, batch.caplens)
    if MAX_LAYERS_PER_TUNNEL * (opts.max_tunnel_depth + 1) > opts.max_layers:
        # The reference could stop a row on its layer cap, which the kernel
        # does not count: with such options, every row goes to it.
        return pack(rows), np.arange(rows.n), rows
    start(rows, batch.linktypes)
    for _ in range(MAX_ROUNDS):
        active = False
        for token, step in STEPS:
            idx = np.flatnonzero(rows.tok == token)
            if len(idx):
                active = True
                step(rows, idx, opts)
        if not active:
            break
    else:
        rows.tok[rows.tok > T_FALLBACK] = T_FALLBACK
    return pack(rows), np.flatnonzero(rows.tok == T_FALLBACK), rows


def _full_groups():
    """For each first-32-bit value of ``FULL32``: the prefixes of the table
    (in table order) that an address starting with it can match."""
    top = np.uint64(0xFFFFFFFF00000000)
    groups = []
    for v32 in FULL32.tolist():
        head = np.uint64(v32 << 32)
        cands = [(k, vh, mh, vl, ml) for k, vh, mh, vl, ml in _CLASS_MASKS
                 if (head & mh & top) == (vh & top)]
        groups.append((v32, cands))
    return groups


FULL_GROUPS = _full_groups()


def classes_of(hi, low):
    """Address class (index into CLASS_NAMES) of IPv6 addresses given by
    their high 64-bit words ``hi``; ``low(i)`` gives the low words of
    addresses ``i`` (asked only for the few prefixes longer than /32)."""
    cls = CLASS16[(hi >> np.uint64(48)).astype(np.intp)]
    odd = np.flatnonzero(cls < 0)
    if len(odd):
        h = hi[odd]
        w32 = (h >> np.uint64(32)).astype(np.int64)
        c = BASE16[w32 >> 16]
        for value, mask, k in reversed(SPLIT32):      # first match in table order wins
            c[(w32 & mask) == value] = k
        for v32, cands in FULL_GROUPS:
            # ::/128, ::1, ::ffff:0:0/96 (first 32 bits 0); 64:ff9b::/96 and
            # 64:ff9b:1::/48: the full comparison, with the prefixes that can match
            f = np.flatnonzero(w32 == v32)
            if len(f):
                fh, fl = h[f], low(odd[f])
                conds = [((fh & mh) == vh) & ((fl & ml) == vl) for _, vh, mh, vl, ml in cands]
                c[f] = np.select(conds, [k for k, *_ in cands], default=CLASS_OTHER)
        cls[odd] = c
    return cls


def pack(rows):
    """One int64 per row holding every field of its ``FrameKey``."""
    n = rows.n
    fam = rows.payload
    transport = TRANSPORT_CODE[fam * 256 + (rows.proto & 0xFF)]
    src = np.zeros(n, dtype=np.int64)
    dst = np.zeros(n, dtype=np.int64)
    v6 = np.flatnonzero((fam == FAM_IPV6) & (rows.v6 >= 0))
    if len(v6):
        at = rows.v6[v6]
        low_at = np.concatenate((at + IPV6.SRC + IPV6.LOW, at + IPV6.DST + IPV6.LOW))
        both = classes_of(np.concatenate((rows.addr(0)[v6], rows.addr(2)[v6])),
                          lambda i: rows.u64(low_at[i])) + 1
        src[v6], dst[v6] = both[:len(v6)], both[len(v6):]
    vals = {"carrier": rows.carrier, "payload": fam, "tunnel": rows.tunnel,
            "transport": transport, "ext": rows.ext, "rtype": rows.rtype + 1,
            "chain": rows.chain + 1, "anom": rows.anom, "src": src, "dst": dst}
    key = np.zeros(n, dtype=np.int64)
    for name, (shift, _) in _SHIFT.items():
        key |= vals[name] << shift
    return key


def unpack(key):
    """The ``FrameKey`` of one packed key."""
    key = int(key)
    v = {name: (key >> shift) & mask for name, (shift, mask) in _SHIFT.items()}
    fam = FAMILY_NAMES[v["payload"]]
    transport = None if fam == "non_ip" else TRANSPORT_KEYS[fam][v["transport"] - 1]
    ext = tuple(n for i, n in enumerate(EXT_TYPE_NAMES) if v["ext"] >> i & 1)
    anom = tuple(n for i, n in enumerate(ANOMALY_NAMES) if v["anom"] >> i & 1)
    classes = (CLASS_NAMES[v["src"] - 1], CLASS_NAMES[v["dst"] - 1]) if v["src"] else ()
    return FrameKey(FAMILY_NAMES[v["carrier"]], fam, TUNNEL_KINDS[v["tunnel"]], transport, ext,
                    (v["rtype"] - 1,) if v["rtype"] else (),
                    v["chain"] - 1 if v["chain"] else None, anom, classes, None)
