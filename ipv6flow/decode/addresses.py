"""IPv6 address classes of REPORT.md section 5.

Classes are tried in the contract's order and the first match wins, so the
table below is ordered, not sorted. Each entry is (value, mask) over the
address as a 128-bit integer, built once at import.
"""

import ipaddress

_CLASS_PREFIXES = (
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("ipv4_mapped", "::ffff:0:0/96"),
    ("nat64_wkp", "64:ff9b::/96"),          # RFC 6052
    ("nat64_local", "64:ff9b:1::/48"),      # RFC 8215
    ("teredo", "2001::/32"),                # RFC 4380
    ("documentation", "2001:db8::/32"),     # RFC 3849
    ("documentation", "3fff::/20"),         # RFC 9637
    ("6to4", "2002::/16"),                  # RFC 3056
    ("link_local", "fe80::/10"),
    ("unique_local", "fc00::/7"),           # RFC 4193
    ("multicast", "ff00::/8"),
    ("global_unicast", "2000::/3"),
)

ADDRESS_CLASSES = tuple(dict.fromkeys([n for n, _ in _CLASS_PREFIXES] + ["other"]))


def parse_prefix(text: str) -> tuple[int, int, int]:
    """'2001:db8::/32' -> (value, mask, length); ValueError when invalid."""
    net = ipaddress.IPv6Network(text, strict=False)
    length = net.prefixlen
    mask = ((1 << length) - 1) << (128 - length) if length else 0
    return int(net.network_address), mask, length


_TABLE = tuple((name,) + parse_prefix(p)[:2] for name, p in _CLASS_PREFIXES)


def address_class(addr: bytes) -> str:
    """Class name of a 16-byte IPv6 address."""
    a = int.from_bytes(addr, "big")
    for name, value, mask in _TABLE:
        if a & mask == value:
            return name
    return "other"


def in_prefixes(addr: bytes, prefixes) -> bool:
    """True when the 16-byte address lies in any (value, mask, len) prefix."""
    a = int.from_bytes(addr, "big")
    return any(a & mask == value for value, mask, _ in prefixes)
