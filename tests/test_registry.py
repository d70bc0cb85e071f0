"""The protocol registry (ipv6flow/decode/registry.py) against both decoders.

Every dispatch entry of the registry -- link types, ethertypes, the
protocols inside GRE, IP protocols, UDP tunnel ports, extension headers,
transport names -- gets a frame built here, field by field with struct
(not with the registry's layouts, so a wrong offset there shows), and:

* the reference decoder must decode it as the entry says (next header,
  tunnel kind, payload family, no decode problem);
* the numpy kernel must either decode it itself with the same FrameKey
  (entry marked ``KERNEL``) or hand the row to the reference decoder
  (entry marked ``REFERENCE``), as the entry says.

An entry whose kind of frame has no builder here fails, so adding an entry
means adding its frame. And every tunnel kind of the report must come out
of some frame built here: removing an entry (or a decoder's handling of
it) fails the walk.
"""

import struct

import numpy as np
import pytest

from ipv6flow.capture.batch import Batch
from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix, registry
from ipv6flow.decode.frame import frame_key
from ipv6flow.decode.registry import KERNEL, REFERENCE
from ipv6flow.fast.kernel import classify, unpack

OPTS = DecodeOptions(sixrd_prefixes=(parse_prefix("2001:db8:6000::/40"),))
SRC6 = bytes.fromhex("2a001450000000000000000000000001")
DST6 = bytes.fromhex("2a001450000000000000000000000002")
SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
MAC = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")

# Tunnel kinds seen by the walk (filled as the tests run; checked last).
SEEN_KINDS = set()


# -- builders: plain struct code from the RFCs --------------------------------

def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport=40000, dport=443):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def ipv6(nh, payload, src=SRC6, dst=DST6):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + src + dst + payload


def ipv4(proto, payload, src=SRC4, dst=DST4):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                       src, dst) + payload


def inner6():
    """The packet most entries carry: IPv6 with a UDP datagram."""
    return ipv6(17, udp(40000, 53, b"\x00" * 12))


def inner4():
    return ipv4(17, udp(40000, 53, b"\x00" * 12))


def eth(ethertype, payload):
    return MAC + struct.pack("!H", ethertype) + payload


def ppp_ipv6():
    return b"\xff\x03" + struct.pack("!H", 0x0057) + inner6()


# What follows a link-layer type field, by the reference parser's token:
# (bytes, payload family the frame must decode to).
AFTER_TOKEN = {
    "ipv4": lambda: (inner4(), "ipv4"),
    "ipv6": lambda: (inner6(), "ipv6"),
    "vlan": lambda: (struct.pack("!HH", 100, 0x86DD) + inner6(), "ipv6"),
    "mpls": lambda: (struct.pack("!I", (16 << 12) | (1 << 8) | 64) + inner6(), "ipv6"),
    "pppoe": lambda: (struct.pack("!BBHH", 0x11, 0, 1, 2 + len(inner6()))
                      + struct.pack("!H", 0x0057) + inner6(), "ipv6"),
    "eth": lambda: (eth(0x86DD, inner6()), "ipv6"),
}

# A frame of each link type's first parser.
LINK_FRAMES = {
    "eth": lambda: (eth(0x86DD, inner6()), "ipv6"),
    "raw": lambda: (inner6(), "ipv6"),
    "raw_ipv4": lambda: (inner4(), "ipv4"),
    "raw_ipv6": lambda: (inner6(), "ipv6"),
    "sll": lambda: (struct.pack("!HHH8sH", 0, 1, 6, MAC[:6] + b"\x00\x00", 0x86DD) + inner6(),
                    "ipv6"),
    "sll2": lambda: (struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, MAC[:6] + b"\x00\x00")
                     + inner6(), "ipv6"),
    "null": lambda: (struct.pack("<I", 2) + inner4(), "ipv4"),
    "loop": lambda: (struct.pack("!I", 2) + inner4(), "ipv4"),
    "ppp": lambda: (ppp_ipv6(), "ipv6"),
    "chdlc": lambda: (struct.pack("!BBH", 0x0F, 0, 0x86DD) + inner6(), "ipv6"),
    "frame_relay": lambda: (b"\x18\x41\x03\x8e" + inner6(), "ipv6"),
    "ieee80211": lambda: (_dot11() + inner6(), "ipv6"),
    "radiotap": lambda: (struct.pack("<BBHI", 0, 0, 8, 0) + _dot11() + inner6(), "ipv6"),
    "mpls": lambda: (struct.pack("!I", (16 << 12) | (1 << 8) | 64) + inner6(), "ipv6"),
}


def _dot11():
    """An 802.11 data frame header (FromDS) and LLC/SNAP with IPv6."""
    return (struct.pack("<BBH", 0x08, 0x02, 0) + MAC + MAC[:6] + b"\x00\x00"
            + b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", 0x86DD))


# A GRE packet of each inner protocol token (the GRE header included).
GRE_FRAMES = {
    "ipv6": lambda et: (struct.pack("!BBH", 0, 0, et) + inner6(), "ipv6"),
    "ipv4": lambda et: (struct.pack("!BBH", 0, 0, et) + inner4(), "ipv4"),
    "eth": lambda et: (struct.pack("!BBH", 0, 0, et) + eth(0x86DD, inner6()), "ipv6"),
    # enhanced GRE (PPTP): K bit, version 1, payload length, call id
    "ppp": lambda et: (struct.pack("!BBHHH", 0x20, 0x01, et, len(ppp_ipv6()), 7) + ppp_ipv6(),
                       "ipv6"),
    # ERSPAN type II: sequence number, then an 8-byte ERSPAN header
    "erspan2": lambda et: (struct.pack("!BBHI", 0x10, 0, et, 1) + struct.pack("!II", 1 << 28, 0)
                           + eth(0x86DD, inner6()), "ipv6"),
    # ERSPAN type III: a 12-byte header, no optional subheader
    "erspan3": lambda et: (struct.pack("!BBH", 0, 0, et) + struct.pack("!III", 2 << 28, 0, 0)
                           + eth(0x86DD, inner6()), "ipv6"),
}

# A UDP payload of each tunnel kind.
UDP_TUNNEL_PAYLOADS = {
    "gtpu": lambda: struct.pack("!BBHI", 0x30, 0xFF, len(inner6()), 1) + inner6(),
    "vxlan": lambda: struct.pack("!II", 0x08 << 24, 42 << 8) + eth(0x86DD, inner6()),
    "geneve": lambda: struct.pack("!BBHI", 0, 0, 0x86DD, 42 << 8) + inner6(),
    "l2tp": lambda: struct.pack("!HHH", 0x0002, 1, 1) + ppp_ipv6(),
    # AYIYA: identity 2**0 bytes, no signature, next header 41, epoch
    "ayiya": lambda: struct.pack("!BBBBI", 0x01, 0x00, 0x00, 41, 0) + b"\x01" + inner6(),
}

# A packet (after the IP header) of each IP protocol's token: (bytes,
# payload family, tunnel kind over IPv4, over IPv6); None: the registry's.
PROTOCOL_PAYLOADS = {
    "ipv6": lambda: (inner6(), "ipv6"),
    "ipv4": lambda: (inner4(), "ipv4"),
    "gre": lambda: (GRE_FRAMES["ipv6"](0x86DD)[0], "ipv6"),
    "udp": lambda: (udp(40000, 53, b"\x00" * 12), None),
}
PROTOCOL_KIND = {"gre": "gre"}          # tokens whose kind is not the entry's kind4/kind6


def one(linktype, data):
    """(reference Frame, kernel's FrameKey or None when it fell back)."""
    batch = Batch(data, np.array([0], dtype=np.int64), np.array([len(data)], dtype=np.int64),
                  np.array([len(data)], dtype=np.int64), np.array([1.7e9]),
                  np.array([linktype], dtype=np.int32))
    keys, fallback, _ = classify(batch, OPTS)
    return decode_frame(linktype, data, len(data), OPTS), (None if len(fallback) else
                                                           unpack(keys[0]))


def check(entry_kernel, linktype, data, payload, tunnel=None, what=""):
    f, fast = one(linktype, data)
    assert f.problem is None, f"{what}: the reference decoder failed: {f.problem}"
    assert f.payload == payload, f"{what}: reference payload {f.payload}, want {payload}"
    if tunnel is not None:
        assert f.tunnel == tunnel, f"{what}: reference tunnel {f.tunnel}, want {tunnel}"
    SEEN_KINDS.update(f.tunnels)
    if entry_kernel == KERNEL:
        assert fast is not None, f"{what}: the registry gives it to the kernel, which fell back"
        assert fast == frame_key(f), f"{what}: kernel {fast} != reference {frame_key(f)}"
    else:
        assert entry_kernel == REFERENCE, f"{what}: unknown decoder {entry_kernel!r}"
        assert fast is None, f"{what}: the registry routes it to the reference decoder, " \
                             "but the kernel decoded it"
    return f


@pytest.mark.parametrize("lt", sorted(registry.LINKTYPES))
def test_linktype(lt):
    entry = registry.LINKTYPES[lt]
    assert entry.token in LINK_FRAMES, f"no frame for link type {lt} ({entry.token}): add one"
    data, fam = LINK_FRAMES[entry.token]()
    check(entry.kernel, lt, data, fam, "none", f"link type {lt}")


@pytest.mark.parametrize("et", sorted(registry.ETHERTYPES))
def test_ethertype(et):
    entry = registry.ETHERTYPES[et]
    assert entry.token in AFTER_TOKEN, f"no frame for ethertype {et:#06x} ({entry.token})"
    rest, fam = AFTER_TOKEN[entry.token]()
    check(entry.kernel, registry.LINKTYPE_ETHERNET, eth(et, rest), fam, "none",
          f"ethertype {et:#06x}")


def test_ethertype_not_in_registry_is_not_ip():
    for et in (registry.ETHERTYPE_ARP, 0x88CC, 0x1234):
        assert et not in registry.ETHERTYPES
        check(KERNEL, registry.LINKTYPE_ETHERNET, eth(et, inner6()), "non_ip", "none",
              f"ethertype {et:#06x}")


@pytest.mark.parametrize("et", sorted(registry.GRE_PROTOCOLS))
def test_gre_protocol(et):
    entry = registry.GRE_PROTOCOLS[et]
    assert entry.token in GRE_FRAMES, f"no GRE frame for protocol {et:#06x} ({entry.token})"
    gre, fam = GRE_FRAMES[entry.token](et)
    data = eth(0x0800, ipv4(registry.IPPROTO_GRE, gre))
    check(entry.kernel, registry.LINKTYPE_ETHERNET, data, fam, "gre", f"GRE protocol {et:#06x}")


@pytest.mark.parametrize("outer", ["ipv4", "ipv6"])
@pytest.mark.parametrize("proto", sorted(registry.IP_PROTOCOLS))
def test_ip_protocol(proto, outer):
    entry = registry.IP_PROTOCOLS[proto]
    assert entry.token in PROTOCOL_PAYLOADS, f"no packet for IP protocol {proto} ({entry.token})"
    body, fam = PROTOCOL_PAYLOADS[entry.token]()
    packet = ipv4(proto, body) if outer == "ipv4" else ipv6(proto, body)
    kind = PROTOCOL_KIND.get(entry.token, entry.kind4 if outer == "ipv4" else entry.kind6)
    check(entry.kernel, registry.LINKTYPE_ETHERNET,
          eth(0x0800 if outer == "ipv4" else 0x86DD, packet), fam or outer, kind or "none",
          f"IP protocol {proto} over {outer}")


@pytest.mark.parametrize("side", ["dport", "sport"])
@pytest.mark.parametrize("port", sorted(registry.UDP_TUNNELS))
def test_udp_tunnel(port, side):
    entry = registry.UDP_TUNNELS[port]
    assert entry.kind in registry.TUNNEL_KINDS, f"port {port}: {entry.kind} is no tunnel kind"
    assert entry.kind in UDP_TUNNEL_PAYLOADS, f"no payload for UDP tunnel {entry.kind}: add one"
    payload = UDP_TUNNEL_PAYLOADS[entry.kind]()
    dgram = udp(40000, port, payload) if side == "dport" else udp(port, 40000, payload)
    for outer in (ipv4(17, dgram), ipv6(17, dgram)):
        check(entry.kernel, registry.LINKTYPE_ETHERNET, eth(0x86DD if outer[0] >> 4 == 6 else 0x0800,
                                                            outer),
              "ipv6", entry.kind, f"UDP port {port} ({entry.kind}, {side})")


def test_udp_tunnel_port_with_other_payload_is_plain_udp():
    """A datagram on a tunnel port whose header does not validate is plain
    UDP for both decoders (or left to the reference by the kernel)."""
    for port, entry in registry.UDP_TUNNELS.items():
        data = eth(0x0800, ipv4(17, udp(40000, port, b"\xff" * 4)))
        f, fast = one(registry.LINKTYPE_ETHERNET, data)
        assert (f.payload, f.tunnel, f.problem) == ("ipv4", "none", None), port
        assert fast is None or fast == frame_key(f), port


@pytest.mark.parametrize("nh", sorted(registry.EXT_NAMES))
def test_extension_header(nh):
    name = registry.EXT_NAMES[nh]
    body = udp(40000, 53, b"\x00" * 12)
    if nh == registry.IPPROTO_FRAGMENT:
        ext = struct.pack("!BBHI", 17, 0, 1, 7)          # offset 0, M=1: a first fragment
    elif nh == registry.IPPROTO_AH:
        ext = struct.pack("!BBHII", 17, 2, 0, 1, 1) + b"\x00" * 4   # (2 + 2) * 4 bytes
    elif nh == registry.IPPROTO_ESP:
        ext, body = struct.pack("!II", 1, 1), b"\x00" * 16
    elif nh == registry.IPPROTO_ROUTING:
        ext = struct.pack("!BBBB", 17, 0, 4, 0) + b"\x00" * 4       # segment routing, type 4
    else:
        ext = struct.pack("!BB", 17, 0) + b"\x00" * 6
    f = check(KERNEL, registry.LINKTYPE_RAW_IP, ipv6(nh, ext + body), "ipv6", "none",
              f"extension header {nh} ({name})")
    assert f.ext_types == {name} and f.chain_len == 1


@pytest.mark.parametrize("fam", ["ipv4", "ipv6"])
def test_transport_names(fam):
    for proto, name in list(registry.TRANSPORT[fam].items()) + [(132, "other")]:
        assert name in registry.TRANSPORT_KEYS[fam]
        body = {registry.IPPROTO_TCP: tcp(), registry.IPPROTO_UDP: udp(1, 2)}.get(
            proto, b"\x80\x00\x00\x00" if proto != registry.IPPROTO_NONE else b"")
        packet = ipv4(proto, body) if fam == "ipv4" else ipv6(proto, body)
        f = check(KERNEL, registry.LINKTYPE_RAW_IP, packet, fam, "none",
                  f"{fam} protocol {proto}")
        assert frame_key(f).transport == name


def test_address_patterns_name_their_tunnels():
    """6to4, ISATAP and 6rd (protocol 41 by inner address) and Teredo (UDP
    by inner address, and by port) from the registry's patterns."""
    six = bytes.fromhex("2002c0000201") + bytes(10)
    isatap = bytes.fromhex("2a001450000000000200" "5efe") + SRC4
    rd = bytes.fromhex("20010db86000") + bytes(10)
    teredo = struct.pack("!I", registry.TEREDO_HI32) + bytes(12)
    for addr, kind in ((six, "6to4"), (isatap, "isatap"), (rd, "6rd"), (SRC6, "6in4")):
        data = eth(0x0800, ipv4(41, ipv6(17, udp(1, 2), src=addr)))
        check(KERNEL, registry.LINKTYPE_ETHERNET, data, "ipv6", kind, kind)
    for sport, addr in ((40000, teredo), (registry.UDP_PORT_TEREDO, SRC6)):
        data = eth(0x0800, ipv4(17, udp(sport, 50000, ipv6(59, b"", src=addr))))
        check(KERNEL, registry.LINKTYPE_ETHERNET, data, "ipv6", "teredo", "teredo")
    assert registry.is_isatap_iid(0x02005EFE) and registry.is_isatap_iid(0x00005EFE)
    assert not registry.is_isatap_iid(0x00015EFE)


def test_every_tunnel_kind_is_reached():
    """Run last (file order): every kind of the report came out of a frame
    built from the registry above, so no entry (nor its decoder) is missing."""
    if len(SEEN_KINDS) < 3:
        pytest.skip("run with the rest of this file")
    missing = set(registry.TUNNEL_KINDS) - {"none"} - SEEN_KINDS
    assert not missing, f"tunnel kinds no registry entry produced: {sorted(missing)}"


def test_kernel_tables_come_from_the_registry():
    """The kernel's lookup tables say what the registry says, entry by entry
    (the compiled classifier takes the same tables)."""
    from ipv6flow.fast import kernel as k
    for et, e in registry.ETHERTYPES.items():
        want = {"ipv4": k.T_IPV4, "ipv6": k.T_IPV6}.get(e.token, k.T_FALLBACK)
        assert k.ET_TOKEN[et] == (want if e.kernel == KERNEL else k.T_FALLBACK), hex(et)
        assert k.IS_VLAN[et] == (e.token == "vlan")
    assert sorted(np.flatnonzero(k.IS_TUNNEL_PORT).tolist()) == sorted(registry.UDP_TUNNELS)
    for proto, e in registry.IP_PROTOCOLS.items():
        assert k.PROTO_TOKEN[proto] == k.TOKENS[e.token]
    assert {nh for nh in range(256) if k.EXT_BIT[nh]} == set(registry.EXT_NAMES)
    assert {nh: int(k.UL_MIN[nh]) for nh in range(256) if k.UL_MIN[nh] != 1} \
        == registry.UPPER_LAYER_MIN
    assert sum(k.UNKNOWN_NH) == 256 - sum(registry.is_known_protocol(nh) for nh in range(256))
