"""Link layers: from a frame's first byte to the first network-layer header.

Each parser takes (frame, data, off, end, opts) and returns the next step as
(token, off, end, tunnel_kind) or None when the frame holds no IP. Tokens
are names in the engine's dispatch table ('eth', 'vlan', 'ipv4', ...); the
wiring is data (STYLE habit 2): ``ETHERTYPES`` and ``LINKTYPES`` below are
read from the protocol registry (registry.py), which also says which of
them the numpy kernel decodes itself.
A header cut short by the snap length sets ``frame.fail('truncated')``.
"""

from . import registry
from .registry import (ETH, ETHERTYPE_MAX_LENGTH, IP_VERSIONS, LLC_SNAP, MPLS, PPP_ADDRESS,
                       PPP_COMPRESSED, PPP_CONTROL, PPP_PROTOCOLS, PPPOE, SLL, SLL2, VLAN)

# Ethertype -> next parser token (registry.ETHERTYPES).
ETHERTYPES = {et: e.token for et, e in registry.ETHERTYPES.items()}

# BSD loopback address families (DLT_NULL / DLT_LOOP): AF_INET is 2
# everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD, BSD/OS),
# 28 (FreeBSD), 30 (Darwin).
NULL_FAMILIES = {2: "ipv4", 10: "ipv6", 24: "ipv6", 28: "ipv6", 30: "ipv6"}

# Frame Relay NLPIDs (RFC 2427 / ISO/IEC TR 9577).
NLPID_IPV4 = 0xCC
NLPID_IPV6 = 0x8E
NLPID_SNAP = 0x80


def _need(f, end, n):
    """True when n bytes are available; else mark the frame truncated."""
    if n > end:
        f.fail("truncated")
        return False
    return True


def by_ethertype(et, off, end):
    token = ETHERTYPES.get(et)
    return (token, off, end, None) if token else None


def ethernet(f, d, off, end, opts):
    if not _need(f, end, off + ETH.LEN):
        return None
    et = (d[off + ETH.TYPE] << 8) | d[off + ETH.TYPE + 1]
    off += ETH.LEN
    if et <= ETHERTYPE_MAX_LENGTH:       # IEEE 802.3 length: LLC follows
        return llc(f, d, off, end, opts)
    return by_ethertype(et, off, end)


def llc(f, d, off, end, opts):
    """802.2 LLC; only SNAP (AA AA 03, OUI 0) carries an ethertype we follow."""
    if end - off >= LLC_SNAP.LEN and d[off] == LLC_SNAP.DSAP and d[off + 1] == LLC_SNAP.SSAP \
            and d[off + 2] == LLC_SNAP.CONTROL:
        et = (d[off + LLC_SNAP.TYPE] << 8) | d[off + LLC_SNAP.TYPE + 1]
        return by_ethertype(et, off + LLC_SNAP.LEN, end)
    return None                          # STP, other LLC: not IP


def vlan(f, d, off, end, opts):
    if not _need(f, end, off + VLAN.LEN):
        return None
    et = (d[off + VLAN.TYPE] << 8) | d[off + VLAN.TYPE + 1]
    if et <= ETHERTYPE_MAX_LENGTH:
        return llc(f, d, off + VLAN.LEN, end, opts)
    return by_ethertype(et, off + VLAN.LEN, end)


def mpls(f, d, off, end, opts):
    """Walk the label stack to the bottom (S bit), then guess by first nibble."""
    while True:
        if not _need(f, end, off + MPLS.LEN):
            return None
        bottom = d[off + MPLS.BOS] & MPLS.BOS_BIT
        off += MPLS.LEN
        if bottom:
            break
    if not _need(f, end, off + 1):
        return None
    return first_nibble(f, d, off, end, opts)


def by_version(d, off, end, kind=None):
    """An IP packet at ``off`` whose family its version nibble tells."""
    token = IP_VERSIONS.get(d[off] >> 4)
    return (token, off, end, kind) if token else None


def first_nibble(f, d, off, end, opts):
    """Raw IP: the version nibble says which family."""
    if not _need(f, end, off + 1):
        return None
    return by_version(d, off, end)


def raw_ipv4(f, d, off, end, opts):
    return ("ipv4", off, end, None)


def raw_ipv6(f, d, off, end, opts):
    return ("ipv6", off, end, None)


def pppoe(f, d, off, end, opts):
    """PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol."""
    if not _need(f, end, off + PPPOE.LEN + 2):
        return None
    if d[off + PPPOE.VER_TYPE] != PPPOE.VERSION_TYPE or d[off + PPPOE.CODE] != PPPOE.SESSION_DATA:
        return None
    return ppp_protocol(f, d, off + PPPOE.LEN, end, opts)


def ppp_protocol(f, d, off, end, opts):
    """A PPP protocol field, possibly compressed to one byte (RFC 1661 6.5)."""
    if not _need(f, end, off + 1):
        return None
    if d[off] & PPP_COMPRESSED:          # odd first byte: compressed 1-byte field
        proto, off = d[off], off + 1
    else:
        if not _need(f, end, off + 2):
            return None
        proto, off = (d[off] << 8) | d[off + 1], off + 2
    token = PPP_PROTOCOLS.get(proto)
    return (token, off, end, None) if token else None


def ppp(f, d, off, end, opts):
    """PPP (DLT 9, 50): optional FF 03 address/control, then the protocol."""
    if end - off >= 2 and d[off] == PPP_ADDRESS and d[off + 1] == PPP_CONTROL:
        off += 2
    return ppp_protocol(f, d, off, end, opts)


def chdlc(f, d, off, end, opts):
    """Cisco HDLC: address, control, then an ethertype."""
    if not _need(f, end, off + 4):
        return None
    return by_ethertype((d[off + 2] << 8) | d[off + 3], off + 4, end)


def frame_relay(f, d, off, end, opts):
    """Frame Relay (DLT 107): 2-byte Q.922 address, then RFC 2427 or Cisco."""
    if not _need(f, end, off + 4):
        return None
    off += 2
    if d[off] != 0x03:                   # Cisco encapsulation: an ethertype
        return by_ethertype((d[off] << 8) | d[off + 1], off + 2, end)
    off += 1
    if d[off] == 0x00:                   # optional pad before the NLPID
        off += 1
        if not _need(f, end, off + 1):
            return None
    nlpid = d[off]
    if nlpid == NLPID_IPV4:
        return ("ipv4", off + 1, end, None)
    if nlpid == NLPID_IPV6:
        return ("ipv6", off + 1, end, None)
    if nlpid == NLPID_SNAP:
        if not _need(f, end, off + 6):
            return None
        return by_ethertype((d[off + 4] << 8) | d[off + 5], off + 6, end)
    return None


def null_loopback(f, d, off, end, opts):
    """DLT_NULL: a 4-byte address family in the writer's byte order."""
    if not _need(f, end, off + 4):
        return None
    fam = int.from_bytes(d[off:off + 4], "little")
    if fam > 0xFFFF:                     # written big-endian
        fam = int.from_bytes(d[off:off + 4], "big")
    token = NULL_FAMILIES.get(fam)
    return (token, off + 4, end, None) if token else None


def loop(f, d, off, end, opts):
    """DLT_LOOP (108): like DLT_NULL but always network byte order."""
    if not _need(f, end, off + 4):
        return None
    token = NULL_FAMILIES.get(int.from_bytes(d[off:off + 4], "big"))
    return (token, off + 4, end, None) if token else None


def sll(f, d, off, end, opts):
    """Linux cooked capture v1: 16-byte header, protocol type last."""
    if not _need(f, end, off + SLL.LEN):
        return None
    return by_ethertype((d[off + SLL.TYPE] << 8) | d[off + SLL.TYPE + 1], off + SLL.LEN, end)


def sll2(f, d, off, end, opts):
    """Linux cooked capture v2: 20-byte header, protocol type first."""
    if not _need(f, end, off + SLL2.LEN):
        return None
    return by_ethertype((d[off + SLL2.TYPE] << 8) | d[off + SLL2.TYPE + 1], off + SLL2.LEN, end)


def radiotap(f, d, off, end, opts):
    """Radiotap: skip its self-described length, then an 802.11 frame."""
    if not _need(f, end, off + 4):
        return None
    rlen = d[off + 2] | (d[off + 3] << 8)
    if rlen < 8:
        f.fail("malformed")
        return None
    return ieee80211(f, d, off + rlen, end, opts)


def ieee80211(f, d, off, end, opts):
    """802.11 data frames with LLC/SNAP; management, control and protected
    (encrypted) frames carry no IP we can see."""
    if not _need(f, end, off + 24):
        return None
    fc0, fc1 = d[off], d[off + 1]
    if (fc0 >> 2) & 0x3 != 2:            # not a data frame
        return None
    subtype = fc0 >> 4
    if subtype & 0x4:                    # null-function data: no body
        return None
    if fc1 & 0x40:                       # protected frame
        return None
    hlen = 24
    if fc1 & 0x03 == 0x03:               # ToDS and FromDS: a fourth address
        hlen += 6
    if subtype & 0x8:                    # QoS data: QoS control field
        hlen += 2
        if fc1 & 0x80:                   # +HTC
            hlen += 4
    off += hlen
    if not _need(f, end, off + 8):
        return None
    return llc(f, d, off, end, opts)


# pcap / pcapng LINKTYPE_* values -> first parser token (registry.LINKTYPES).
LINKTYPES = {lt: e.token for lt, e in registry.LINKTYPES.items()}

PARSERS = {
    "null": null_loopback, "loop": loop, "eth": ethernet, "vlan": vlan, "mpls": mpls,
    "pppoe": pppoe, "ppp": ppp, "raw": first_nibble, "raw_ipv4": raw_ipv4,
    "raw_ipv6": raw_ipv6, "chdlc": chdlc, "frame_relay": frame_relay, "sll": sll,
    "sll2": sll2, "radiotap": radiotap, "ieee80211": ieee80211,
}
