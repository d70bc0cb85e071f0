"""Protocol numbers and names, declared once (habit 9: names follow the RFCs).

IANA "Assigned Internet Protocol Numbers" and "IEEE 802 Numbers"; IPv6
extension headers per RFC 8200 section 4 and the IANA "IPv6 Extension
Header Types" registry.
"""

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

PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

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

# A next-header value is "known" when IANA has assigned it (0-145, plus the
# experimental 253/254). 146-252 are unassigned and 255 is reserved: those
# are the `unknown_next_header` anomaly.
def is_known_protocol(nh: int) -> bool:
    return nh <= 145 or nh in (IPPROTO_EXP1, IPPROTO_EXP2)


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

TUNNEL_KINDS = ("none", "6in4", "6to4", "isatap", "6rd", "teredo", "ayiya", "gre",
                "gtpu", "l2tp", "vxlan", "geneve", "4in6", "6in6", "ipip")
TUNNEL_CODE = {k: i for i, k in enumerate(TUNNEL_KINDS)}   # kind -> index (column codes)

# Well-known UDP ports of the UDP encapsulations (REPORT.md section 2).
UDP_PORT_GTPU = 2152      # 3GPP TS 29.281
UDP_PORT_VXLAN = 4789     # RFC 7348
UDP_PORT_GENEVE = 6081    # RFC 8926
UDP_PORT_L2TP = 1701      # RFC 2661
UDP_PORT_AYIYA = 5072     # draft-massar-v6ops-ayiya
UDP_PORT_TEREDO = 3544    # RFC 4380
