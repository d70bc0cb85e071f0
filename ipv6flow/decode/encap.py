"""Encapsulations above IP: GRE and the UDP tunnels (REPORT.md section 2).

UDP tunnels are found by port first (a table, STYLE habit 2), then each
candidate's own header must validate; Teredo has no reliable port, so it is
a heuristic tried last and only over IPv4 (RFC 4380: Teredo carries IPv6
in UDP over IPv4). A UDP payload that merely starts with nibble 6 is not
Teredo: the inner payload length must fit inside the datagram, and the
port or the inner addresses must say Teredo.

A tunnel header that does not validate is not an error: the datagram is
ordinary UDP (zeek's gtp3_false_gtp.pcap is DNS from port 2152).
"""

from .constants import (ETHERTYPE_ERSPAN2, ETHERTYPE_ERSPAN3, ETHERTYPE_IPV4,
                        ETHERTYPE_IPV6, ETHERTYPE_PPP, ETHERTYPE_TEB, IPPROTO_IPIP,
                        IPPROTO_IPV6, UDP_PORT_AYIYA, UDP_PORT_GENEVE, UDP_PORT_GTPU,
                        UDP_PORT_L2TP, UDP_PORT_TEREDO, UDP_PORT_VXLAN)
from .link import ppp

GRE_PROTOCOLS = {ETHERTYPE_IPV6: "ipv6", ETHERTYPE_IPV4: "ipv4", ETHERTYPE_TEB: "eth"}
GENEVE_PROTOCOLS = GRE_PROTOCOLS
MAX_GTP_EXTENSIONS = 16


def _tag(step, kind):
    """The same step, marked as entering a tunnel of ``kind``."""
    return (step[0], step[1], step[2], kind) if step else None


def gre(f, d, off, end, opts):
    """GRE (RFC 2784/2890) and enhanced GRE (PPTP, RFC 2637).

    Followed: IPv6, IPv4, Ethernet (TEB), and the two GRE uses whose inner
    frames an engineer wants counted: PPP in PPTP, and ERSPAN mirror copies
    (type II and III, inner Ethernet). Source-routed GRE (R bit, RFC 1701)
    is not followed.
    """
    if off + 4 > end:
        f.fail("truncated")
        return None
    flags, ver = d[off], d[off + 1] & 0x07
    proto = (d[off + 2] << 8) | d[off + 3]
    hlen = 4
    if ver == 0:
        if flags & 0x40:
            return None
        hlen += 4 * (bool(flags & 0x80) + bool(flags & 0x20) + bool(flags & 0x10))
    elif ver == 1:
        # Enhanced GRE: the key field holds the payload length; an
        # acknowledgement alone carries no payload.
        if off + 8 > end or not (d[off + 4] | d[off + 5]):
            return None
        hlen += 4 + 4 * bool(flags & 0x10) + 4 * bool(d[off + 1] & 0x80)
    else:
        return None
    pos = off + hlen
    token = GRE_PROTOCOLS.get(proto)
    if token:
        return (token, pos, end, "gre")
    if proto == ETHERTYPE_PPP:
        return _tag(ppp(f, d, pos, end, opts), "gre")
    if proto == ETHERTYPE_ERSPAN2:
        # Type II has an 8-byte header and a sequence number; type I neither.
        return ("eth", pos + 8 if flags & 0x10 else pos, end, "gre")
    if proto == ETHERTYPE_ERSPAN3:
        if pos + 12 > end:
            return None
        return ("eth", pos + 12 + (8 if d[pos + 11] & 0x01 else 0), end, "gre")
    return None


def udp(f, d, off, end, opts):
    if off + 8 > end:
        f.fail("truncated")
        return None
    sport = (d[off] << 8) | d[off + 1]
    dport = (d[off + 2] << 8) | d[off + 3]
    ulen = (d[off + 4] << 8) | d[off + 5]
    uend = off + ulen if 8 <= ulen and off + ulen <= end else end
    pay = off + 8
    for port in (dport, sport) if dport != sport else (dport,):
        parser = UDP_PORTS.get(port)
        if parser is not None:
            step = parser(f, d, pay, uend, opts)
            if step is not None:
                return step
    if f.payload == "ipv4" and ulen >= 8:
        return teredo(f, d, pay, uend, off + ulen, UDP_PORT_TEREDO in (sport, dport))
    return None


def teredo(f, d, off, end, decl_end, on_port):
    """RFC 4380 5.1.1: optional authentication and origin indication
    headers, then an IPv6 header that fills the rest of the datagram."""
    pos = off
    if pos + 4 <= end and d[pos] == 0x00 and d[pos + 1] == 0x01:
        # authentication: id-len, auth-len, id, auth, 8-byte nonce, confirmation
        pos += 4 + d[pos + 2] + d[pos + 3] + 8 + 1
    if pos + 8 <= end and d[pos] == 0x00 and d[pos + 1] == 0x00:
        pos += 8                         # origin indication
    if pos + 40 > end or d[pos] >> 4 != 6:
        return None
    plen = (d[pos + 4] << 8) | d[pos + 5]
    # "Fits": the IPv6 packet may be followed by RFC 6081 trailers (nonce,
    # alternate address, random port) but never run past the datagram.
    if pos + 40 + plen > decl_end:
        return None
    if not on_port and d[pos + 8:pos + 12] != b"\x20\x01\x00\x00" \
            and d[pos + 24:pos + 28] != b"\x20\x01\x00\x00":
        return None
    return ("ipv6", pos, end, "teredo")


def _inner_ip(d, pos, end, kind):
    """An IP packet whose family is told by its version nibble."""
    if pos >= end:
        return None
    v = d[pos] >> 4
    if v == 4:
        return ("ipv4", pos, end, kind)
    if v == 6:
        return ("ipv6", pos, end, kind)
    return None


def gtpu(f, d, off, end, opts):
    """GTPv1-U T-PDU (3GPP TS 29.281 5.1): version 1, PT=1, type 0xFF."""
    if off + 8 > end:
        return None
    fl = d[off]
    if fl >> 5 != 1 or not fl & 0x10 or d[off + 1] != 0xFF:
        return None
    pos = off + 8
    if fl & 0x07:                        # E, S or PN: 4 optional bytes follow
        if pos + 4 > end:
            return None
        nxt = d[pos + 3] if fl & 0x04 else 0
        pos += 4
        for _ in range(MAX_GTP_EXTENSIONS):
            if not nxt:
                break
            if pos >= end or d[pos] == 0:
                return None
            ln = d[pos] * 4
            if pos + ln > end:
                return None
            nxt = d[pos + ln - 1]
            pos += ln
        else:
            return None
    return _inner_ip(d, pos, end, "gtpu")


def vxlan(f, d, off, end, opts):
    """VXLAN (RFC 7348): flags with the I bit, then an Ethernet frame."""
    if off + 8 > end or not d[off] & 0x08:
        return None
    return ("eth", off + 8, end, "vxlan")


def geneve(f, d, off, end, opts):
    """Geneve (RFC 8926): version 0, options, then a protocol type."""
    if off + 8 > end or d[off] >> 6 != 0:
        return None
    pos = off + 8 + (d[off] & 0x3F) * 4
    token = GENEVE_PROTOCOLS.get((d[off + 2] << 8) | d[off + 3])
    return (token, pos, end, "geneve") if token else None


def l2tp(f, d, off, end, opts):
    """L2TPv2 data message (RFC 2661 3.1) carrying PPP."""
    if off + 6 > end:
        return None
    fl = (d[off] << 8) | d[off + 1]
    if fl & 0x0F != 2 or fl & 0x8000:    # version 2, T=0 (data, not control)
        return None
    pos = off + 2 + (2 if fl & 0x4000 else 0) + 4 + (4 if fl & 0x0800 else 0)
    if fl & 0x0200:                      # offset size field and padding
        if pos + 2 > end:
            return None
        pos += 2 + ((d[pos] << 8) | d[pos + 1])
    return _tag(ppp(f, d, pos, end, opts), "l2tp")


AYIYA_NEXT = {IPPROTO_IPV6: "ipv6", IPPROTO_IPIP: "ipv4"}


def ayiya(f, d, off, end, opts):
    """AYIYA (draft-massar-v6ops-ayiya): identity of 2**IdLen bytes and a
    signature of 4*SigLen bytes after an 8-byte header."""
    if off + 8 > end:
        return None
    token = AYIYA_NEXT.get(d[off + 3])
    if token is None:
        return None
    pos = off + 8 + (1 << (d[off] >> 4)) + 4 * (d[off + 1] >> 4)
    return (token, pos, end, "ayiya")


UDP_PORTS = {
    UDP_PORT_GTPU: gtpu,
    UDP_PORT_VXLAN: vxlan,
    UDP_PORT_GENEVE: geneve,
    UDP_PORT_L2TP: l2tp,
    UDP_PORT_AYIYA: ayiya,
}

PARSERS = {"gre": gre, "udp": udp}
