"""Hypothesis strategies for differential tests of the two decoders.

Frames are built compositionally, outermost last: an IP packet is an IPv4
or IPv6 header (with an extension-header chain) around either a leaf
(TCP, UDP, ICMP quoting a packet, No Next Header, unknown protocols) or a
tunnel (protocol 41 / 4, GRE, the UDP tunnels, Teredo) around another IP
packet, recursively until a depth budget runs out; a link layer of the
drawn link type goes around the outermost packet. Everything is packed by
hand with ``struct`` (hypothesis runs thousands of examples; scapy would
dominate the run time), and every builder records where its length fields
are, so that the mutation strategies can aim at them.

Choices are drawn with the normal case first, so that hypothesis shrinks
a failing example toward the plainest frame that still fails.

Public strategies:

* ``options()`` -- ``DecodeOptions`` (6rd prefixes incl. a /72, tunnel caps)
* ``ip_packets()`` -- one IP packet (raw bytes, no link layer)
* ``frames()`` -- a ``Row`` (linktype, data, wirelen) built layer by layer
* ``mutated(rows)`` -- truncate / flip bytes / set length fields to 0, 1, max
* ``garbage()`` -- a link header, maybe a version nibble, then random bytes
* ``rows()`` -- a mix of the three
* ``batches(rows())`` -- ``(Batch, [Row])``: 1..50 rows in one buffer with
  random gaps, the bytes a snap length cut off placed right after a cut row
  (so a read past caplen sees plausible data), and one row ending exactly
  at the end of the buffer (so a read past the buffer is caught).
"""

import os
import struct
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from ipv6flow.capture.batch import Batch
from ipv6flow.decode import DecodeOptions, parse_prefix

SIXRD_28 = parse_prefix("2a01:e30::/28")
SIXRD_72 = parse_prefix("2a02:1234:5678:9abc:de00::/72")   # > 64 bits: kernel's long path

# Known open bugs (see tests/test_fast_hypothesis.py): while this is true,
# the structured strategies do not build their triggers on purpose, so the
# general properties stay green and the explicit regression tests (marked
# xfail strict) carry the bug. Set IPV6FLOW_HYPOTHESIS_OPEN_BUGS=1 to build
# them anyway (to check whether they are fixed, or to hunt for more).
AVOID_OPEN_BUGS = os.environ.get("IPV6FLOW_HYPOTHESIS_OPEN_BUGS", "") != "1"

SUPPORTED_LINKTYPES = (0, 1, 9, 12, 14, 50, 101, 104, 105, 107, 108, 113, 127, 228, 229, 276)
KERNEL_LINKTYPES = (1, 12, 14, 101, 113, 228, 229, 276)
UNSUPPORTED_LINKTYPES = (2, 6, 147, 192, 220, 263, 65535, 0x7FFFFFFF)

TUNNEL_PORTS = (2152, 4789, 6081, 1701, 5072)
TEREDO_PORT = 3544
EXT_HEADERS = (60, 0, 43, 44, 51, 50, 135, 139, 140, 253, 254)


class Row(NamedTuple):
    """One captured frame. ``tail`` holds the bytes a snap length cut off
    (the batch strategy places them right after the row)."""

    linktype: int
    data: bytes
    wirelen: int
    tail: bytes = b""


class Pkt:
    """Bytes plus where their length fields are: (offset, size), size 1 or
    2 bytes, or 0 for the low nibble of a byte (IPv4 IHL)."""

    __slots__ = ("data", "fields")

    def __init__(self, data=b"", fields=()):
        self.data = bytes(data)
        self.fields = list(fields)

    def under(self, header, fields=()):
        """This packet behind ``header``."""
        n = len(header)
        return Pkt(header + self.data, list(fields) + [(o + n, k) for o, k in self.fields])

    def then(self, trailer):
        return Pkt(self.data + trailer, self.fields)

    def __len__(self):
        return len(self.data)


def u16(x):
    return struct.pack("!H", x & 0xFFFF)


def u32(x):
    return struct.pack("!I", x & 0xFFFFFFFF)


# -- drawing helpers ---------------------------------------------------------

def _pick(draw, seq):
    """One of ``seq``; shrinks toward seq[0]."""
    return draw(st.sampled_from(seq))


def _rare(draw, k=12):
    """True about once in k draws; shrinks toward False."""
    return draw(st.integers(0, k - 1)) == k - 1


def _int(draw, lo, hi):
    return draw(st.integers(lo, hi))


def _bytes(draw, lo, hi):
    return draw(st.binary(min_size=lo, max_size=hi))


# -- addresses -----------------------------------------------------------------

_V6_PREFIXES = (
    bytes.fromhex("2a00145000"),                 # plain global unicast
    bytes.fromhex("2002"),                       # 6to4
    bytes.fromhex("20010000"),                   # Teredo
    bytes.fromhex("2a010e35"),                   # inside 2a01:e30::/28 (6rd)
    bytes.fromhex("2a010e3f"),                   # inside, last /32
    bytes.fromhex("2a010e40"),                   # just outside the /28
    bytes.fromhex("2a02123456789abcde"),         # inside the /72
    bytes.fromhex("2a02123456789abcdf"),         # high 64 bits match, outside the /72
    bytes.fromhex("2a02123456789abc"),           # high 64 bits match, rest random
    bytes.fromhex("20010db8"),                   # documentation
    bytes.fromhex("3fff00"),                     # documentation (3fff::/20)
    bytes.fromhex("0064ff9b0000000000000000"),   # NAT64 well-known
    bytes.fromhex("0064ff9b0001"),               # NAT64 local use
    bytes(10) + b"\xff\xff",                     # IPv4-mapped
    bytes(16),                                   # unspecified
    bytes(15) + b"\x01",                         # loopback
    bytes.fromhex("fe80"), bytes.fromhex("fd"), bytes.fromhex("ff02"),
    bytes.fromhex("40"), b"",                    # other, anything
)
_ISATAP_IIDS = (None, b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe", b"\x01\x00\x5e\xfe")


def addr6(draw):
    prefix = _pick(draw, _V6_PREFIXES)
    a = prefix + _bytes(draw, 16 - len(prefix), 16 - len(prefix))
    iid = _pick(draw, _ISATAP_IIDS) if _rare(draw, 5) else None
    if iid is not None:
        a = a[:8] + iid + a[12:]
    return a


# -- IP layer ------------------------------------------------------------------

def ipv4(draw, proto, payload):
    """An IPv4 header around ``payload`` (protocol ``proto``)."""
    version, ihl = 4, 5
    if _rare(draw, 20):
        version = _pick(draw, (6, 0, 5, 15))
    if _rare(draw, 10):
        ihl = _pick(draw, (6, 15, 7, 4, 0, 1))
    opts = b"\x01" * ((ihl - 5) * 4) if ihl > 5 else b""
    frag = _pick(draw, (0, 0, 0, 0, 0x4000, 0x2000, "nonfirst", "nonfirst_mf"))
    if frag == "nonfirst":
        frag = _int(draw, 1, 0x1FFF)
    elif frag == "nonfirst_mf":
        frag = 0x2000 | _int(draw, 1, 0x1FFF)
    tot = 20 + len(opts) + len(payload)
    if _rare(draw, 10):
        tot = _pick(draw, (0, ihl * 4, ihl * 4 - 1, tot - 1, tot + 8, 0xFFFF, 1, "any"))
        if tot == "any":
            tot = _int(draw, 0, 0xFFFF)
    addrs = _bytes(draw, 8, 8)
    hdr = (bytes([(version << 4) | ihl, 0]) + u16(tot) + b"\x12\x34" + u16(frag)
           + bytes([64, proto & 0xFF]) + b"\x00\x00" + addrs + opts)
    return payload.under(hdr, [(0, 0), (2, 2)])


def ext_chain(draw, final_nh, payload):
    """An IPv6 extension-header chain ending in ``final_nh``, in front of
    ``payload``; returns (first next-header value, Pkt)."""
    n = _pick(draw, (0, 0, 0, 1, 1, 2, 3, 4, 1, 2, 5, 6, 7, 8, 9, 12))
    types = [_pick(draw, EXT_HEADERS) for _ in range(n)]
    if AVOID_OPEN_BUGS and 253 in types and 254 in types:
        types = [253 if t == 254 else t for t in types]      # bug 1: 253 vs 254
    nh, pkt = final_nh, payload
    for t in reversed(types):
        if t == 50:                      # ESP: what follows is ciphertext
            pkt = pkt.under(b"\x00\x00\x10\x01" + b"\x00\x00\x00\x07")
        elif t == 44:
            mode = _pick(draw, ("first", "atomic", "nonfirst", "last"))
            off = 0 if mode in ("first", "atomic") else _int(draw, 1, 0x1FFF)
            more = 1 if mode in ("first", "nonfirst") else 0
            res = _int(draw, 0, 3) if _rare(draw, 8) else 0
            pkt = pkt.under(bytes([nh, 0]) + u16((off << 3) | (res << 1) | more) + b"\xab\xcd\xef\x01")
        elif t == 51:
            ln = _pick(draw, (1, 4, 0, 2, 3, 7, "any"))
            if ln == "any":
                ln = _int(draw, 0, 255)
            size = (ln + 2) * 4
            body = bytes([nh, ln, 0, 0]) + b"\x00\x00\x01\x00\x00\x00\x00\x01"
            pkt = pkt.under((body + bytes(max(0, size - len(body))))[:size], [(1, 1)])
        else:
            ln = _pick(draw, (0, 1, 2, 0, 3, "any"))
            if ln == "any":
                ln = _int(draw, 0, 255)
            size = (ln + 1) * 8
            hdr = bytearray(size)
            hdr[0], hdr[1] = nh, ln
            if t == 43:
                rtype = _pick(draw, (4, 2, 0, 3, 1, 5, 254, 255, "any"))
                hdr[2] = _int(draw, 0, 255) if rtype == "any" else rtype
                hdr[3] = _int(draw, 0, 3)
            pkt = pkt.under(bytes(hdr), [(1, 1)])
        nh = t
    return nh, pkt


def ipv6(draw, nh, payload):
    """An IPv6 header (and extension headers) around ``payload``."""
    first, body = ext_chain(draw, nh, payload)
    version = 6 if not _rare(draw, 25) else _pick(draw, (4, 0, 7))
    plen = len(body)
    if _rare(draw, 8):
        plen = _pick(draw, (0, plen - 1, plen + 8, 1, 0xFFFF, 8, "any"))
        if plen == "any":
            plen = _int(draw, 0, 0xFFFF)
    hdr = bytes([version << 4, 0, 0, 0]) + u16(plen) + bytes([first, 64]) + addr6(draw) + addr6(draw)
    return body.under(hdr, [(4, 2)])


def ip_packet(draw, family, depth):
    """A complete IP packet of ``family`` (4 or 6) nesting about ``depth``
    tunnels."""
    if depth > 0 and not _rare(draw, 10):
        proto, payload = tunnel(draw, family, depth)
    else:
        proto, payload = leaf(draw, family)
    if proto == "hdr":                   # a header-less 'tunnel' (already wrapped)
        return payload
    return ipv4(draw, proto, payload) if family == 4 else ipv6(draw, proto, payload)


# -- transport leaves ------------------------------------------------------------

def _udp(draw, sport, dport, payload):
    ulen = 8 + len(payload)
    if _rare(draw, 10):
        ulen = _pick(draw, (0, 1, 7, 8, ulen - 1, ulen + 1, 0xFFFF, "any"))
        if ulen == "any":
            ulen = _int(draw, 0, 0xFFFF)
    return payload.under(u16(sport) + u16(dport) + u16(ulen) + b"\x00\x00", [(4, 2)])


def _plain_port(draw):
    return _pick(draw, (40000, 53, 443, 123, TEREDO_PORT) + TUNNEL_PORTS + ("any",)) \
        if _rare(draw, 3) else _pick(draw, (51234, 53, 443, 123, 8080))


def leaf(draw, family):
    """(protocol, Pkt) of an upper layer that is not a tunnel."""
    kind = _pick(draw, ("tcp", "udp", "icmp", "none", "tcp_short", "udp_fake6", "unknown",
                        "esp", "any", "icmp_quote"))
    if kind == "tcp":
        hdr = b"\xc0\x01\x01\xbb" + b"\x00\x00\x00\x01" * 2 + b"\x50\x18\x20\x00" + b"\x00" * 4
        return 6, Pkt(hdr + _bytes(draw, 0, 12))
    if kind == "tcp_short":
        return 6, Pkt(_bytes(draw, 0, 19))
    if kind == "udp":
        sport, dport = _plain_port(draw), _plain_port(draw)
        if sport == "any":
            sport = _int(draw, 0, 0xFFFF)
        if dport == "any":
            dport = _int(draw, 0, 0xFFFF)
        return 17, _udp(draw, sport, dport, Pkt(_bytes(draw, 0, 48)))
    if kind == "udp_fake6":
        # a UDP payload that starts like an IPv6 header but is no Teredo
        fake = bytes([0x60, 0, 0, 0]) + u16(_pick(draw, (0, 8, 1000, 0xFFFF))) \
            + bytes([17, 64]) + addr6(draw) + addr6(draw) + _bytes(draw, 0, 16)
        ports = _pick(draw, ((51234, 53), (TEREDO_PORT, 51234), (51234, TEREDO_PORT),
                             (TEREDO_PORT, TEREDO_PORT), (4789, 51234), (51234, 2152)))
        return 17, _udp(draw, ports[0], ports[1], Pkt(fake))
    if kind == "icmp":
        return (1 if family == 4 else 58), Pkt(bytes([8 if family == 4 else 128, 0, 0, 0, 0, 1, 0, 1])
                                                  + _bytes(draw, 0, 8))
    if kind == "icmp_quote":
        # an error message quoting a tunnel packet: never followed
        quoted = ip_packet(draw, _pick(draw, (4, 6)), 1).data[:_pick(draw, (1500, 28, 48, 60))]
        t = (3 if family == 4 else 1)
        return (1 if family == 4 else 58), Pkt(bytes([t, 0, 0, 0, 0, 0, 0, 0]) + quoted)
    if kind == "none":
        return 59, Pkt(_bytes(draw, 0, 8))
    if kind == "unknown":
        return _pick(draw, (146, 200, 252, 255)), Pkt(_bytes(draw, 0, 16))
    if kind == "esp":
        return 50, Pkt(b"\x00\x00\x10\x01\x00\x00\x00\x07" + _bytes(draw, 0, 16))
    return _int(draw, 0, 255), Pkt(_bytes(draw, 0, 48))


# -- tunnels -------------------------------------------------------------------

_TUNNELS = ("ip41", "ip4", "gre", "gtpu", "vxlan", "teredo", "geneve", "l2tp", "ayiya")


def tunnel(draw, family, depth):
    """(protocol, Pkt) of an encapsulation holding a packet nesting
    ``depth - 1`` more tunnels."""
    kind = _pick(draw, _TUNNELS)
    inner_family = _pick(draw, (6, 4))
    if kind == "ip41":
        return 41, ip_packet(draw, 6, depth - 1)
    if kind == "ip4":
        return 4, ip_packet(draw, 4, depth - 1)
    if kind == "gre":
        return 47, gre(draw, depth)
    if kind == "teredo":
        return 17, teredo(draw, depth)
    inner = ip_packet(draw, inner_family, depth - 1)
    if kind == "gtpu":
        payload = gtpu(draw, inner)
    elif kind == "vxlan":
        flags = _pick(draw, (0x08, 0x08, 0x0C, 0x00, 0x88, "any"))
        if flags == "any":
            flags = _int(draw, 0, 255)
        payload = ethernet(draw, inner, inner_family).under(bytes([flags, 0, 0, 0, 0, 0, 0x2a, 0]))
    elif kind == "geneve":
        optlen = _pick(draw, (0, 1, 2, 63))
        ver = 0 if not _rare(draw, 8) else _int(draw, 1, 3)
        proto = _pick(draw, ("auto", 0x6558, 0x86DD, 0x0800, 0x1234))
        if proto == "auto":
            proto = 0x86DD if inner_family == 6 else 0x0800
        body = ethernet(draw, inner, inner_family) if proto == 0x6558 else inner
        payload = body.under(bytes([(ver << 6) | optlen, 0]) + u16(proto) + b"\x00\x00\x2a\x00"
                             + bytes(optlen * 4))
    elif kind == "l2tp":
        payload = l2tp(draw, inner, inner_family)
    else:
        payload = ayiya(draw, inner, inner_family)
    port = {"gtpu": 2152, "vxlan": 4789, "geneve": 6081, "l2tp": 1701, "ayiya": 5072}[kind]
    return 17, _udp_ports(draw, port, payload)


def _udp_ports(draw, port, payload):
    """UDP to/from a tunnel port: on dport, sport, both, or with another
    tunnel port (or Teredo's) on the other side."""
    where = _pick(draw, ("dport", "sport", "both", "other_tunnel", "teredo_other", "any"))
    eph = 50000 + _int(draw, 0, 15)
    if where == "dport":
        return _udp(draw, eph, port, payload)
    if where == "sport":
        return _udp(draw, port, eph, payload)
    if where == "both":
        return _udp(draw, port, port, payload)
    if where == "other_tunnel":
        other = _pick(draw, TUNNEL_PORTS)
        return _udp(draw, *((other, port) if _pick(draw, (0, 1)) else (port, other)), payload)
    if where == "teredo_other":
        return _udp(draw, *((TEREDO_PORT, port) if _pick(draw, (0, 1)) else (port, TEREDO_PORT)),
                    payload)
    return _udp(draw, _int(draw, 0, 0xFFFF), _int(draw, 0, 0xFFFF), payload)


def gtpu(draw, inner):
    flags = _pick(draw, (0x30, 0x32, 0x34, 0x31, 0x36, 0x38, 0x20, 0x10, 0x50, "any"))
    if flags == "any":
        flags = _int(draw, 0, 255)
    mtype = _pick(draw, (0xFF, 0xFF, 0x01, 0x1A, "any"))
    if mtype == "any":
        mtype = _int(draw, 0, 255)
    opt = b""
    if flags & 0x07:
        exts = []
        if flags & 0x04:
            exts = [_pick(draw, (1, 2, 0, 3)) for _ in range(_pick(draw, (1, 0, 2, 3, 17)))]
        nxt = _pick(draw, (0x85, 0xC0, 0x01)) if exts else _pick(draw, (0, 0, 0x85))
        opt = b"\x00\x01\x00" + bytes([nxt])
        chain = b""
        for i, units in enumerate(exts):
            last = i == len(exts) - 1
            size = max(units * 4, 2)
            e = bytearray(size)
            e[0] = units
            e[-1] = 0 if last else 0x85
            chain += bytes(e)
        opt += chain
    body = inner.under(opt)
    hdr = bytes([flags, mtype]) + u16(len(body)) + b"\x00\x00\x00\x2a"
    return body.under(hdr, [(2, 2)])


def gre(draw, depth):
    """GRE (versions 0 and 1, flags C/R/K/S/A) around an inner packet."""
    flags = _pick(draw, (0x00, 0x20, 0x80, 0x10, 0xB0, 0x40, 0x30, 0xA0, "any"))
    if flags == "any":
        flags = _int(draw, 0, 255) & 0xF8
    ver = _pick(draw, (0, 0, 0, 1, 2, 7))
    proto = _pick(draw, (0x86DD, 0x0800, 0x6558, 0x880B, 0x88BE, 0x22EB, 0x8847, "any"))
    if proto == "any":
        proto = _int(draw, 0, 0xFFFF)
    inner_family = 6 if proto == 0x86DD else 4 if proto == 0x0800 else _pick(draw, (6, 4))
    inner = ip_packet(draw, inner_family, depth - 1)
    if proto in (0x6558, 0x88BE, 0x22EB):
        body = ethernet(draw, inner, inner_family)
        if proto == 0x88BE and flags & 0x10:
            body = body.under(b"\x10\x00\x00\x2a\x00\x00\x00\x00")       # ERSPAN II header
        elif proto == 0x22EB:
            o = _pick(draw, (0, 1))
            body = body.under(b"\x20\x00\x00\x2a" + bytes(7) + bytes([o]) + bytes(8 * o))
    elif proto == 0x880B:
        body = ppp_frame(draw, inner, inner_family)
    else:
        body = inner
    b1 = ver
    if ver == 1:
        ack = _pick(draw, (0, 0x80))
        b1 |= ack
        plen = len(body) if not _rare(draw, 5) else 0
        opt = u16(plen) + b"\x00\x07"
        if flags & 0x10:
            opt += b"\x00\x00\x00\x01"
        if ack:
            opt += b"\x00\x00\x00\x00"
    else:
        opt = b""
        if flags & 0x80:
            opt += b"\x00\x00\x00\x00"
        if flags & 0x20:
            opt += b"\x00\x00\x00\x2a"
        if flags & 0x10:
            opt += b"\x00\x00\x00\x01"
    return body.under(bytes([flags, b1]) + u16(proto) + opt)


def teredo(draw, depth):
    """UDP carrying Teredo (auth / origin indication / trailers), on or off
    port 3544 (the inner addresses are often in 2001::/32)."""
    inner = ip_packet(draw, 6, depth - 1)
    pre = b""
    if _pick(draw, (0, 0, 1)):
        idl, al = _pick(draw, (0, 4, 13)), _pick(draw, (0, 8))
        pre += b"\x00\x01" + bytes([idl, al]) + bytes(idl + al) + bytes(8) + b"\x00"
    if _pick(draw, (0, 1, 1)):
        pre += b"\x00\x00\x12\x34\xc0\x00\x02\x01"
    trailer = _pick(draw, (b"", b"", b"\x01\x04" + bytes(8), b"\x03\x02\x00\x00", "any"))
    if trailer == "any":
        trailer = _bytes(draw, 1, 12)
    ports = _pick(draw, ((51234, TEREDO_PORT), (TEREDO_PORT, 51234), (51234, 51235),
                         (TEREDO_PORT, TEREDO_PORT), (4789, TEREDO_PORT), (51234, 2152)))
    return _udp(draw, ports[0], ports[1], inner.under(pre).then(trailer))


def l2tp(draw, inner, family):
    bits = _pick(draw, (0x0002, 0x4002, 0x0802, 0x0202, 0x4A02, 0x8002, 0x0003, "any"))
    if bits == "any":
        bits = _int(draw, 0, 0xFFFF)
    hdr = u16(bits)
    if bits & 0x4000:
        hdr += u16(len(inner) + 16)
    hdr += b"\x00\x01\x00\x02"
    if bits & 0x0800:
        hdr += b"\x00\x00\x00\x00"
    if bits & 0x0200:
        pad = _pick(draw, (0, 2, 300))
        hdr += u16(pad) + bytes(min(pad, 8))
    return ppp_frame(draw, inner, family).under(hdr)


def ayiya(draw, inner, family):
    idlen = _pick(draw, (4, 0, 1, 15))
    siglen = _pick(draw, (5, 0, 1))
    nh = _pick(draw, ("auto", 59, 17))
    if nh == "auto":
        nh = 41 if family == 6 else 4
    hdr = bytes([(idlen << 4) | 1, (siglen << 4) | 2, 0x11, nh]) + b"\x00\x00\x00\x01"
    hdr += bytes(min(1 << idlen, 64)) + bytes(4 * siglen)
    return inner.under(hdr)


# -- link layers ---------------------------------------------------------------

def ppp_frame(draw, inner, family):
    """PPP: optional FF 03, protocol (2 bytes or compressed), packet."""
    proto = _pick(draw, ("auto", "compressed", 0xC021, "other_family"))
    if proto == "auto":
        p = u16(0x0057 if family == 6 else 0x0021)
    elif proto == "compressed":
        p = bytes([0x57 if family == 6 else 0x21])
    elif proto == "other_family":
        p = u16(0x0021 if family == 6 else 0x0057)
    else:
        p = u16(proto)
    ac = b"\xff\x03" if _pick(draw, (1, 0)) else b""
    return inner.under(ac + p)


def l2_payload(draw, inner, family):
    """(ethertype, Pkt): what follows an Ethernet/SLL type field: VLAN
    stacks, PPPoE, MPLS, LLC/SNAP, TEB, or something that is not IP."""
    et = {4: 0x0800, 6: 0x86DD}.get(family, 0x0806)
    pkt = inner
    if _rare(draw, 25):
        et = _pick(draw, (0x86DD, 0x0800)) if family in (4, 6) else et   # maybe mismatched
    mode = _pick(draw, ("plain", "plain", "plain", "pppoe", "mpls", "non_ip", "teb"))
    if mode == "pppoe":
        code = 0 if not _rare(draw, 6) else _pick(draw, (0x09, 0x65))
        vt = 0x11 if not _rare(draw, 8) else _pick(draw, (0x10, 0x21))
        body = ppp_frame(draw, pkt, family)
        # PPPoE carries a bare protocol field (no FF 03)
        if body.data[:2] == b"\xff\x03":
            body = Pkt(body.data[2:], [(o - 2, k) for o, k in body.fields])
        pkt = body.under(bytes([vt, code]) + b"\x12\x34" + u16(len(body)), [(4, 2)])
        et = 0x8864
    elif mode == "mpls":
        labels = _pick(draw, (1, 2, 3, 5))
        hdr = b""
        for i in range(labels):
            hdr += u32((1000 + i) << 12 | (1 if i == labels - 1 else 0) << 8 | 64)
        if _rare(draw, 6):
            hdr += b"\x00\x00\x00\x00"               # pseudowire control word
        pkt, et = pkt.under(hdr), _pick(draw, (0x8847, 0x8848))
    elif mode == "non_ip":
        et = _pick(draw, (0x0806, 0x88CC, 0x8035, 0x86DE, 0x05DD, "any"))
        if et == "any":
            et = _int(draw, 1501, 0xFFFF)
        pkt = Pkt(_bytes(draw, 0, 28))
    elif mode == "teb":
        pkt, et = ethernet(draw, pkt, family), 0x6558
    llc = _pick(draw, ("none", "none", "none", "inner", "outer", "stp"))
    if llc == "inner":
        pkt, et = pkt.under(b"\xaa\xaa\x03\x00\x00\x00" + u16(et)), min(len(pkt) + 8, 1500)
    tags = _pick(draw, (0, 0, 0, 1, 2, 3, 4, 1, 2, 3, 5))
    for _ in range(tags):
        tpid = _pick(draw, (0x8100, 0x88A8, 0x9100))
        pkt, et = pkt.under(b"\x20\x2a" + u16(et)), tpid
    if llc == "outer":
        pkt, et = pkt.under(b"\xaa\xaa\x03\x00\x00\x00" + u16(et)), min(len(pkt) + 8, 1500)
    elif llc == "stp":
        pkt, et = Pkt(b"\x42\x42\x03" + _bytes(draw, 0, 35)), 38
    return et, pkt


def ethernet(draw, inner, family):
    et, pkt = l2_payload(draw, inner, family)
    return pkt.under(b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02" + u16(et))


_NULL_AF = {4: (2,), 6: (10, 24, 28, 30)}


def link(draw, linktype, ip, family):
    """``ip`` (an IP packet of ``family``) behind a ``linktype`` header."""
    if linktype == 1:
        return ethernet(draw, ip, family)
    if linktype in (12, 14, 101, 228, 229):
        return ip
    if linktype == 113:
        et, pkt = l2_payload(draw, ip, family)
        return pkt.under(b"\x00\x00\x00\x01\x00\x06" + b"\x02\x00\x00\x00\x00\x01\x00\x00" + u16(et))
    if linktype == 276:
        et, pkt = l2_payload(draw, ip, family)
        return pkt.under(u16(et) + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06"
                         + b"\x02\x00\x00\x00\x00\x01\x00\x00")
    if linktype in (0, 108):
        af = _pick(draw, _NULL_AF.get(family, (2,)) + (7, "any"))
        if af == "any":
            af = _int(draw, 0, 0xFFFFFFFF)
        order = "big" if linktype == 108 or _pick(draw, (0, 1)) else "little"
        return ip.under((af & 0xFFFFFFFF).to_bytes(4, order))
    if linktype in (9, 50):
        return ppp_frame(draw, ip, family)
    if linktype == 104:
        et, pkt = l2_payload(draw, ip, family)
        return pkt.under(b"\x0f\x00" + u16(et))
    if linktype == 107:
        mode = _pick(draw, ("nlpid", "pad", "snap", "cisco"))
        if mode == "cisco":
            et, pkt = l2_payload(draw, ip, family)
            return pkt.under(b"\x18\x41" + u16(et))
        if mode == "snap":
            et, pkt = l2_payload(draw, ip, family)
            return pkt.under(b"\x18\x41\x03\x00\x80\x00\x00\x00" + u16(et))
        nlpid = 0xCC if family == 4 else 0x8E
        return ip.under(b"\x18\x41\x03" + (b"\x00" if mode == "pad" else b"") + bytes([nlpid]))
    if linktype in (105, 127):
        et = 0x86DD if family == 6 else 0x0800
        fc0 = _pick(draw, (0x08, 0x88, 0xC8, 0x48, 0x00, 0x80))
        fc1 = _pick(draw, (0x01, 0x02, 0x03, 0x00, 0x41, 0x83, 0x82))
        hlen = 24 + (6 if fc1 & 3 == 3 else 0) + ((2 + (4 if fc1 & 0x80 else 0)) if fc0 & 0x80 else 0)
        hdr = bytes([fc0, fc1]) + bytes(hlen - 2)
        pkt = ip.under(hdr + b"\xaa\xaa\x03\x00\x00\x00" + u16(et))
        if linktype == 127:
            rlen = _pick(draw, (8, 12, 0, 4, 100))
            pkt = pkt.under(b"\x00\x00" + struct.pack("<H", rlen) + b"\x00\x00\x00\x00"
                            + bytes(max(0, rlen - 8)), [(2, 2)])
        return pkt
    return ip.under(_bytes(draw, 0, 16))            # unsupported link types


# -- frames, mutations, garbage --------------------------------------------------

_LINKTYPE_MIX = (1, 1, 1, 1, 101, 12, 14, 228, 229, 113, 276, 1, 101, 0, 108, 9, 50, 104,
                 105, 107, 127, 147)


@st.composite
def ip_packets(draw, family=None, max_depth=10):
    fam = family or _pick(draw, (6, 4))
    depth = _pick(draw, tuple(d for d in (0, 1, 1, 2, 2, 3, 1, 4, 5, 8, 9, 10) if d <= max_depth))
    return ip_packet(draw, fam, depth)


@st.composite
def frame_pkts(draw, linktypes=_LINKTYPE_MIX, max_depth=10):
    """(linktype, Pkt) of a well-formed-ish frame."""
    lt = _pick(draw, linktypes)
    if lt == 228:
        family = 4 if not _rare(draw, 10) else 6
    elif lt == 229:
        family = 6 if not _rare(draw, 10) else 4
    else:
        family = _pick(draw, (6, 4, 6, 4, 6, 4, 6, 4, 6, 4, None))
    if family is None:                   # not IP at all
        return lt, link(draw, lt, Pkt(_bytes(draw, 0, 40)), None)
    ip = draw(ip_packets(family, max_depth))
    return lt, link(draw, lt, ip, family)


@st.composite
def frames(draw, linktypes=_LINKTYPE_MIX, max_depth=10):
    """A complete, uncut frame as a Row (wirelen == caplen, sometimes more)."""
    lt, pkt = draw(frame_pkts(linktypes, max_depth))
    wire = len(pkt)
    if _rare(draw, 10):
        wire += _pick(draw, (1, 4, 1000))
    return Row(lt, pkt.data, wire)


def _set_field(data, off, size, value):
    if size == 0:
        return data[:off] + bytes([(data[off] & 0xF0) | (value & 0x0F)]) + data[off + 1:]
    return data[:off] + value.to_bytes(size, "big") + data[off + size:]


@st.composite
def mutated(draw, base=None):
    """A frame after 1..3 mutations: a snap-length cut (caplen < wirelen),
    byte flips, length fields set to 0 / 1 / all ones / a random value."""
    lt, pkt = draw(base if base is not None else frame_pkts())
    data, fields = bytearray(pkt.data), list(pkt.fields)
    cut = None
    for _ in range(_pick(draw, (1, 1, 2, 3))):
        what = _pick(draw, ("cut", "field", "flip", "flip", "field"))
        if what == "field" and fields:
            off, size = _pick(draw, fields)
            if off + max(size, 1) > len(data):
                continue
            top = {0: 0xF, 1: 0xFF, 2: 0xFFFF}[size]
            v = _pick(draw, (0, 1, top, "any"))
            if v == "any":
                v = _int(draw, 0, top)
            data = bytearray(_set_field(bytes(data), off, size, v))
        elif what == "flip" and data:
            for _ in range(_pick(draw, (1, 2, 4))):
                i = _int(draw, 0, len(data) - 1)
                v = _pick(draw, (0x00, 0xFF, 0x60, 0x45, 0x11, 0x29, 0x2C, 0x3B, 0xFD, 0xFE,
                                 "bit", "any"))
                if v == "bit":
                    v = data[i] ^ (1 << _int(draw, 0, 7))
                elif v == "any":
                    v = _int(draw, 0, 255)
                data[i] = v
        else:
            cut = _int(draw, 0, len(data)) if cut is None else min(cut, _int(draw, 0, len(data)))
    data = bytes(data)
    if cut is not None:
        return Row(lt, data[:cut], len(data), data[cut:])
    return Row(lt, data, len(data))


@st.composite
def garbage(draw, linktypes=SUPPORTED_LINKTYPES + UNSUPPORTED_LINKTYPES):
    """Random bytes behind a (usually) valid link header of any link type."""
    lt = _pick(draw, linktypes)
    body = _bytes(draw, 0, 80)
    if body and _pick(draw, (0, 1)):
        body = bytes([_pick(draw, (0x60, 0x45, 0x4f, 0x6f))]) + body[1:]
    if _pick(draw, (0, 1)):
        data = body
    else:
        data = link(draw, lt, Pkt(body), _pick(draw, (6, 4, None))).data
    wire = len(data) + (_pick(draw, (0, 0, 1, 100)))
    return Row(lt, data, wire)


def rows(max_depth=10):
    return st.one_of(frames(max_depth=max_depth), mutated(frame_pkts(max_depth=max_depth)),
                     garbage())


def options(caps=False):
    """DecodeOptions: 6rd prefixes (none, a /28, a /72 past the kernel's
    64-bit fast path, both) and tunnel caps around the interesting edges;
    with ``caps`` also the chain and layer caps."""
    prefixes = st.sampled_from(((SIXRD_28,), (), (SIXRD_72,), (SIXRD_28, SIXRD_72),
                                (parse_prefix("2a00::/8"),), (parse_prefix("::/0"),)))
    depth = st.sampled_from((8, 1, 2, 0, 3, 4, 9, 16))
    if not caps:
        return st.builds(lambda p, d: DecodeOptions(sixrd_prefixes=p, max_tunnel_depth=d),
                         prefixes, depth)
    return st.builds(lambda p, d, c, l: DecodeOptions(sixrd_prefixes=p, max_tunnel_depth=d,
                                                      max_chain=c, max_layers=l),
                     prefixes, depth, st.sampled_from((64, 0, 1, 2, 3, 5, 7, 8, 9)),
                     st.sampled_from((64, 1, 2, 3, 4, 5, 6, 8, 12, 16, 100)))


def pack_batch(rows, order=None, gaps=None, tail_gap=True):
    """Rows into one Batch. ``order``: the order rows are laid out in the
    buffer; ``gaps[i]``: filler before row order[i] (a cut row's tail is
    placed right after it). The last row laid out ends the buffer."""
    n = len(rows)
    order = list(range(n)) if order is None else order
    gaps = gaps or [b""] * n
    buf = bytearray()
    offsets = np.zeros(n, dtype=np.int64)
    for k, i in enumerate(order):
        buf += gaps[k]
        offsets[i] = len(buf)
        buf += rows[i].data
        if tail_gap and k != n - 1:
            buf += rows[i].tail
    return Batch(bytes(buf), offsets,
                 np.array([len(r.data) for r in rows], dtype=np.int64),
                 np.array([r.wirelen for r in rows], dtype=np.int64),
                 np.arange(n, dtype=np.float64) * 0.5 + 1.7e9,
                 np.array([r.linktype for r in rows], dtype=np.int32))


@st.composite
def batches(draw, row_strategy=None, max_rows=50):
    """(Batch, rows): rows laid out in a random order with random gaps."""
    rs = draw(st.lists(row_strategy if row_strategy is not None else rows(),
                       min_size=1, max_size=max_rows))
    n = len(rs)
    order = draw(st.permutations(range(n))) if _pick(draw, (0, 1)) else list(range(n))
    gaps = [_pick(draw, (b"", b"\x60", b"\x45\x00", b"\xff" * 8, b"\x00" * 3, b"\x86\xdd"))
            for _ in range(n)]
    return pack_batch(rs, order, gaps), rs
