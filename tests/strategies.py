"""Hypothesis strategies for differential tests of the two decoders.

Frames are built compositionally, outermost last: an IP packet is an IPv4
or IPv6 header (with an extension-header chain of 0..12 headers of random
types, repeats included) around either a leaf (TCP, UDP, ICMP quoting a
tunnel packet, DNS answers, Router Advertisements, No Next Header, ESP,
unknown protocols) or a tunnel (protocol 41 / 4, GRE, GTP-U, VXLAN,
Geneve, L2TP, AYIYA, Teredo) around another IP packet, recursively until
the drawn depth budget (0..10) runs out; a link layer of the drawn link
type goes around the outermost packet (Ethernet with 0..5 VLAN tags,
PPPoE, MPLS, LLC/SNAP, TEB; SLL, SLL2, raw, null/loop, PPP, C-HDLC, Frame
Relay, 802.11, radiotap, unsupported types). Everything is packed by hand
with ``struct`` (scapy would dominate the run time), and every builder
records where its length fields are, for the mutations to aim at.

Builders take a *chooser*: ``HypChooser`` draws from hypothesis (so a
failure shrinks: every choice lists its normal case first) and
``RandomChooser`` from ``random.Random`` (about 50 times faster, for bulk
hunting; ``random_rows``). A third of the frames are *clean*: no rare
anomaly is drawn anywhere, so deep tunnel stacks reach their innermost
packet and the depth caps are met; the others get odd values now and then
(wrong versions, IHL and length fields, GRE R bit and versions, VXLAN
without I, GTP-U flag variants, tunnel ports on the other side, ...).

Public strategies:

* ``options()`` -- ``DecodeOptions``: 6rd prefixes (a /28, a /64, a /72
  past the kernel's 64-bit path, /8, /0) and tunnel caps 0..16;
  ``options(caps=True)`` also varies ``max_chain`` and ``max_layers``
* ``ip_packets()`` -- one IP packet (``Pkt``), no link layer
* ``frames()`` -- a whole ``Row`` (linktype, data, wirelen)
* ``mutated()`` -- a built frame after 1..3 mutations: a snap-length cut
  (caplen < wirelen), byte flips, length fields set to 0 / 1 / max / any
* ``garbage()`` -- random bytes, often behind a valid link header
* ``rows()`` -- whole, mutated and garbage rows (2 : 2 : 1)
* ``batches(rows())`` -- ``(Batch, [Row])``: 1..50 rows laid out in a
  random order with random gaps; the bytes a snap length cut off follow
  their row (a read past caplen sees plausible data) and the last row laid
  out ends the buffer (a read past the buffer is caught)
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
SIXRD_64 = parse_prefix("2a02:1234:5678:9abc::/64")         # the kernel's last fast length

# Bugs once open (see tests/test_fast_hypothesis.py): while one is open,
# setting this true keeps the structured strategies from building its
# trigger, so the general properties stay green and an explicit xfail test
# carries it. None is open now.
# All four are fixed: the strategies build their triggers again by default.
AVOID_OPEN_BUGS = os.environ.get("IPV6FLOW_HYPOTHESIS_AVOID_BUGS", "") == "1"

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

_CACHE = {}


def _cached(key, make):
    s = _CACHE.get(key)
    if s is None:
        s = _CACHE[key] = make()
    return s


class HypChooser:
    """Choices drawn from hypothesis (shrinkable). ``clean`` turns the
    rare anomalies off, so that deep, valid tunnel stacks are built too."""

    def __init__(self, draw, clean=False):
        self.draw = draw
        self.clean = clean

    def int(self, lo, hi):
        return self.draw(_cached(("i", lo, hi), lambda: st.integers(lo, hi)))

    def bytes(self, lo, hi):
        return self.draw(_cached(("b", lo, hi), lambda: st.binary(min_size=lo, max_size=hi)))


class RandomChooser:
    """The same choices from ``random.Random`` (fast; for bulk hunting)."""

    def __init__(self, rng, clean=False):
        self.rng = rng
        self.clean = clean

    def int(self, lo, hi):
        return self.rng.randint(lo, hi)

    def bytes(self, lo, hi):
        return self.rng.randbytes(self.rng.randint(lo, hi))


def _pick(c, seq):
    """One of ``seq``; shrinks toward seq[0]."""
    return seq[c.int(0, len(seq) - 1)]


def _rare(c, k=12):
    """True about once in k draws (never for a clean frame); shrinks toward False."""
    if c.clean:
        return False
    return c.int(0, k - 1) == k - 1


def _int(c, lo, hi):
    return c.int(lo, hi)


def _bytes(c, lo, hi):
    return c.bytes(lo, hi)


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
    bytes.fromhex("20010db8006400000000000000"), # NAT64 network-specific /96 (NSP_96)
    bytes.fromhex("20010db81220"),               # NAT64 network-specific /40, /48 (u octet random)
    bytes(10) + b"\xff\xff",                     # IPv4-mapped
    bytes(16),                                   # unspecified
    bytes(15) + b"\x01",                         # loopback
    bytes.fromhex("fe80"), bytes.fromhex("fd"), bytes.fromhex("ff02"),
    bytes.fromhex("40"), b"",                    # other, anything
)
_ISATAP_IIDS = (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe", b"\x01\x00\x5e\xfe")
_ADDR_KINDS = tuple(range(len(_V6_PREFIXES))) + ("isatap",) * 3


def addr6(c):
    kind = _pick(c, _ADDR_KINDS)
    if kind == "isatap":
        prefix = _pick(c, _V6_PREFIXES[:9])
        a = prefix + _bytes(c, 16 - len(prefix), 16 - len(prefix))
        return a[:8] + _pick(c, _ISATAP_IIDS) + a[12:]
    prefix = _V6_PREFIXES[kind]
    return prefix + _bytes(c, 16 - len(prefix), 16 - len(prefix))


def _opt(c, good, odd=(), k=5):
    """One of ``good``; about once in k draws one of ``odd`` instead
    (never in a clean frame)."""
    if odd and _rare(c, k):
        return _pick(c, odd)
    return _pick(c, good)


def _any(c, v, top):
    return _int(c, 0, top) if v == "any" else v


# -- IP layer ------------------------------------------------------------------

def ipv4(c, proto, payload):
    """An IPv4 header around ``payload`` (protocol ``proto``)."""
    odd = _opt(c, ("ok",), ("version", "ihl", "tot", "tot"), k=8)
    version = 4 if odd != "version" else _pick(c, (6, 0, 5, 15))
    ihl = 5 if odd != "ihl" else _pick(c, (6, 15, 7, 4, 0, 1))
    opts = b"\x01" * ((ihl - 5) * 4) if ihl > 5 else b""
    frag = _opt(c, (0, 0, 0, 0, 0x4000, 0x2000), ("nonfirst", "nonfirst_mf"))
    if frag == "nonfirst":
        frag = _int(c, 1, 0x1FFF)
    elif frag == "nonfirst_mf":
        frag = 0x2000 | _int(c, 1, 0x1FFF)
    tot = 20 + len(opts) + len(payload)
    if odd == "tot":
        tot = _any(c, _pick(c, (0, ihl * 4, ihl * 4 - 1, tot - 1, tot + 8, 0xFFFF, 1, "any")),
                   0xFFFF)
    elif _pick(c, (0,) * 15 + (1,)):
        tot = 0                                  # TSO/GSO: length unset (valid by DECISIONS)
    hdr = (bytes([(version << 4) | ihl, 0]) + u16(tot) + b"\x12\x34" + u16(frag)
           + bytes([64, proto & 0xFF]) + b"\x00\x00" + _bytes(c, 8, 8) + opts)
    return payload.under(hdr, [(0, 0), (2, 2)])


_CHAIN_LENGTHS = (0, 0, 0, 1, 1, 2, 3, 4, 1, 2, 5, 6, 7, 8, 9, 12)


def ext_chain(c, final_nh, payload):
    """An IPv6 extension-header chain ending in ``final_nh`` in front of
    ``payload``; returns (first next-header value, Pkt). Types are drawn
    with repeats, in any order; lengths, routing types and fragment
    offset / M combinations vary."""
    n = _pick(c, _CHAIN_LENGTHS)
    types = [_pick(c, EXT_HEADERS) for _ in range(n)]
    if AVOID_OPEN_BUGS and 253 in types and 254 in types:
        types = [253 if t == 254 else t for t in types]      # open bug 1
    nh, pkt = final_nh, payload
    for t in reversed(types):
        if t == 50:                      # ESP: what follows is ciphertext
            pkt = pkt.under(b"\x00\x00\x10\x01" + b"\x00\x00\x00\x07")
        elif t == 44:
            mode = _pick(c, ("first", "atomic", "nonfirst", "last"))
            off = 0 if mode in ("first", "atomic") else _int(c, 1, 0x1FFF)
            more = 1 if mode in ("first", "nonfirst") else 0
            res = _int(c, 0, 3) if _rare(c, 8) else 0
            pkt = pkt.under(bytes([nh, 0]) + u16((off << 3) | (res << 1) | more)
                            + b"\xab\xcd\xef\x01")
        elif t == 51:
            ln = _any(c, _opt(c, (1, 4, 0, 2, 3, 7), ("any",)), 255)
            size = (ln + 2) * 4
            body = bytes([nh, ln, 0, 0]) + b"\x00\x00\x01\x00\x00\x00\x00\x01"
            pkt = pkt.under((body + bytes(max(0, size - len(body))))[:size], [(1, 1)])
        else:
            ln = _any(c, _opt(c, (0, 1, 2, 0, 3), ("any",)), 255)
            hdr = bytearray((ln + 1) * 8)
            hdr[0], hdr[1] = nh, ln
            if t == 43:
                hdr[2] = _any(c, _pick(c, (4, 2, 0, 3, 1, 5, 254, 255, "any")), 255)
                hdr[3] = _int(c, 0, 3)
            pkt = pkt.under(bytes(hdr), [(1, 1)])
        nh = t
    return nh, pkt


def ipv6(c, nh, payload):
    """An IPv6 header (and extension headers) around ``payload``."""
    first, body = ext_chain(c, nh, payload)
    odd = _opt(c, ("ok",), ("version", "plen", "plen", "plen"), k=8)
    version = 6 if odd != "version" else _pick(c, (4, 0, 7))
    plen = len(body)
    if odd == "plen":
        plen = _any(c, _pick(c, (0, plen - 1, plen + 8, 1, 0xFFFF, 8, "any")), 0xFFFF)
    elif _pick(c, (0,) * 15 + (1,)):
        plen = 0                                 # jumbogram / GSO (valid by DECISIONS)
    hdr = bytes([version << 4, 0, 0, 0]) + u16(plen) + bytes([first, 64]) + addr6(c) + addr6(c)
    return body.under(hdr, [(4, 2)])


def ip_packet(c, family, depth):
    """A complete IP packet of ``family`` (4 or 6) nesting ``depth``
    tunnels (fewer when a rare leaf cuts the stack short)."""
    if depth > 0 and not _rare(c, 10):
        proto, payload = tunnel(c, family, depth)
    else:
        proto, payload = leaf(c, family)
    return ipv4(c, proto, payload) if family == 4 else ipv6(c, proto, payload)


# -- transport leaves ------------------------------------------------------------

def _udp(c, sport, dport, payload):
    ulen = 8 + len(payload)
    if _rare(c, 10):
        ulen = _any(c, _pick(c, (0, 1, 7, 8, ulen - 1, ulen + 1, 0xFFFF, "any")), 0xFFFF)
    return payload.under(u16(sport) + u16(dport) + u16(ulen) + b"\x00\x00", [(4, 2)])


_PLAIN_PORTS = (51234, 53, 443, 123, 8080)
_ODD_PORTS = (TEREDO_PORT,) + TUNNEL_PORTS + ("any",)


def leaf(c, family):
    """(protocol, Pkt) of an upper layer that is not a tunnel."""
    kind = _pick(c, ("tcp", "udp", "icmp", "none", "tcp_short", "udp_fake6", "unknown",
                     "esp", "any", "icmp_quote", "dns", "dns", "ra"))
    if kind == "tcp":
        hdr = b"\xc0\x01\x01\xbb" + b"\x00\x00\x00\x01" * 2 + b"\x50\x18\x20\x00" + b"\x00" * 4
        return 6, Pkt(hdr + _bytes(c, 0, 12))
    if kind == "tcp_short":
        return 6, Pkt(_bytes(c, 0, 19))
    if kind == "udp":
        sport = _any(c, _opt(c, _PLAIN_PORTS, _ODD_PORTS), 0xFFFF)
        dport = _any(c, _opt(c, _PLAIN_PORTS, _ODD_PORTS), 0xFFFF)
        return 17, _udp(c, sport, dport, Pkt(_bytes(c, 0, 48)))
    if kind == "udp_fake6":
        # a UDP payload that starts like an IPv6 header but is no Teredo
        fake = bytes([0x60, 0, 0, 0]) + u16(_pick(c, (0, 8, 1000, 0xFFFF))) \
            + bytes([17, 64]) + addr6(c) + addr6(c) + _bytes(c, 0, 16)
        ports = _pick(c, ((51234, 53), (TEREDO_PORT, 51234), (51234, TEREDO_PORT),
                          (TEREDO_PORT, TEREDO_PORT), (4789, 51234), (51234, 2152)))
        return 17, _udp(c, ports[0], ports[1], Pkt(fake))
    if kind == "icmp":
        return ((1, Pkt(b"\x08\x00\x00\x00\x00\x01\x00\x01" + _bytes(c, 0, 8))) if family == 4
                else (58, Pkt(b"\x80\x00\x00\x00\x00\x01\x00\x01" + _bytes(c, 0, 8))))
    if kind == "icmp_quote":
        # an error message quoting a tunnel packet: never followed
        quoted = ip_packet(c, _pick(c, (4, 6)), 1).data[:_pick(c, (1500, 28, 48, 60))]
        t = 3 if family == 4 else 1
        return (1 if family == 4 else 58), Pkt(bytes([t, 0, 0, 0, 0, 0, 0, 0]) + quoted)
    if kind == "dns":
        return dns(c)
    if kind == "ra":
        if family == 6:
            return 58, router_advertisement(c)
        return 1, Pkt(b"\x00\x00\x00\x00\x00\x01\x00\x01")
    if kind == "none":
        return 59, Pkt(_bytes(c, 0, 8))
    if kind == "unknown":
        return _pick(c, (146, 200, 252, 255)), Pkt(_bytes(c, 0, 16))
    if kind == "esp":
        return 50, Pkt(b"\x00\x00\x10\x01\x00\x00\x00\x07" + _bytes(c, 0, 16))
    return _int(c, 0, 255), Pkt(_bytes(c, 0, 48))


# -- DNS answers and Router Advertisements (NAT64 / DNS64 evidence) -------------

_DNS_NAMES = ("ipv4only.arpa", "example.com", "www.example.com", "IPv4only.ARPA", "a")
_RFC6052 = {32: (4, 5, 6, 7), 40: (5, 6, 7, 9), 48: (6, 7, 9, 10), 56: (7, 9, 10, 11),
            64: (9, 10, 11, 12), 96: (12, 13, 14, 15)}
_NAT64_PREFIXES = (            # (first bytes, length)
    (bytes.fromhex("0064ff9b"), 96), (bytes.fromhex("0064ff9b0001"), 48),
    (bytes.fromhex("20010db80064"), 96), (bytes.fromhex("20010db812"), 40),
    (bytes.fromhex("20010db81220"), 48), (bytes.fromhex("20010db8122003"), 56),
    (bytes.fromhex("20010db812200344"), 64), (bytes.fromhex("20010db8"), 32))
_V4S = (bytes([192, 0, 0, 170]), bytes([192, 0, 0, 171]), bytes([198, 51, 100, 7]),
        bytes([203, 0, 113, 9]))
NSP_96 = (int.from_bytes(bytes.fromhex("20010db80064") + bytes(10), "big"), 96)
NSP_48 = (int.from_bytes(bytes.fromhex("20010db81220") + bytes(10), "big"), 48)


def _name(text):
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\x00"


def embed(c, v4):
    """An IPv6 address embedding ``v4`` after a NAT64 prefix (RFC 6052)."""
    prefix, length = _pick(c, _NAT64_PREFIXES)
    a = bytearray(prefix + _bytes(c, 16 - len(prefix), 16 - len(prefix)))
    a[8] = 0 if not _rare(c, 6) else 1          # the u octet (must be zero)
    for b, i in zip(v4, _RFC6052[length]):
        a[i] = b
    return bytes(a)


def dns_message(c):
    """A DNS response: question, then A / AAAA (native or synthesized) /
    CNAME answers, names compressed or not."""
    qname = _pick(c, _DNS_NAMES)
    v4 = _pick(c, _V4S)
    owner = b"\xc0\x0c" if _pick(c, (1, 0)) else _name(qname)
    answers = b""
    n = _pick(c, (1, 2, 3, 0, 5))
    for _ in range(n):
        kind = _pick(c, ("aaaa64", "a", "aaaa", "cname", "other"))
        if kind == "a":
            rr, data = 1, v4
        elif kind == "aaaa64":
            rr, data = 28, embed(c, v4 if not _rare(c, 4) else _pick(c, _V4S))
        elif kind == "aaaa":
            rr, data = 28, addr6(c)
        elif kind == "cname":
            target = _pick(c, _DNS_NAMES)
            rr, data = 5, _name(target)
        else:
            rr, data = 16, b"\x03abc"
        answers += owner + struct.pack("!HHIH", rr, 1, 300, len(data)) + data
        if kind == "cname":
            owner = _name(target)
    flags = _opt(c, (0x8180, 0x8183), (0x0100,))
    an = n if not _rare(c, 8) else _pick(c, (0, n + 1, 0xFFFF))
    return (b"\x12\x34" + struct.pack("!HHHHH", flags, 1, an, 0, 0) + _name(qname)
            + struct.pack("!HH", _pick(c, (28, 1, 5)), 1) + answers)


def dns(c):
    """(protocol, Pkt): a DNS response over UDP or TCP (port 53 on either side)."""
    msg = dns_message(c)
    ports = _pick(c, ((53, 50000), (50000, 53), (53, 53)))
    if _pick(c, (0, 0, 1)):
        body = struct.pack("!H", len(msg)) + msg
        if _pick(c, (0, 1)):
            second = dns_message(c)
            body += struct.pack("!H", len(second)) + second
        hdr = struct.pack("!HH", *ports) + b"\x00\x00\x00\x01" * 2 + b"\x50\x18\x20\x00" \
            + b"\x00" * 4
        return 6, Pkt(hdr + body)
    return 17, _udp(c, ports[0], ports[1], Pkt(msg))


def router_advertisement(c):
    """An ICMPv6 RA with options: PREF64 (every prefix length code), a
    source link-layer address, zero-length or cut options."""
    opts = b""
    for _ in range(_pick(c, (1, 2, 0, 3))):
        kind = _pick(c, ("pref64", "slla", "pref64", "zero", "odd_len"))
        if kind == "pref64":
            plc = _pick(c, (0, 1, 2, 3, 4, 5, 6, 7))
            prefix = _pick(c, _NAT64_PREFIXES)[0]
            opts += bytes([38, 2]) + struct.pack("!H", (600 << 3) | plc) \
                + (prefix + bytes(12))[:12]
        elif kind == "slla":
            opts += b"\x01\x01\x02\x00\x00\x00\x00\x01"
        elif kind == "zero":
            opts += b"\x26\x00"
        else:
            opts += b"\x26\x03" + bytes(6)
    return Pkt(b"\x86\x00\x00\x00\x40\x00\x07\x08" + bytes(8) + opts)


# -- tunnels -------------------------------------------------------------------

_TUNNELS = ("ip41", "ip4", "gre", "gtpu", "vxlan", "teredo", "geneve", "l2tp", "ayiya")
_UDP_TUNNEL_PORT = {"gtpu": 2152, "vxlan": 4789, "geneve": 6081, "l2tp": 1701, "ayiya": 5072}


def tunnel(c, family, depth):
    """(protocol, Pkt) of an encapsulation around a packet nesting
    ``depth - 1`` more tunnels."""
    kind = _pick(c, _TUNNELS)
    if kind == "teredo" and c.clean and family == 6:
        kind = "ip41"                    # Teredo is only looked for over IPv4
    inner_family = _pick(c, (6, 4))
    if kind == "ip41":
        return 41, ip_packet(c, 6, depth - 1)
    if kind == "ip4":
        return 4, ip_packet(c, 4, depth - 1)
    if kind == "gre":
        return 47, gre(c, depth)
    if kind == "teredo":
        return 17, teredo(c, depth)
    inner = ip_packet(c, inner_family, depth - 1)
    if kind == "gtpu":
        payload = gtpu(c, inner)
    elif kind == "vxlan":
        flags = _any(c, _opt(c, (0x08, 0x08, 0x0C, 0x88), (0x00, "any")), 255)
        payload = ethernet(c, inner, inner_family).under(bytes([flags, 0, 0, 0, 0, 0, 0x2a, 0]))
    elif kind == "geneve":
        optlen = _pick(c, (0, 1, 2, 63))
        ver = _opt(c, (0,), (1, 2, 3))
        proto = _opt(c, ("auto", "auto", 0x6558), (0x86DD, 0x0800, 0x1234))
        if proto == "auto":
            proto = 0x86DD if inner_family == 6 else 0x0800
        body = ethernet(c, inner, inner_family) if proto == 0x6558 else inner
        payload = body.under(bytes([(ver << 6) | optlen, 0]) + u16(proto) + b"\x00\x00\x2a\x00"
                             + bytes(optlen * 4))
    elif kind == "l2tp":
        payload = l2tp(c, inner, inner_family)
    else:
        payload = ayiya(c, inner, inner_family)
    return 17, _udp_ports(c, _UDP_TUNNEL_PORT[kind], payload)


def _udp_ports(c, port, payload):
    """UDP to/from a tunnel port: on dport, sport, both, or with another
    tunnel port (or Teredo's) on the other side."""
    where = _opt(c, ("dport", "sport", "both"), ("other_tunnel", "teredo_other", "any"))
    eph = 50000 + _int(c, 0, 15)
    if where == "dport":
        return _udp(c, eph, port, payload)
    if where == "sport":
        return _udp(c, port, eph, payload)
    if where == "both":
        return _udp(c, port, port, payload)
    if where == "other_tunnel":
        other = _pick(c, TUNNEL_PORTS)
        return _udp(c, *((other, port) if _pick(c, (0, 1)) else (port, other)), payload)
    if where == "teredo_other":
        return _udp(c, *((TEREDO_PORT, port) if _pick(c, (0, 1)) else (port, TEREDO_PORT)),
                    payload)
    return _udp(c, _int(c, 0, 0xFFFF), _int(c, 0, 0xFFFF), payload)


def gtpu(c, inner):
    """GTPv1-U: flags with / without E, S, PN; message types; extension
    header chains (also empty, too long, zero-length)."""
    flags = _any(c, _opt(c, (0x30, 0x30, 0x32, 0x34, 0x31, 0x36, 0x38, 0x37),
                         (0x20, 0x10, 0x50, "any")), 255)
    mtype = _any(c, _opt(c, (0xFF,), (0x01, 0x1A, "any"), k=8), 255)
    opt = b""
    if flags & 0x07:
        exts = []
        if flags & 0x04:
            exts = [_opt(c, (1, 2, 3), (0,)) for _ in range(_opt(c, (1, 0, 2, 3), (17,)))]
        nxt = _pick(c, (0x85, 0xC0, 0x01)) if exts else _opt(c, (0,), (0x85,))
        opt = b"\x00\x01\x00" + bytes([nxt])
        for i, units in enumerate(exts):
            e = bytearray(max(units * 4, 2))
            e[0] = units
            e[-1] = 0 if i == len(exts) - 1 else 0x85
            opt += bytes(e)
    body = inner.under(opt)
    hdr = bytes([flags, mtype]) + u16(len(body)) + b"\x00\x00\x00\x2a"
    return body.under(hdr, [(2, 2)])


def gre(c, depth):
    """GRE (versions 0 and 1, flags C/R/K/S/A) around an inner packet."""
    ver = _opt(c, (0, 0, 0, 1), (2, 7))
    if ver == 1:
        flags = _opt(c, (0x30, 0x20), (0x00, 0xB0))
        proto = _opt(c, (0x880B,), (0x86DD, 0x0800, 0x6558))
    else:
        flags = _opt(c, (0x00, 0x20, 0x80, 0x10, 0xB0, 0x30, 0xA0, 0x08), (0x40, 0x70, "any"))
        if flags == "any":
            flags = _int(c, 0, 255) & 0xF8
        proto = _opt(c, (0x86DD, 0x0800, 0x6558, 0x880B, 0x88BE, 0x22EB),
                     (0x8847, "any"))
        proto = _any(c, proto, 0xFFFF)
    inner_family = 6 if proto == 0x86DD else 4 if proto == 0x0800 else _pick(c, (6, 4))
    inner = ip_packet(c, inner_family, depth - 1)
    if proto in (0x6558, 0x88BE, 0x22EB):
        body = ethernet(c, inner, inner_family)
        if proto == 0x88BE and flags & 0x10:
            body = body.under(b"\x10\x00\x00\x2a\x00\x00\x00\x00")       # ERSPAN II header
        elif proto == 0x22EB:
            o = _pick(c, (0, 1))
            body = body.under(b"\x20\x00\x00\x2a" + bytes(7) + bytes([o]) + bytes(8 * o))
    elif proto == 0x880B:
        body = ppp_frame(c, inner, inner_family)
    else:
        body = inner
    b1 = ver
    if ver == 1:
        ack = _pick(c, (0, 0x80))
        b1 |= ack
        opt = u16(len(body) if not _rare(c, 5) else 0) + b"\x00\x07"
        if flags & 0x10:
            opt += b"\x00\x00\x00\x01"
        if ack:
            opt += b"\x00\x00\x00\x00"
    else:
        opt = b"\x00\x00\x00\x00" * bool(flags & 0x80) + b"\x00\x00\x00\x2a" * bool(flags & 0x20) \
            + b"\x00\x00\x00\x01" * bool(flags & 0x10)
    return body.under(bytes([flags, b1]) + u16(proto) + opt)


def teredo(c, depth):
    """UDP carrying Teredo (auth / origin indication / trailers), on or off
    port 3544 (the inner addresses are often in 2001::/32)."""
    inner = ip_packet(c, 6, depth - 1)
    if c.clean and inner.data[8:12] != b"\x20\x01\x00\x00":
        inner = Pkt(inner.data[:8] + b"\x20\x01\x00\x00" + inner.data[12:], inner.fields)
    pre = b""
    if _pick(c, (0, 0, 1)):
        idl, al = _pick(c, (0, 4, 13, 255)), _pick(c, (0, 8, 255))
        pre += b"\x00\x01" + bytes([idl, al]) + bytes(idl + al) + bytes(8) + b"\x00"
    if _pick(c, (0, 1, 1)):
        pre += b"\x00\x00\x12\x34\xc0\x00\x02\x01"
    trailer = _any(c, _pick(c, (b"", b"", b"\x01\x04" + bytes(8), b"\x03\x02\x00\x00", "any")), 0)
    if trailer == 0:
        trailer = _bytes(c, 1, 12)
    ports = _opt(c, ((51234, TEREDO_PORT), (TEREDO_PORT, 51234), (51234, 51235),
                     (TEREDO_PORT, TEREDO_PORT)), ((4789, TEREDO_PORT), (51234, 2152)))
    return _udp(c, ports[0], ports[1], inner.under(pre).then(trailer))


def l2tp(c, inner, family):
    bits = _any(c, _opt(c, (0x0002, 0x4002, 0x0802, 0x0202, 0x4A02), (0x8002, 0x0003, "any")),
                0xFFFF)
    hdr = u16(bits)
    if bits & 0x4000:
        hdr += u16(len(inner) + 16)
    hdr += b"\x00\x01\x00\x02"
    if bits & 0x0800:
        hdr += b"\x00\x00\x00\x00"
    if bits & 0x0200:
        pad = _opt(c, (0, 2), (300,))
        hdr += u16(pad) + bytes(min(pad, 8))
    return ppp_frame(c, inner, family).under(hdr)


def ayiya(c, inner, family):
    idlen = _pick(c, (4, 0, 1, 15))
    siglen = _pick(c, (5, 0, 1, 15))
    nh = _opt(c, ("auto",), (59, 17))
    if nh == "auto":
        nh = 41 if family == 6 else 4
    hdr = bytes([(idlen << 4) | 1, (siglen << 4) | 2, 0x11, nh]) + b"\x00\x00\x00\x01"
    hdr += bytes(min(1 << idlen, 64)) + bytes(4 * siglen)
    return inner.under(hdr)


# -- link layers ---------------------------------------------------------------

def ppp_frame(c, inner, family):
    """PPP: optional FF 03, protocol (2 bytes or compressed), packet."""
    proto = _opt(c, ("auto", "compressed"), (0xC021, "other_family", 0x8021, 0x8057, 0xC023,
                                               0x80FD, "compressed_other"))
    if proto == "auto":
        p = u16(0x0057 if family == 6 else 0x0021)
    elif proto == "compressed":
        p = bytes([0x57 if family == 6 else 0x21])
    elif proto == "other_family":
        p = u16(0x0021 if family == 6 else 0x0057)
    elif proto == "compressed_other":
        p = bytes([_pick(c, (0xFD, 0x01, 0x23))])      # odd, not IP
    else:
        p = u16(proto)
    ac = b"\xff\x03" if _pick(c, (1, 0)) else b""
    return inner.under(ac + p)


def l2_payload(c, inner, family):
    """(ethertype, Pkt): what follows an Ethernet/SLL type field: VLAN
    stacks (0..5 tags), PPPoE, MPLS, LLC/SNAP, TEB, or no IP at all."""
    et = {4: 0x0800, 6: 0x86DD}.get(family, 0x0806)
    pkt = inner
    if family is None:
        mode = "non_ip"
    else:
        if _rare(c, 25):
            et = _pick(c, (0x86DD, 0x0800))               # maybe the wrong one
        mode = _opt(c, ("plain",) * 6 + ("pppoe", "pppoe", "mpls", "teb"), ("non_ip",), k=12)
    if mode == "pppoe":
        code = _opt(c, (0,), (0x09, 0x65), k=10)
        vt = _opt(c, (0x11,), (0x10, 0x21), k=10)
        body = ppp_frame(c, pkt, family)
        if body.data[:2] == b"\xff\x03":                  # PPPoE has no address/control
            body = Pkt(body.data[2:], [(o - 2, k) for o, k in body.fields])
        pkt = body.under(bytes([vt, code]) + b"\x12\x34" + u16(len(body)), [(4, 2)])
        et = 0x8864
    elif mode == "mpls":
        labels = _pick(c, (1, 2, 3, 5, 8, 9))
        bottom = labels - 1 if not _rare(c, 8) else _pick(c, (0, -1))   # -1: no bottom bit
        hdr = b"".join(u32((1000 + i) << 12 | (i == bottom) << 8 | 64) for i in range(labels))
        if _rare(c, 6):
            hdr += b"\x00\x00\x00\x00"               # pseudowire control word
        pkt, et = pkt.under(hdr), _pick(c, (0x8847, 0x8848))
    elif mode == "non_ip":
        et = _any(c, _pick(c, (0x0806, 0x88CC, 0x8035, 0x86DE, 0x05DD, "any")), 0xFFFF)
        pkt = Pkt(_bytes(c, 0, 28))
    elif mode == "teb":
        pkt, et = ethernet(c, pkt, family), 0x6558
    llc = _opt(c, ("none",) * 8 + ("inner", "outer"), ("stp", "cdp"), k=12)
    if llc == "inner":
        pkt, et = pkt.under(b"\xaa\xaa\x03\x00\x00\x00" + u16(et)), min(len(pkt) + 8, 1500)
    tags = _pick(c, (0, 0, 0, 1, 2, 3, 4, 1, 2, 3, 5))
    for _ in range(tags):
        pkt, et = pkt.under(b"\x20\x2a" + u16(et)), _pick(c, (0x8100, 0x88A8, 0x9100))
    if llc == "outer":
        pkt, et = pkt.under(b"\xaa\xaa\x03\x00\x00\x00" + u16(et)), min(len(pkt) + 8, 1500)
    elif llc == "stp":
        pkt, et = Pkt(b"\x42\x42\x03" + _bytes(c, 0, 35)), 38
    elif llc == "cdp":                               # SNAP, Cisco OUI, a PID that is no IP
        pkt, et = Pkt(b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + _bytes(c, 0, 40)), 48
    return et, pkt


def ethernet(c, inner, family):
    et, pkt = l2_payload(c, inner, family)
    return pkt.under(b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02" + u16(et))


_NULL_AF = {4: (2,), 6: (10, 24, 28, 30)}


def link(c, linktype, ip, family):
    """``ip`` (an IP packet of ``family``, or None: not IP) behind a
    ``linktype`` header."""
    if linktype == 1:
        return ethernet(c, ip, family)
    if linktype in (12, 14, 101, 228, 229):
        return ip
    if linktype == 113:
        et, pkt = l2_payload(c, ip, family)
        return pkt.under(b"\x00\x00\x00\x01\x00\x06" + b"\x02\x00\x00\x00\x00\x01\x00\x00" + u16(et))
    if linktype == 276:
        et, pkt = l2_payload(c, ip, family)
        return pkt.under(u16(et) + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06"
                         + b"\x02\x00\x00\x00\x00\x01\x00\x00")
    if linktype in (0, 108):
        af = _any(c, _opt(c, _NULL_AF.get(family, (2,)), (7, "any")), 0xFFFFFFFF)
        order = "big" if linktype == 108 or _pick(c, (0, 1)) else "little"
        return ip.under(af.to_bytes(4, order))
    if linktype in (9, 50):
        return ppp_frame(c, ip, family)
    if linktype == 104:
        et, pkt = l2_payload(c, ip, family)
        return pkt.under(b"\x0f\x00" + u16(et))
    if linktype == 107:
        mode = _pick(c, ("nlpid", "pad", "snap", "cisco"))
        if mode == "cisco":
            et, pkt = l2_payload(c, ip, family)
            return pkt.under(b"\x18\x41" + u16(et))
        if mode == "snap":
            et, pkt = l2_payload(c, ip, family)
            return pkt.under(b"\x18\x41\x03\x00\x80\x00\x00\x00" + u16(et))
        nlpid = 0xCC if family == 4 else 0x8E
        return ip.under(b"\x18\x41\x03" + (b"\x00" if mode == "pad" else b"") + bytes([nlpid]))
    if linktype in (105, 127):
        et = 0x86DD if family == 6 else 0x0800
        fc0 = _opt(c, (0x08, 0x88), (0xC8, 0x48, 0x00, 0x80))
        fc1 = _opt(c, (0x01, 0x02, 0x03, 0x00, 0x83, 0x82), (0x41,))
        hlen = 24 + (6 if fc1 & 3 == 3 else 0) + ((2 + (4 if fc1 & 0x80 else 0)) if fc0 & 0x80 else 0)
        pkt = ip.under(bytes([fc0, fc1]) + bytes(hlen - 2) + b"\xaa\xaa\x03\x00\x00\x00" + u16(et))
        if linktype == 127:
            rlen = _opt(c, (8, 12, 100), (0, 4))
            pkt = pkt.under(b"\x00\x00" + struct.pack("<H", rlen) + b"\x00\x00\x00\x00"
                            + bytes(max(0, rlen - 8)), [(2, 2)])
        return pkt
    return ip.under(_bytes(c, 0, 16))            # unsupported link types


# -- frames, mutations, garbage (builders over a chooser) ------------------------

_LINKTYPE_MIX = (1, 1, 1, 1, 101, 12, 14, 228, 229, 113, 276, 1, 101, 0, 108, 9, 50, 104,
                 105, 107, 127, 147)
_DEPTHS = (0, 1, 1, 2, 2, 3, 1, 4, 5, 8, 9, 10)


def build_ip(c, family=None, depths=_DEPTHS):
    """An IP packet nesting one of ``depths`` tunnels."""
    return ip_packet(c, family or _pick(c, (6, 4)), _pick(c, depths))


def build_frame(c, linktypes=_LINKTYPE_MIX, depths=_DEPTHS):
    """(linktype, Pkt) of a frame built layer by layer."""
    lt = _pick(c, linktypes)
    if lt == 228:
        family = 4 if not _rare(c, 10) else 6
    elif lt == 229:
        family = 6 if not _rare(c, 10) else 4
    else:
        family = _pick(c, (6, 4, 6, 4, 6, 4, 6, 4, 6, 4, None))
    if family is None:                   # not IP at all
        return lt, link(c, lt, Pkt(_bytes(c, 0, 40)), None)
    return lt, link(c, lt, build_ip(c, family, depths), family)


def whole(c, lt, pkt):
    """An uncut Row (wire length sometimes larger than the bytes)."""
    wire = len(pkt)
    if _rare(c, 10):
        wire += _pick(c, (1, 4, 1000))
    return Row(lt, pkt.data, wire)


def _set_field(data, off, size, value):
    if size == 0:
        return data[:off] + bytes([(data[off] & 0xF0) | (value & 0x0F)]) + data[off + 1:]
    return data[:off] + value.to_bytes(size, "big") + data[off + size:]


def mutate(c, lt, pkt):
    """1..3 mutations: a snap-length cut (caplen < wirelen), byte flips,
    length fields set to 0 / 1 / all ones / a random value."""
    data, fields = bytearray(pkt.data), pkt.fields
    cut = None
    for _ in range(_pick(c, (1, 1, 2, 3))):
        what = _pick(c, ("cut", "field", "flip", "flip", "field"))
        if what == "field" and fields:
            off, size = _pick(c, fields)
            top = {0: 0xF, 1: 0xFF, 2: 0xFFFF}[size]
            v = _pick(c, (0, 1, top, "any"))
            if v == "any":
                v = _int(c, 0, top)
            data = bytearray(_set_field(bytes(data), off, size, v))
        elif what == "flip" and data:
            for _ in range(_pick(c, (1, 2, 4))):
                i = _int(c, 0, len(data) - 1)
                v = _pick(c, (0x00, 0xFF, 0x60, 0x45, 0x11, 0x29, 0x2C, 0x3B, 0xFD, 0xFE,
                              "bit", "any"))
                if v == "bit":
                    v = data[i] ^ (1 << _int(c, 0, 7))
                elif v == "any":
                    v = _int(c, 0, 255)
                data[i] = v
        else:
            at = _int(c, 0, len(data))
            cut = at if cut is None else min(cut, at)
    data = bytes(data)
    if cut is not None:
        return Row(lt, data[:cut], len(data), data[cut:])
    return Row(lt, data, len(data))


def build_garbage(c, linktypes=SUPPORTED_LINKTYPES + UNSUPPORTED_LINKTYPES):
    """Random bytes behind a (usually) valid link header of any link type."""
    lt = _pick(c, linktypes)
    body = _bytes(c, 0, 80)
    if body and _pick(c, (0, 1)):
        body = bytes([_pick(c, (0x60, 0x45, 0x4F, 0x6F))]) + body[1:]
    if _pick(c, (0, 1)):
        data = body
    else:
        data = link(c, lt, Pkt(body), _pick(c, (6, 4, None))).data
    return Row(lt, data, len(data) + _pick(c, (0, 0, 1, 100)))


def build_row(c, linktypes=_LINKTYPE_MIX, depths=_DEPTHS):
    """A frame as built, a mutated frame, or garbage."""
    kind = _pick(c, ("whole", "mutated", "whole", "mutated", "garbage"))
    if kind == "garbage":
        return build_garbage(c)
    lt, pkt = build_frame(c, linktypes, depths)
    return whole(c, lt, pkt) if kind == "whole" else mutate(c, lt, pkt)


# -- public strategies ---------------------------------------------------------------

def _chooser(draw, clean=None):
    # unless told, a third of the frames are clean: no rare anomaly
    # anywhere, so that deep tunnel stacks survive to their innermost packet
    if clean is None:
        clean = draw(_cached("clean", lambda: st.integers(0, 2))) == 2
    return HypChooser(draw, clean=clean)


@st.composite
def ip_packets(draw, family=None, depths=_DEPTHS, clean=None):
    """One IP packet (Pkt), no link layer."""
    return build_ip(_chooser(draw, clean), family, depths)


@st.composite
def frames(draw, linktypes=_LINKTYPE_MIX, depths=_DEPTHS, clean=None):
    """A complete, uncut frame as a Row."""
    c = _chooser(draw, clean)
    return whole(c, *build_frame(c, linktypes, depths))


@st.composite
def mutated(draw, linktypes=_LINKTYPE_MIX, depths=_DEPTHS):
    """A built frame after 1..3 mutations (cut / flips / length fields)."""
    c = _chooser(draw)
    return mutate(c, *build_frame(c, linktypes, depths))


@st.composite
def garbage(draw, linktypes=SUPPORTED_LINKTYPES + UNSUPPORTED_LINKTYPES):
    return build_garbage(HypChooser(draw), linktypes)


@st.composite
def rows(draw, linktypes=_LINKTYPE_MIX, depths=_DEPTHS):
    """Whole frames, mutated frames and garbage (2 : 2 : 1)."""
    return build_row(_chooser(draw), linktypes, depths)


def random_rows(rng, n, linktypes=_LINKTYPE_MIX, depths=_DEPTHS):
    """``n`` rows from ``random.Random`` (for bulk hunting outside hypothesis)."""
    return [build_row(RandomChooser(rng, clean=rng.randint(0, 2) == 2), linktypes, depths)
            for _ in range(n)]


def options(caps=False):
    """DecodeOptions: 6rd prefixes (none, a /28, a /72 past the kernel's
    64-bit fast path, both, short ones) and tunnel caps around the edges;
    with ``caps`` also the chain and layer caps."""
    prefixes = st.sampled_from(((SIXRD_28,), (), (SIXRD_72,), (SIXRD_28, SIXRD_72), (SIXRD_64,),
                                (parse_prefix("2a00::/8"),), (parse_prefix("::/0"),)))
    depth = st.sampled_from((8, 1, 2, 0, 3, 4, 9, 16))
    if not caps:
        return st.builds(lambda p, d: DecodeOptions(sixrd_prefixes=p, max_tunnel_depth=d),
                         prefixes, depth)
    return st.builds(lambda p, d, c, l: DecodeOptions(sixrd_prefixes=p, max_tunnel_depth=d,
                                                      max_chain=c, max_layers=l),
                     prefixes, depth, st.sampled_from((64, 0, 1, 2, 3, 5, 7, 8, 9, -1)),
                     st.sampled_from((64, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 16, 62, 63, 100)))


def pack_batch(rows, order=None, gaps=None):
    """Rows into one Batch. ``order``: the order rows are laid out in the
    buffer; ``gaps[k]``: filler before the k-th row laid out. A cut row's
    tail (the bytes its snap length dropped) follows it, except for the
    last row laid out, which ends the buffer."""
    n = len(rows)
    order = list(range(n)) if order is None else list(order)
    gaps = gaps or [b""] * n
    buf = bytearray()
    offsets = np.zeros(n, dtype=np.int64)
    for k, i in enumerate(order):
        buf += gaps[k]
        offsets[i] = len(buf)
        buf += rows[i].data
        if k != n - 1:
            buf += rows[i].tail
    return Batch(bytes(buf), offsets,
                 np.array([len(r.data) for r in rows], dtype=np.int64),
                 np.array([r.wirelen for r in rows], dtype=np.int64),
                 np.arange(n, dtype=np.float64) * 0.5 + 1.7e9,
                 np.array([r.linktype for r in rows], dtype=np.int32))


_GAPS = (b"", b"\x60", b"\x45\x00", b"\xff" * 8, b"\x00" * 3, b"\x86\xdd", b"\x08\x00")


def random_layout(c, n):
    order = list(range(n))
    if _pick(c, (0, 1)):
        for i in range(n - 1, 0, -1):            # Fisher-Yates from the chooser
            j = _int(c, 0, i)
            order[i], order[j] = order[j], order[i]
    return order, [_pick(c, _GAPS) for _ in range(n)]


@st.composite
def batches(draw, row_strategy=None, max_rows=50):
    """(Batch, rows): 1..max_rows rows laid out in a random order with
    random gaps, one of them ending the buffer."""
    rs = draw(st.lists(row_strategy if row_strategy is not None else rows(),
                       min_size=1, max_size=max_rows))
    order, gaps = random_layout(HypChooser(draw), len(rs))
    if AVOID_OPEN_BUGS and not any(gaps) and not any(r.data for r in rs):
        gaps[0] = b"\x00"               # open bug 2: an empty buffer crashes the kernel
    return pack_batch(rs, order, gaps), rs
