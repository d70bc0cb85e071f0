"""IPv4-embedded IPv6 addresses (RFC 6052 section 2.2).

The IPv4 address sits right after a prefix of 32, 40, 48, 56, 64 or 96
bits, skipping bits 64-71 (the "u" octet, which must be zero). Byte
positions of the four IPv4 octets for each prefix length:
"""

import ipaddress

import numpy as np

from ..decode.addresses import Prefix
from ..decode.addresses import in_prefix as _in_prefix

POSITIONS = {
    32: (4, 5, 6, 7),
    40: (5, 6, 7, 9),
    48: (6, 7, 9, 10),
    56: (7, 9, 10, 11),
    64: (9, 10, 11, 12),
    96: (12, 13, 14, 15),
}
LENGTHS = (96, 64, 56, 48, 40, 32)     # most specific first
WKP = Prefix(int(ipaddress.IPv6Address("64:ff9b::")), 96)           # RFC 6052
LOCAL_USE = Prefix(int(ipaddress.IPv6Address("64:ff9b:1::")), 48)   # RFC 8215
# PREF64 prefix length codes (RFC 8781 section 4)
PLC_LENGTHS = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}


def extract(addr: bytes, length: int) -> bytes:
    """The IPv4 address embedded in a 16-byte IPv6 address at ``length``."""
    return bytes(addr[i] for i in POSITIONS[length])


def embedded_words(hi, lo, length: int):
    """``extract`` over arrays: the IPv4 addresses (int64) embedded at
    ``length`` in the IPv6 addresses with 64-bit words ``hi``, ``lo``
    (uint64 arrays), read from the words, not from bytes."""
    if length == 96:                    # the usual prefix: the last 32 bits
        return (lo & np.uint64(0xFFFFFFFF)).astype(np.int64)
    v = np.zeros(len(hi), dtype=np.uint64)
    for i in POSITIONS[length]:
        word, shift = (hi, 8 * (7 - i)) if i < 8 else (lo, 8 * (15 - i))
        v = (v << np.uint64(8)) | ((word >> np.uint64(shift)) & np.uint64(0xFF))
    return v.astype(np.int64)


def prefix_of(addr: bytes, length: int) -> int:
    """The address's first ``length`` bits as a 128-bit prefix value."""
    a = int.from_bytes(addr, "big")
    return a >> (128 - length) << (128 - length)


def in_prefix(addr: bytes, value: int, length: int) -> bool:
    """A 16-byte address in the NAT64 prefix (value, length)."""
    return _in_prefix(int.from_bytes(addr, "big"), value, length)


def embedding_length(addr6: bytes, addr4: bytes):
    """The RFC 6052 length at which addr6 embeds addr4 (u octet zero), or
    None. Most specific first."""
    if addr6[8] != 0:
        return None
    for length in LENGTHS:
        if extract(addr6, length) == addr4:
            return length
    return None


def prefix_text(value: int, length: int) -> str:
    return f"{ipaddress.IPv6Address(value)}/{length}"


def kind_of(value: int, length: int) -> str:
    if (value, length) == WKP:
        return "well-known"
    if (value, length) == LOCAL_USE:
        return "local-use"
    return "network-specific"


def parse_nat64_prefix(text: str) -> Prefix:
    """'2001:db8:64::/96' -> Prefix; ValueError for a bad prefix
    or a length RFC 6052 does not allow."""
    net = ipaddress.IPv6Network(text, strict=False)
    if net.prefixlen not in POSITIONS:
        raise ValueError(f"{text}: a NAT64 prefix must be /32, /40, /48, /56, /64 or /96 "
                         f"(RFC 6052), not /{net.prefixlen}")
    return Prefix(int(net.network_address), net.prefixlen)
