"""Encapsulations above IP: GRE and the UDP tunnels (REPORT.md section 2).

UDP tunnels are found by port first (registry.UDP_TUNNELS, STYLE habit 2;
``TUNNEL_PARSERS`` holds this decoder's classifier of each kind), then each
candidate's own header must validate; Teredo has no reliable port, so it is
a heuristic tried last and only over IPv4 (RFC 4380: Teredo carries IPv6
in UDP over IPv4). A UDP payload that merely starts with nibble 6 is not
Teredo: the inner payload length must fit inside the datagram, and the
port or the inner addresses must say Teredo.

A tunnel header that does not validate is not an error: the datagram is
ordinary UDP (zeek's gtp3_false_gtp.pcap is DNS from port 2152).
"""

from . import registry
from .registry import (AYIYA, AYIYA_NEXT, ERSPAN, ETHERTYPE_ERSPAN2, ETHERTYPE_ERSPAN3,
                       ETHERTYPE_PPP, GENEVE, GRE, GTPU, IPV6, L2TP, TEREDO, UDP, UDP_PORT_TEREDO, VXLAN,
                       is_teredo)
from .link import by_version, ppp

# Inner protocols that are a plain next header (registry.GRE_PROTOCOLS);
# PPP and ERSPAN have their own few lines in ``gre``.
GRE_PROTOCOLS = {et: e.token for et, e in registry.GRE_PROTOCOLS.items()
                 if e.token in ("ipv4", "ipv6", "eth")}
GENEVE_PROTOCOLS = {et: e.token for et, e in registry.GENEVE_PROTOCOLS.items()}


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
    if off + GRE.LEN > end:
        f.fail("truncated")
        return None
    flags, ver = d[off + GRE.FLAGS], d[off + GRE.VER] & GRE.VERSION_MASK
    proto = (d[off + GRE.PROTO] << 8) | d[off + GRE.PROTO + 1]
    hlen = GRE.LEN
    if ver == 0:
        if flags & GRE.ROUTING:
            return None
        hlen += GRE.OPT_LEN * (bool(flags & GRE.CHECKSUM) + bool(flags & GRE.KEY)
                               + bool(flags & GRE.SEQ))
    elif ver == 1:
        # Enhanced GRE: the key field holds the payload length; an
        # acknowledgement alone carries no payload.
        if off + GRE.LEN + GRE.OPT_LEN > end \
                or not (d[off + GRE.PAYLOAD_LEN] | d[off + GRE.PAYLOAD_LEN + 1]):
            return None
        hlen += GRE.OPT_LEN * (1 + bool(flags & GRE.SEQ) + bool(d[off + GRE.VER] & GRE.ACK))
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
        return ("eth", pos + ERSPAN.V2_LEN if flags & GRE.SEQ else pos, end, "gre")
    if proto == ETHERTYPE_ERSPAN3:
        if pos + ERSPAN.V3_LEN > end:
            return None
        sub = ERSPAN.V3_SUBHEADER if d[pos + ERSPAN.V3_O_BYTE] & ERSPAN.V3_O_BIT else 0
        return ("eth", pos + ERSPAN.V3_LEN + sub, end, "gre")
    return None


def udp(f, d, off, end, opts):
    if off + UDP.LEN > end:
        f.fail("truncated")
        return None
    sport = (d[off + UDP.SPORT] << 8) | d[off + UDP.SPORT + 1]
    dport = (d[off + UDP.DPORT] << 8) | d[off + UDP.DPORT + 1]
    ulen = (d[off + UDP.ULEN] << 8) | d[off + UDP.ULEN + 1]
    uend = off + ulen if UDP.LEN <= ulen and off + ulen <= end else end
    pay = off + UDP.LEN
    for port in (dport, sport) if dport != sport else (dport,):
        parser = UDP_PORTS.get(port)
        if parser is not None:
            step = parser(f, d, pay, uend, opts)
            if step is not None:
                return step
    if f.payload == "ipv4" and ulen >= UDP.LEN:
        return teredo(f, d, pay, uend, off + ulen, UDP_PORT_TEREDO in (sport, dport))
    return None


def teredo(f, d, off, end, decl_end, on_port):
    """RFC 4380 5.1.1: optional authentication and origin indication
    headers, then an IPv6 header that fills the rest of the datagram."""
    pos = off
    if pos + TEREDO.AUTH_LEN <= end and d[pos] == TEREDO.INDICATION \
            and d[pos + 1] == TEREDO.AUTH:
        # authentication: id-len, auth-len, id, auth, 8-byte nonce, confirmation
        pos += TEREDO.AUTH_LEN + d[pos + TEREDO.ID_LEN] + d[pos + TEREDO.AUTH_DATA_LEN] \
            + TEREDO.NONCE_CONFIRMATION
    if pos + TEREDO.ORIGIN_LEN <= end and d[pos] == TEREDO.INDICATION \
            and d[pos + 1] == TEREDO.ORIGIN:
        pos += TEREDO.ORIGIN_LEN         # origin indication
    if pos + IPV6.LEN > end or d[pos] >> 4 != 6:
        return None
    plen = (d[pos + IPV6.PLEN] << 8) | d[pos + IPV6.PLEN + 1]
    # "Fits": the IPv6 packet may be followed by RFC 6081 trailers (nonce,
    # alternate address, random port) but never run past the datagram.
    if pos + IPV6.LEN + plen > decl_end:
        return None
    if not on_port and not is_teredo(int.from_bytes(d[pos + IPV6.SRC:pos + IPV6.SRC + 4], "big")) \
            and not is_teredo(int.from_bytes(d[pos + IPV6.DST:pos + IPV6.DST + 4], "big")):
        return None
    return ("ipv6", pos, end, "teredo")


def _inner_ip(d, pos, end, kind):
    """An IP packet whose family is told by its version nibble."""
    return by_version(d, pos, end, kind) if pos < end else None


def gtpu(f, d, off, end, opts):
    """GTPv1-U T-PDU (3GPP TS 29.281 5.1): version 1, PT=1, type 0xFF."""
    if off + GTPU.LEN > end:
        return None
    fl = d[off + GTPU.FLAGS]
    if fl >> GTPU.VERSION_SHIFT != GTPU.VERSION or not fl & GTPU.PT \
            or d[off + GTPU.TYPE] != GTPU.T_PDU:
        return None
    pos = off + GTPU.LEN
    if fl & GTPU.OPTIONAL:               # E, S or PN: 4 optional bytes follow
        if pos + GTPU.OPT_LEN > end:
            return None
        nxt = d[pos + GTPU.OPT_NEXT_EXT] if fl & GTPU.E_FLAG else 0
        pos += GTPU.OPT_LEN
        for _ in range(GTPU.MAX_EXTENSIONS):
            if not nxt:
                break
            if pos >= end or d[pos] == 0:
                return None
            ln = d[pos] * GTPU.EXT_UNIT
            if pos + ln > end:
                return None
            nxt = d[pos + ln - 1]
            pos += ln
        else:
            return None
    return _inner_ip(d, pos, end, "gtpu")


def vxlan(f, d, off, end, opts):
    """VXLAN (RFC 7348): flags with the I bit, then an Ethernet frame."""
    if off + VXLAN.LEN > end or not d[off + VXLAN.FLAGS] & VXLAN.I_FLAG:
        return None
    return ("eth", off + VXLAN.LEN, end, "vxlan")


def geneve(f, d, off, end, opts):
    """Geneve (RFC 8926): version 0, options, then a protocol type."""
    if off + GENEVE.LEN > end or d[off + GENEVE.VER_OPT] >> GENEVE.VERSION_SHIFT != 0:
        return None
    pos = off + GENEVE.LEN + (d[off + GENEVE.VER_OPT] & GENEVE.OPT_MASK) * GENEVE.OPT_UNIT
    token = GENEVE_PROTOCOLS.get((d[off + GENEVE.PROTO] << 8) | d[off + GENEVE.PROTO + 1])
    return (token, pos, end, "geneve") if token else None


def l2tp(f, d, off, end, opts):
    """L2TPv2 data message (RFC 2661 3.1) carrying PPP."""
    if off + L2TP.LEN > end:
        return None
    fl = (d[off + L2TP.FLAGS] << 8) | d[off + L2TP.FLAGS + 1]
    if fl & L2TP.VERSION_MASK != L2TP.VERSION or fl & L2TP.T_BIT:   # data, not control
        return None
    pos = off + L2TP.FLAGS_LEN + (L2TP.LENGTH if fl & L2TP.L_BIT else 0) + L2TP.TUNNEL_SESSION \
        + (L2TP.NS_NR_LEN if fl & L2TP.S_BIT else 0)
    if fl & L2TP.O_BIT:                  # offset size field and padding
        if pos + L2TP.OFFSET_SIZE > end:
            return None
        pos += L2TP.OFFSET_SIZE + ((d[pos] << 8) | d[pos + 1])
    return _tag(ppp(f, d, pos, end, opts), "l2tp")


def ayiya(f, d, off, end, opts):
    """AYIYA (draft-massar-v6ops-ayiya): identity of 2**IdLen bytes and a
    signature of 4*SigLen bytes after an 8-byte header."""
    if off + AYIYA.LEN > end:
        return None
    token = AYIYA_NEXT.get(d[off + AYIYA.NEXT])
    if token is None:
        return None
    pos = off + AYIYA.LEN + (1 << (d[off + AYIYA.ID_LEN] >> 4)) \
        + AYIYA.SIG_UNIT * (d[off + AYIYA.SIG_LEN] >> 4)
    return (token, pos, end, "ayiya")


# The classifier of each UDP tunnel kind; the ports are registry.UDP_TUNNELS.
TUNNEL_PARSERS = {"gtpu": gtpu, "vxlan": vxlan, "geneve": geneve, "l2tp": l2tp, "ayiya": ayiya}
UDP_PORTS = {port: TUNNEL_PARSERS[t.kind] for port, t in registry.UDP_TUNNELS.items()}

PARSERS = {"gre": gre, "udp": udp}
