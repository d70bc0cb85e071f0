"""The protocol registry: every number, port, header layout and name the
decoders and analyses speak, declared once (STYLE habits 2, 3 and 9).

Sources: IANA "Assigned Internet Protocol Numbers", "IEEE 802 Numbers",
"Service Name and Transport Protocol Port Number Registry", the tcpdump.org
LINKTYPE list, and RFC 8200 section 4 with the IANA "IPv6 Extension Header
Types" registry.

Two decoders read these tables: the per-frame reference decoder (link.py,
ip.py, encap.py: a parser per token) and the numpy kernel (fast/kernel.py:
lookup tables built from the tables below at import). Dispatch entries say,
besides where the reference goes next, whether the kernel decodes the
entry itself (``KERNEL``) or routes the row to the reference decoder
(``REFERENCE``). Adding an ethertype or a tunnel kind is one entry here
plus one classifier per decoder; ``tests/test_registry.py`` builds a frame
for every entry and fails when a decoder does not do what its entry says.
"""

from typing import NamedTuple

KERNEL = "kernel"          # the numpy kernel decodes it
REFERENCE = "reference"    # the kernel hands the row to the reference decoder

# The version nibble of an IP header.
IP_VERSIONS = {4: "ipv4", 6: "ipv6"}

# -- families ----------------------------------------------------------------
# One set of codes: a family's code is its index here (the kernel's rows,
# the analyses' column ``fam``/``carrier``); the names are the report's.
FAMILY_NAMES = ("non_ip", "ipv4", "ipv6")
FAM_NON_IP, FAM_IPV4, FAM_IPV6 = range(len(FAMILY_NAMES))
FAMILY_CODE = {name: code for code, name in enumerate(FAMILY_NAMES)}
FAMILIES = ("ipv4", "ipv6", "non_ip")          # the report's order

# -- link types (pcap LINKTYPE_*) --------------------------------------------
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_RAW = 12            # DLT_RAW on most systems
LINKTYPE_RAW_OPENBSD = 14    # DLT_RAW on OpenBSD
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW_IP = 101        # LINKTYPE_RAW
LINKTYPE_C_HDLC = 104
LINKTYPE_IEEE802_11 = 105
LINKTYPE_FRELAY = 107
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# A sampled MPLS header (sFlow header protocol 13): no pcap link type; a
# value pcap will not use.
LINKTYPE_SFLOW_MPLS = 0x10000 | 13


class Dispatch(NamedTuple):
    """Where a type field (link type, ethertype, GRE protocol) leads."""

    token: str               # the reference decoder's next parser
    kernel: str              # KERNEL or REFERENCE


LINKTYPES = {
    LINKTYPE_NULL: Dispatch("null", REFERENCE),
    LINKTYPE_ETHERNET: Dispatch("eth", KERNEL),
    LINKTYPE_PPP: Dispatch("ppp", REFERENCE),
    LINKTYPE_RAW: Dispatch("raw", KERNEL),
    LINKTYPE_RAW_OPENBSD: Dispatch("raw", KERNEL),
    LINKTYPE_PPP_HDLC: Dispatch("ppp", REFERENCE),
    LINKTYPE_RAW_IP: Dispatch("raw", KERNEL),
    LINKTYPE_C_HDLC: Dispatch("chdlc", REFERENCE),
    LINKTYPE_IEEE802_11: Dispatch("ieee80211", REFERENCE),
    LINKTYPE_FRELAY: Dispatch("frame_relay", REFERENCE),
    LINKTYPE_LOOP: Dispatch("loop", REFERENCE),
    LINKTYPE_LINUX_SLL: Dispatch("sll", KERNEL),
    LINKTYPE_IEEE802_11_RADIOTAP: Dispatch("radiotap", REFERENCE),
    LINKTYPE_IPV4: Dispatch("raw_ipv4", KERNEL),
    LINKTYPE_IPV6: Dispatch("raw_ipv6", KERNEL),
    LINKTYPE_LINUX_SLL2: Dispatch("sll2", KERNEL),
    LINKTYPE_SFLOW_MPLS: Dispatch("mpls", REFERENCE),
}

# -- ethertypes (IEEE 802 Numbers) ---------------------------------------------
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100          # IEEE 802.1Q
ETHERTYPE_QINQ = 0x88A8          # IEEE 802.1ad
ETHERTYPE_QINQ_OLD = 0x9100      # pre-standard QinQ, still seen
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_MPLS_MC = 0x8848
ETHERTYPE_PPPOE_SESS = 0x8864
ETHERTYPE_TEB = 0x6558           # transparent Ethernet bridging (GRE, Geneve)
ETHERTYPE_PPP = 0x880B           # PPP in enhanced GRE (PPTP, RFC 2637)
ETHERTYPE_ERSPAN2 = 0x88BE       # ERSPAN type I/II in GRE
ETHERTYPE_ERSPAN3 = 0x22EB       # ERSPAN type III in GRE
ETHERTYPE_MAX_LENGTH = 1500      # at most this: an IEEE 802.3 length, LLC follows


# Ethertypes followed after Ethernet, VLAN, LLC/SNAP, SLL, Cisco HDLC and
# Frame Relay; any other ethertype carries no IP.
ETHERTYPES = {
    ETHERTYPE_IPV4: Dispatch("ipv4", KERNEL),
    ETHERTYPE_IPV6: Dispatch("ipv6", KERNEL),
    ETHERTYPE_VLAN: Dispatch("vlan", KERNEL),
    ETHERTYPE_QINQ: Dispatch("vlan", KERNEL),
    ETHERTYPE_QINQ_OLD: Dispatch("vlan", KERNEL),
    # the kernel walks label stacks of up to its MAX_MPLS_LABELS labels
    ETHERTYPE_MPLS: Dispatch("mpls", KERNEL),
    ETHERTYPE_MPLS_MC: Dispatch("mpls", KERNEL),
    # the kernel takes PPPoE session frames whose header is whole (a cut one
    # is the reference's "truncated"), with any PPP protocol
    ETHERTYPE_PPPOE_SESS: Dispatch("pppoe", KERNEL),
    ETHERTYPE_TEB: Dispatch("eth", REFERENCE),
}
VLAN_ETHERTYPES = tuple(et for et, e in ETHERTYPES.items() if e.token == "vlan")

# Inside GRE (and Geneve: the IP and Ethernet entries).
GRE_PROTOCOLS = {
    ETHERTYPE_IPV6: Dispatch("ipv6", KERNEL),
    ETHERTYPE_IPV4: Dispatch("ipv4", KERNEL),
    ETHERTYPE_TEB: Dispatch("eth", KERNEL),
    ETHERTYPE_PPP: Dispatch("ppp", KERNEL),
    ETHERTYPE_ERSPAN2: Dispatch("erspan2", KERNEL),
    ETHERTYPE_ERSPAN3: Dispatch("erspan3", KERNEL),
}
GENEVE_PROTOCOLS = {et: e for et, e in GRE_PROTOCOLS.items()
                    if e.token in ("ipv4", "ipv6", "eth")}

# PPP protocol numbers (RFC 1661, IANA PPP DLL protocol numbers).
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
PPP_PROTOCOLS = {PPP_IPV4: "ipv4", PPP_IPV6: "ipv6"}
PPP_ADDRESS, PPP_CONTROL = 0xFF, 0x03   # optional before the protocol (RFC 1662 3.1)
PPP_COMPRESSED = 0x01            # an odd first byte: a 1-byte protocol field (RFC 1661 6.5)

# -- IP protocol numbers -------------------------------------------------------
IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
IPPROTO_MOBILITY = 135
IPPROTO_HIP = 139
IPPROTO_SHIM6 = 140
IPPROTO_EXP1 = 253               # RFC 3692 experimentation and testing
IPPROTO_EXP2 = 254
IPPROTO_MAX_ASSIGNED = 145       # 146-252 unassigned, 255 reserved


class IpProtocol(NamedTuple):
    token: str               # the next parser
    kind4: str | None        # tunnel kind entered over IPv4
    kind6: str | None        # ... over IPv6
    kernel: str


# What follows an IP header (after the IPv6 extension-header chain).
IP_PROTOCOLS = {
    IPPROTO_IPV6: IpProtocol("ipv6", "6in4", "6in6", KERNEL),
    IPPROTO_IPIP: IpProtocol("ipv4", "ipip", "4in6", KERNEL),
    IPPROTO_GRE: IpProtocol("gre", None, None, KERNEL),
    IPPROTO_UDP: IpProtocol("udp", None, None, KERNEL),
}

# The report's transport names per family, and their order.
TRANSPORT = {
    "ipv4": {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMP: "icmp"},
    "ipv6": {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMPV6: "icmpv6",
             IPPROTO_NONE: "no_next_header"},
}
TRANSPORT_KEYS = {fam: tuple(names.values()) + ("other",) for fam, names in TRANSPORT.items()}
# The ICMP of each family (its type byte is a column of the analyses).
ICMP_OF = {FAM_IPV4: IPPROTO_ICMP, FAM_IPV6: IPPROTO_ICMPV6}
PORTED = (IPPROTO_TCP, IPPROTO_UDP)   # the protocols with ports

# Extension header number -> the report's by_type name.
EXT_NAMES = {
    IPPROTO_HOPOPTS: "hop_by_hop",
    IPPROTO_ROUTING: "routing",
    IPPROTO_FRAGMENT: "fragment",
    IPPROTO_DSTOPTS: "destination_options",
    IPPROTO_AH: "ah",
    IPPROTO_ESP: "esp",
    IPPROTO_MOBILITY: "mobility",
    IPPROTO_HIP: "hip",
    IPPROTO_SHIM6: "shim6",
    IPPROTO_EXP1: "experimental",
    IPPROTO_EXP2: "experimental",
}
EXT_TYPES = tuple(dict.fromkeys(EXT_NAMES.values()))  # report order, no repeats

# RFC 8200 4.1: each extension header at most once, except Destination
# Options (at most twice: before Routing and before the upper layer).
EXT_MAX_REPEAT = {IPPROTO_DSTOPTS: 2}


def is_known_protocol(nh: int) -> bool:
    """A next-header value is "known" when IANA has assigned it (0-145,
    plus the experimental 253/254); the others are the
    ``unknown_next_header`` anomaly."""
    return nh <= IPPROTO_MAX_ASSIGNED or nh in (IPPROTO_EXP1, IPPROTO_EXP2)


ANOMALIES = (
    "hbh_not_first",
    "repeated_header",
    "rh0",
    "atomic_fragment",
    "chain_not_in_first_fragment",
    "truncated_chain",
    "unknown_next_header",
    # beyond REPORT.md: the decoder's work bounds were hit (STYLE habit 6)
    "chain_too_long",
)

# -- header layouts: field offsets and fixed (minimum) lengths -----------------


class ETH:
    LEN = 14
    DST, SRC, TYPE = 0, 6, 12
    ADDR_LEN = 6


class VLAN:                      # the tag after the outer ethertype
    LEN = 4
    TYPE = 2


class LLC_SNAP:                  # 802.2 LLC with SNAP: AA AA 03, OUI, ethertype
    LEN = 8
    TYPE = 6
    DSAP = SSAP = 0xAA
    CONTROL = 0x03


class PPPOE:                     # RFC 2516 session stage, then the PPP protocol
    LEN = 6
    VER_TYPE, CODE = 0, 1
    VERSION_TYPE = 0x11          # version 1, type 1
    SESSION_DATA = 0x00
    PROTO = 6                    # the (uncompressed) PPP protocol field


class MPLS:                      # RFC 3032 label stack entry
    LEN = 4
    BOS = 2                      # the byte holding the bottom-of-stack bit
    BOS_BIT = 0x01


class SLL:                       # Linux cooked capture v1
    LEN = 16
    TYPE = 14


class SLL2:                      # Linux cooked capture v2
    LEN = 20
    TYPE = 0


class IPV4:
    LEN = 20                     # without options
    VER_IHL, TOTAL_LEN, FRAG, PROTO, SRC, DST = 0, 2, 6, 9, 12, 16
    ADDR_LEN = 4
    FRAG_OFFSET_MASK = 0x1FFF    # of the 16-bit flags/offset word


class IPV6:
    LEN = 40
    PLEN, NH, SRC, DST = 4, 6, 8, 24
    ADDR_LEN = 16
    LOW = 8                      # an address's low 64 bits (interface identifier)


class EXT:                       # an IPv6 extension header
    LEN = 8                      # every one is at least 8 bytes (Fragment: exactly)
    NH, HLEN = 0, 1
    ROUTING_TYPE = 2             # Routing header
    FRAG_OFFSET = 2              # Fragment header: offset (13 bits) and M flag


class UDP:
    LEN = 8
    SPORT, DPORT, ULEN = 0, 2, 4


class TCP:
    LEN = 20
    SPORT, DPORT, DOFF, FLAGS = 0, 2, 12, 13


class ICMP:
    LEN = 4
    TYPE = 0


class GRE:
    LEN = 4
    FLAGS, VER, PROTO = 0, 1, 2
    CHECKSUM, ROUTING, KEY, SEQ = 0x80, 0x40, 0x20, 0x10   # flag bits
    VERSION_MASK = 0x07
    OPT_LEN = 4                  # each optional field (checksum, key, sequence, ack)
    # enhanced GRE (version 1, PPTP, RFC 2637): the key field holds the
    # payload length (first 2 bytes) and the call id; an ack number may follow
    PAYLOAD_LEN = 4
    ACK = 0x80                   # of the version byte


class ERSPAN:                    # the header after GRE protocol 0x88BE / 0x22EB
    V2_LEN = 8                   # type II (type I, without GRE sequence number: none)
    V3_LEN = 12
    V3_O_BYTE, V3_O_BIT = 11, 0x01   # type III: an 8-byte platform subheader follows
    V3_SUBHEADER = 8


class GTPU:                      # GTPv1-U (3GPP TS 29.281 5.1)
    LEN = 8
    FLAGS, TYPE = 0, 1
    T_PDU = 0xFF
    VERSION_SHIFT, VERSION = 5, 1
    PT = 0x10                    # protocol type: GTP (not GTP')
    OPTIONAL = 0x07              # E, S, PN: 4 optional bytes follow the header
    E_FLAG = 0x04                # extension headers follow
    OPT_LEN = 4
    OPT_NEXT_EXT = 3             # next extension header type, in the optional bytes
    EXT_UNIT = 4                 # an extension header's length byte counts 4-byte units
    MAX_EXTENSIONS = 16          # extension headers read (a work bound of the decoders)


class VXLAN:                     # RFC 7348
    LEN = 8
    FLAGS = 0
    I_FLAG = 0x08


class GENEVE:                    # RFC 8926
    LEN = 8
    VER_OPT = 0                  # version (2 bits), options length (6 bits, 4-byte units)
    VERSION_SHIFT = 6
    OPT_MASK = 0x3F
    OPT_UNIT = 4
    PROTO = 2


class L2TP:                      # RFC 2661 3.1, version 2
    LEN = 6                      # flags and the smallest header after them
    FLAGS, FLAGS_LEN = 0, 2
    T_BIT, L_BIT, S_BIT, O_BIT = 0x8000, 0x4000, 0x0800, 0x0200
    VERSION_MASK, VERSION = 0x0F, 2
    TUNNEL_SESSION = 4           # tunnel and session ids
    LENGTH = NS_NR = OFFSET_SIZE = 2
    NS_NR_LEN = 4


class AYIYA:                     # draft-massar-v6ops-ayiya
    LEN = 8
    ID_LEN, SIG_LEN, NEXT = 0, 1, 3   # identity 2**(nibble) bytes, signature 4*(nibble)
    SIG_UNIT = 4


class TEREDO:                    # RFC 4380 5.1.1: indications before the IPv6 header
    INDICATION = 0x00            # first byte of either indication
    AUTH, ORIGIN = 0x01, 0x00    # second byte
    AUTH_LEN = 4                 # indicator, id-len, auth-len ...
    ID_LEN, AUTH_DATA_LEN = 2, 3
    NONCE_CONFIRMATION = 9       # ... then id, auth value, 8-byte nonce, confirmation byte
    ORIGIN_LEN = 8


# Smallest upper-layer header that a first fragment must hold (RFC 7112).
UPPER_LAYER_MIN = {IPPROTO_TCP: TCP.LEN, IPPROTO_UDP: UDP.LEN, IPPROTO_ICMPV6: ICMP.LEN}

# -- tunnels ------------------------------------------------------------------------
# Report order; a kind's code (the kernel's and the analyses' columns) is
# its index.
TUNNEL_KINDS = ("none", "6in4", "6to4", "isatap", "6rd", "teredo", "ayiya", "gre",
                "gtpu", "l2tp", "vxlan", "geneve", "4in6", "6in6", "ipip")
TUNNEL_CODE = {k: i for i, k in enumerate(TUNNEL_KINDS)}   # kind -> index (column codes)

# Well-known UDP ports of the UDP encapsulations (REPORT.md section 2).
UDP_PORT_GTPU = 2152      # 3GPP TS 29.281
UDP_PORT_VXLAN = 4789     # RFC 7348
UDP_PORT_GENEVE = 6081    # RFC 8926
UDP_PORT_L2TP = 1701      # RFC 2661
UDP_PORT_AYIYA = 5072     # draft-massar-v6ops-ayiya
UDP_PORT_TEREDO = 3544    # RFC 4380 (a heuristic, not a dispatch: see encap.teredo)


class UdpTunnel(NamedTuple):
    kind: str                # TUNNEL_KINDS name, also the reference parser's name
    kernel: str


# UDP port -> tunnel tried on it (either port of the datagram).
UDP_TUNNELS = {
    UDP_PORT_GTPU: UdpTunnel("gtpu", KERNEL),     # T-PDUs without extension headers
    UDP_PORT_VXLAN: UdpTunnel("vxlan", KERNEL),
    UDP_PORT_GENEVE: UdpTunnel("geneve", KERNEL),
    UDP_PORT_L2TP: UdpTunnel("l2tp", KERNEL),
    UDP_PORT_AYIYA: UdpTunnel("ayiya", KERNEL),
}
# AYIYA's next header -> the inner packet's parser.
AYIYA_NEXT = {IPPROTO_IPV6: "ipv6", IPPROTO_IPIP: "ipv4"}
DNS_PORT = 53

# Address patterns that name a tunnel (REPORT.md sections 2 and 5), as
# (value, mask) over a 32- or 16-bit word of the address.
TEREDO_HI32 = 0x20010000          # 2001::/32, RFC 4380: the first 32 bits
SIXTOFOUR_HI16 = 0x2002           # 2002::/16, RFC 3056: the first 16 bits
# ISATAP interface identifier (RFC 5214 6.1): 0000:5efe or 0200:5efe (the
# u bit may be set) followed by the IPv4 address: the IID's first 32 bits.
ISATAP_IID_HI32 = 0x00005EFE
ISATAP_IID_MASK = 0xFDFFFFFF


def is_teredo(hi32):
    """First 32 bits of an address (int or array) in 2001::/32."""
    return hi32 == TEREDO_HI32


def is_6to4(hi16):
    """First 16 bits of an address (int or array) in 2002::/16."""
    return hi16 == SIXTOFOUR_HI16


def is_isatap_iid(iid32):
    """First 32 bits of an interface identifier (int or array) ISATAP's."""
    return (iid32 & ISATAP_IID_MASK) == ISATAP_IID_HI32
