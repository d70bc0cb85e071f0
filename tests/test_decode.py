"""Golden frames per decoder, and truncation at every byte offset.

Frames are built with scapy (an independent encoder) or written as hex
where scapy cannot build them; each test asserts what REPORT.md says the
frame counts as.
"""

import pytest
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.contrib.mpls import MPLS
from scapy.layers.vxlan import VXLAN

from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix
from ipv6flow.decode.addresses import address_class

import ipaddress

ETH = 1
A6, B6 = "2a00:1450::1", "2600:1f18::2"
A4, B4 = "198.51.100.1", "203.0.113.2"


def dec(pkt, linktype=ETH, **kw):
    raw = bytes(pkt)
    return decode_frame(linktype, raw, len(raw), DecodeOptions(**kw))


def views(f):
    return (f.carrier, f.payload, f.tunnel)


def test_native_ipv6_tcp():
    f = dec(Ether() / IPv6(src=A6, dst=B6) / TCP())
    assert views(f) == ("ipv6", "ipv6", "none")
    assert f.proto == 6 and f.chain_len == 0 and not f.ext_types and f.problem is None


def test_ipv4_udp_and_arp():
    assert views(dec(Ether() / IP(src=A4, dst=B4) / UDP(dport=53))) == ("ipv4", "ipv4", "none")
    f = dec(Ether() / ARP())
    assert views(f) == ("non_ip", "non_ip", "none") and f.problem is None


def test_vlan_qinq_mpls_pppoe():
    assert views(dec(Ether() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IPv6(src=A6, dst=B6) / UDP())) \
        == ("ipv6", "ipv6", "none")
    assert views(dec(Ether() / MPLS(s=0) / MPLS(s=1) / IPv6(src=A6, dst=B6) / UDP())) \
        == ("ipv6", "ipv6", "none")
    assert views(dec(Ether(type=0x8864) / PPPoE() / PPP(proto=0x0057) / IPv6() / UDP())) \
        == ("ipv6", "ipv6", "none")


@pytest.mark.parametrize("inner_src,inner_dst,kind", [
    (A6, B6, "6in4"),
    ("2002:c633:6401::1", B6, "6to4"),
    ("fe80::5efe:c633:6401", B6, "isatap"),
    ("2a00:1450::200:5efe:c633:6401", B6, "isatap"),
    ("2a01:e35:8000::1", B6, "6rd"),
])
def test_proto41_kinds(inner_src, inner_dst, kind):
    f = dec(Ether() / IP(src=A4, dst=B4) / IPv6(src=inner_src, dst=inner_dst) / TCP(),
            sixrd_prefixes=(parse_prefix("2a01:e30::/28"),))
    assert views(f) == ("ipv4", "ipv6", kind)


def test_teredo_by_port_and_by_prefix_and_not_by_nibble():
    inner = IPv6(src="2001:0:4136:e378::1", dst=B6) / ICMPv6EchoRequest()
    f = dec(Ether() / IP() / UDP(sport=3544, dport=40000) / inner)
    assert views(f) == ("ipv4", "ipv6", "teredo")
    f = dec(Ether() / IP() / UDP(sport=50000, dport=40000) / inner)
    assert f.tunnel == "teredo"
    # not 2001::/32, not port 3544: just UDP
    f = dec(Ether() / IP() / UDP(sport=50000, dport=40000) / IPv6(src=A6, dst=B6) / UDP())
    assert views(f) == ("ipv4", "ipv4", "none")
    # payload starting with nibble 6 whose length runs past the datagram: not Teredo
    f = dec(Ether() / IP() / UDP(sport=3544, dport=40000) / bytes(inner)[:-2])
    assert f.tunnel == "none"
    # RFC 6081 trailers after the IPv6 packet: still Teredo
    f = dec(Ether() / IP() / UDP(sport=3544, dport=40000) / (bytes(inner) + b"\x01\x04abcd"))
    assert f.tunnel == "teredo"
    # bubble: next header 59, no payload
    f = dec(Ether() / IP() / UDP(sport=3544, dport=40000) / IPv6(src="2001::1", dst=B6, nh=59))
    assert f.tunnel == "teredo" and f.proto == 59


def test_teredo_origin_indication():
    inner = bytes(IPv6(src="2001::1", dst=B6, nh=59))
    f = dec(Ether() / IP() / UDP(sport=3544, dport=40000) / (b"\x00\x00\x12\x34" + b"\x01\x02\x03\x04" + inner))
    assert f.tunnel == "teredo"


def test_gre_vxlan_4in6_6in6_ipip():
    assert views(dec(Ether() / IP() / GRE(proto=0x86DD) / IPv6() / UDP())) == ("ipv4", "ipv6", "gre")
    assert views(dec(Ether() / IP() / UDP(dport=4789) / VXLAN() / Ether() / IPv6() / TCP())) \
        == ("ipv4", "ipv6", "vxlan")
    assert views(dec(Ether() / IPv6(src=A6, dst=B6) / IP() / TCP())) == ("ipv6", "ipv4", "4in6")
    assert views(dec(Ether() / IPv6(src=A6, dst=B6) / IPv6() / TCP())) == ("ipv6", "ipv6", "6in6")
    assert views(dec(Ether() / IP() / IP() / TCP())) == ("ipv4", "ipv4", "ipip")


def test_icmp_error_quote_is_not_a_tunnel():
    quote = IPv6(src=A6, dst=B6) / IP() / TCP()
    f = dec(Ether() / IPv6(src=B6, dst=A6) / ICMPv6DestUnreach() / quote)
    assert views(f) == ("ipv6", "ipv6", "none") and f.proto == 58
    f = dec(Ether() / IP() / ICMP(type=3) / IP(proto=41) / IPv6())
    assert views(f) == ("ipv4", "ipv4", "none")


def test_extension_chain_and_anomalies():
    f = dec(Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(type=0)
            / IPv6ExtHdrDestOpt() / UDP())
    assert f.ext_types == {"hop_by_hop", "routing", "destination_options"}
    assert f.chain_len == 3 and f.routing_types == {0} and f.anomalies == {"rh0"} and f.proto == 17
    f = dec(Ether() / IPv6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP())
    assert f.anomalies == {"hbh_not_first"}
    f = dec(Ether() / IPv6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / UDP())
    assert f.anomalies == {"repeated_header"}
    f = dec(Ether() / IPv6() / IPv6ExtHdrFragment(offset=0, m=0) / UDP())
    assert f.anomalies == {"atomic_fragment"} and f.proto == 17
    f = dec(Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(offset=100, m=1, nh=6)
            / (b"\x00" * 40))
    # non-first fragment behind Hop-by-Hop: transport is the fragment's next header, no TCP parse
    assert f.proto == 6 and f.chain_len == 2 and not f.anomalies
    f = dec(Ether() / IPv6(nh=200) / (b"\x00" * 8))
    assert f.anomalies == {"unknown_next_header"}


def test_chain_not_in_first_fragment():
    pkt = IPv6(plen=8 + 8, nh=44) / IPv6ExtHdrFragment(offset=0, m=1, nh=60) / IPv6ExtHdrDestOpt(len=3) \
        / (b"\x00" * 40)
    f = dec(Ether() / pkt)
    assert "chain_not_in_first_fragment" in f.anomalies and f.problem is None


def test_truncated_chain_counts_the_cut_header():
    raw = bytes(Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(type=2, addresses=[A6]) / UDP())
    cut = raw[:14 + 40 + 8 + 4]            # cut inside the Routing header
    f = decode_frame(ETH, cut, len(raw))
    assert f.ext_types == {"hop_by_hop", "routing"} and "truncated_chain" in f.anomalies
    assert f.problem == "truncated" and f.routing_types == {2}


def test_unsupported_linktype():
    f = decode_frame(147, b"\x00" * 40, 40)
    assert f.problem == "unsupported_linktype" and f.carrier == "non_ip"


def test_null_loopback_both_byte_orders_and_raw():
    v6 = bytes(IPv6(src=A6, dst=B6) / UDP())
    assert decode_frame(0, (30).to_bytes(4, "little") + v6).carrier == "ipv6"
    assert decode_frame(0, (24).to_bytes(4, "big") + v6).carrier == "ipv6"
    assert decode_frame(101, v6).carrier == "ipv6"
    assert decode_frame(228, v6).problem == "malformed"   # LINKTYPE_IPV4 holding IPv6


@pytest.mark.parametrize("addr,cls", [
    ("::", "unspecified"), ("::1", "loopback"), ("::ffff:1.2.3.4", "ipv4_mapped"),
    ("64:ff9b::1.2.3.4", "nat64_wkp"), ("64:ff9b:1::1", "nat64_local"), ("2001::1", "teredo"),
    ("2001:db8::1", "documentation"), ("3fff:fff::1", "documentation"), ("2002::1", "6to4"),
    ("fe80::1", "link_local"), ("fd00::1", "unique_local"), ("ff02::1", "multicast"),
    ("2a00::1", "global_unicast"), ("4000::1", "other"), ("100::1", "other"),
])
def test_address_classes(addr, cls):
    assert address_class(ipaddress.IPv6Address(addr).packed) == cls


REPRESENTATIVE = [
    Ether() / Dot1Q() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment() / UDP() / (b"x" * 8),
    Ether() / IP() / UDP(sport=3544) / IPv6(src="2001::1") / ICMPv6EchoRequest(),
    Ether() / IP() / GRE(proto=0x6558) / Ether() / IPv6() / TCP(),
    Ether() / IP() / UDP(dport=2152) / b"\x30\xff\x00\x30\x00\x00\x00\x01" / IPv6() / UDP(),
    Ether() / MPLS() / IPv6() / IPv6ExtHdrRouting() / IP() / TCP(),
    Ether() / IP() / UDP(dport=4789) / VXLAN() / Ether() / IP() / TCP(),
]


@pytest.mark.parametrize("i", range(len(REPRESENTATIVE)))
def test_truncation_at_every_offset_never_raises(i):
    raw = bytes(REPRESENTATIVE[i])
    full = decode_frame(ETH, raw, len(raw))
    assert full.problem is None
    for n in range(len(raw) + 1):
        f = decode_frame(ETH, raw[:n], len(raw))
        # a cut frame never claims more than the whole one
        assert len(f.tunnels) <= len(full.tunnels)
        assert f.carrier in ("ipv4", "ipv6", "non_ip")


def _class_by_the_stdlib(text):
    """REPORT.md section 5 with Python's ipaddress, first match wins: an
    oracle for the class table that the fast and reference decoders share."""
    a = ipaddress.IPv6Address(text)
    first = a.packed[0]
    if a.is_unspecified:
        return "unspecified"
    if a.is_loopback:
        return "loopback"
    if a.ipv4_mapped is not None:
        return "ipv4_mapped"
    if a in ipaddress.IPv6Network("64:ff9b::/96"):
        return "nat64_wkp"
    if a in ipaddress.IPv6Network("64:ff9b:1::/48"):
        return "nat64_local"
    if a.teredo is not None:
        return "teredo"
    if a in ipaddress.IPv6Network("2001:db8::/32") or a in ipaddress.IPv6Network("3fff::/20"):
        return "documentation"
    if a.sixtofour is not None:
        return "6to4"
    if a.is_link_local:
        return "link_local"
    if first & 0xFE == 0xFC:                       # RFC 4193: fc00::/7
        return "unique_local"
    if a.is_multicast:
        return "multicast"
    if first >> 5 == 0b001:                        # 2000::/3
        return "global_unicast"
    return "other"


def _class_cases():
    import random
    rng = random.Random(5)
    edges = []
    for net in ("::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
                "2001::/32", "2001:db8::/32", "3fff::/20", "2002::/16", "fe80::/10",
                "fc00::/7", "ff00::/8", "2000::/3"):
        n = ipaddress.IPv6Network(net)
        lo, hi = int(n.network_address), int(n.broadcast_address)
        for v in (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1):
            if 0 <= v < 1 << 128:
                edges.append(str(ipaddress.IPv6Address(v)))
    rand = [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(2000)]
    # random addresses under every first byte, where the classes differ
    rand += [str(ipaddress.IPv6Address((b << 120) | rng.getrandbits(120))) for b in range(256)]
    return edges + rand


def test_address_classes_equal_the_stdlib_oracle():
    cases = _class_cases()
    bad = [(t, address_class(ipaddress.IPv6Address(t).packed), _class_by_the_stdlib(t))
           for t in cases if address_class(ipaddress.IPv6Address(t).packed)
           != _class_by_the_stdlib(t)]
    assert not bad, bad[:10]
    assert {_class_by_the_stdlib(t) for t in cases} == {
        "unspecified", "loopback", "ipv4_mapped", "nat64_wkp", "nat64_local", "teredo",
        "documentation", "6to4", "link_local", "unique_local", "multicast", "global_unicast",
        "other"}


def _both_decoders(tmp_path, frames):
    """(reference frames, fast keys, fast population columns, reference
    population columns) of scapy frames written to a pcap."""
    from scapy.utils import wrpcap
    from ipv6flow.decode import columns as dcols
    from ipv6flow.capture import open_capture
    from ipv6flow.fast import frame_columns, frame_keys
    from ipv6flow.decode.frame import frame_key
    path = tmp_path / "f.pcap"
    wrpcap(str(path), frames)
    opts = DecodeOptions()
    with open_capture(str(path)) as cap:
        batch = next(cap.iter_batches())
        fast_keys, _ = frame_keys(batch, opts)
        fast_cols = frame_columns(batch, opts)
    with open_capture(str(path)) as cap:
        recs = list(cap)
    ref = [decode_frame(r.linktype, r.data, r.wirelen, opts) for r in recs]
    ref_cols = [dcols.frame_columns(f, r.linktype, r.data, r.ts, r.wirelen)
                for f, r in zip(ref, recs)]
    assert fast_keys == [frame_key(f) for f in ref]
    assert fast_cols == ref_cols
    return ref, ref_cols


def test_inner_ipv4_options_past_the_packet_have_no_ports(tmp_path):
    # GTP-U carrying an IPv4 header whose IHL (60 bytes) runs past the 24
    # captured bytes: no upper layer is read, and the outer UDP's ports
    # (2152, 2152) must not stand in for the inner ones
    from ipv6flow.decode import columns as dcols
    inner = bytearray(bytes(IP(src=A4, dst=B4, proto=6))[:20] + b"\x01\x01\x01\x01")
    inner[0], inner[2:4] = 0x4F, (60).to_bytes(2, "big")      # IHL 15, 60 bytes in all
    inner = bytes(inner)
    gtp = bytes([0x30, 0xFF]) + len(inner).to_bytes(2, "big") + b"\x00\x00\x00\x01"
    frame = Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=2152, dport=2152) \
        / (gtp + inner)
    (f,), (cols,) = _both_decoders(tmp_path, [frame])
    assert (f.carrier, f.payload, f.tunnel, f.problem) == ("ipv4", "ipv4", "gtpu", "truncated")
    c = dict(zip(dcols.COLUMNS, cols))
    assert (c["sport"], c["dport"]) == (-1, -1)


def test_inner_ipv4_total_length_below_its_header_is_not_a_tunnel(tmp_path):
    # 4in6 whose inner IPv4 says 10 bytes in all (below its own 20-byte
    # header): the inner header is not reached, so no 4in6 tunnel is
    # counted (a tunnel counts only when its inner header is decoded)
    inner = bytearray(bytes(IP(src=A4, dst=B4) / UDP()))
    inner[2:4] = (10).to_bytes(2, "big")
    frame = Ether() / IPv6(src=A6, dst=B6, nh=4) / bytes(inner)
    (f,), _ = _both_decoders(tmp_path, [frame])
    assert (f.carrier, f.payload, f.tunnel, f.problem) == ("ipv6", "ipv6", "none", "malformed")
