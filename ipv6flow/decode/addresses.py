"""IPv6 address classes of REPORT.md section 5, and prefix membership.

Classes are tried in the contract's order and the first match wins, so the
table below is ordered, not sorted. Each entry is (value, mask) over the
address as a 128-bit integer, built once at import.

A network is one type, ``Prefix(value, length)`` (IPv6 unless said
otherwise: the 6rd prefixes, the NAT64 prefixes, the client prefixes with
their family beside them). Membership is tested here, in one scalar form
(``in_prefix``, an address as an integer) and two array forms
(``words_in_prefix``: IPv6 addresses as the high and low 64-bit words the
decoders' columns hold; ``ints_in_prefix``: IPv4 addresses as integers).
Several prefixes at once (``words_in_prefixes``, ``prefix_rows``) take one
pass of the compiled core (_core.c ``prefix_any``, ``prefix_rows``) where
it is built, and ``words_in_prefix`` once per prefix, their specification,
where it is not.
"""

import ipaddress
from typing import NamedTuple

import numpy as np

from ..compiled import core_function

_WORD = (1 << 64) - 1

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


def prefix_mask(length: int, bits: int = 128) -> int:
    """The netmask of a /length prefix over ``bits``-bit addresses."""
    return ((1 << length) - 1) << (bits - length)


class Prefix(NamedTuple):
    """A network: its first address as an integer and its length (equal
    to, and hashed as, the plain ``(value, length)`` tuple)."""

    value: int
    length: int

    def mask(self, bits: int = 128) -> int:
        return prefix_mask(self.length, bits)


def parse_prefix(text: str) -> Prefix:
    """'2001:db8::/32' -> Prefix; ValueError when invalid."""
    net = ipaddress.IPv6Network(text, strict=False)
    return Prefix(int(net.network_address), net.prefixlen)


def in_prefix(addr: int, value: int, length: int, bits: int = 128) -> bool:
    """True when the address ``addr`` (an integer of ``bits`` bits) has the
    first ``length`` bits of ``value``."""
    return (addr ^ value) >> (bits - length) == 0


def words_in_prefix(hi, lo, value: int, length: int):
    """Per row, whether the IPv6 address with 64-bit words ``hi``, ``lo``
    (uint64 arrays; ``lo`` is not read for prefixes of /64 or shorter)
    lies in the prefix ``value``/``length``."""
    mask = prefix_mask(length)
    mh, ml = np.uint64(mask >> 64), np.uint64(mask & _WORD)
    inside = (hi & mh) == np.uint64((value & mask) >> 64)
    if length > 64:
        inside &= (lo & ml) == np.uint64(value & mask & _WORD)
    return inside


# _core.c's forms of words_in_prefixes and prefix_rows, or None (tests set
# them None: words_in_prefix, prefix by prefix, their specification)
BUILT_PREFIX_ANY = core_function("prefix_any")
BUILT_PREFIX_ROWS = core_function("prefix_rows")
_prefix_any, _prefix_rows = BUILT_PREFIX_ANY, BUILT_PREFIX_ROWS
MAX_PREFIX_BITS = 64                 # prefixes one compiled call (or prefix_rows) takes


def prefix_table(prefixes) -> np.ndarray:
    """(value high, mask high, value low, mask low) of each prefix, as
    _core.c reads a prefix table."""
    t = []
    for value, length in prefixes:
        mask = prefix_mask(length)
        value &= mask
        t += [value >> 64, mask >> 64, value & _WORD, mask & _WORD]
    return np.array(t, dtype=np.uint64)


def _u64(a):
    return np.ascontiguousarray(a, dtype=np.uint64)


def words_in_prefixes(hi, lo, prefixes):
    """Per row, whether the address (``words_in_prefix``'s words) lies in
    any of ``prefixes`` ((value, length) pairs)."""
    prefixes = list(prefixes)
    inside = np.zeros(len(hi), dtype=bool)
    if _prefix_any is not None and prefixes:
        hi, lo = _u64(hi), _u64(lo)
        for at in range(0, len(prefixes), MAX_PREFIX_BITS):
            part = np.empty(len(hi), dtype=bool)
            _prefix_any(hi, lo, prefix_table(prefixes[at:at + MAX_PREFIX_BITS]),
                        part.view(np.uint8))
            inside = part if at == 0 else inside | part
        return inside
    for value, length in prefixes:
        inside |= words_in_prefix(hi, lo, value, length)
    return inside


def prefix_rows(s_hi, s_lo, d_hi, d_lo, keep, prefixes, limits=None):
    """The rows (ascending indices) where ``keep`` (bool) is set and whose
    source or destination address (``words_in_prefix``'s words) lies in
    one of ``prefixes`` (at most MAX_PREFIX_BITS), with per row the bits
    (uint64, bit p for ``prefixes[p]``) of the prefixes holding its source
    and its destination: (rows, source bits, destination bits).
    ``limits``: per prefix, the row from which it no longer counts (None:
    it counts on every row)."""
    prefixes = list(prefixes)
    if len(prefixes) > MAX_PREFIX_BITS:
        raise ValueError(f"prefix_rows: {len(prefixes)} prefixes, at most {MAX_PREFIX_BITS}")
    n = len(keep)
    lim = np.array([n if x is None else min(max(int(x), 0), n)
                    for x in (limits or [None] * len(prefixes))], dtype=np.int64)
    if _prefix_rows is not None:
        rows = np.empty(n, dtype=np.int64)
        s_bits, d_bits = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
        k = _prefix_rows(_u64(s_hi), _u64(s_lo), _u64(d_hi), _u64(d_lo),
                         np.ascontiguousarray(keep, dtype=bool).view(np.uint8),
                         prefix_table(prefixes), lim, rows, s_bits, d_bits)
        return rows[:k], s_bits[:k], d_bits[:k]
    s_bits, d_bits = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)
    for p, (value, length) in enumerate(prefixes):
        bit = np.uint64(1 << p)
        for bits, hi, lo in ((s_bits, s_hi, s_lo), (d_bits, d_hi, d_lo)):
            inside = words_in_prefix(hi, lo, value, length)
            inside[lim[p]:] = False
            bits |= inside.astype(np.uint64) * bit
    rows = np.flatnonzero(keep & ((s_bits | d_bits) != 0))
    return rows, s_bits[rows], d_bits[rows]


def ints_in_prefix(a, value: int, length: int, bits: int = 32):
    """Per row, whether the address ``a`` (an integer array of ``bits``-bit
    addresses, IPv4 by default) lies in the prefix ``value``/``length``."""
    mask = prefix_mask(length, bits)
    return (a & mask) == (value & mask)


_TABLE = tuple((name, p.value, p.mask()) for name, p in
               ((name, parse_prefix(text)) for name, text in _CLASS_PREFIXES))


def address_class(addr: bytes) -> str:
    """Class name of a 16-byte IPv6 address."""
    a = int.from_bytes(addr, "big")
    for name, value, mask in _TABLE:
        if a & mask == value:
            return name
    return "other"


def in_prefixes(addr: bytes, prefixes) -> bool:
    """True when the 16-byte address lies in any of the IPv6 ``prefixes``."""
    a = int.from_bytes(addr, "big")
    return any(in_prefix(a, value, length) for value, length in prefixes)


def address_bytes(hi, lo):
    """(n, 16) uint8 array of the IPv6 addresses with 64-bit words ``hi``,
    ``lo`` (uint64 arrays): the bytes the address sets count."""
    return np.stack((hi, lo), axis=1).astype(">u8").view(np.uint8).reshape(-1, 16)


def ipv4_bytes(a):
    """(n, 4) uint8 array of the IPv4 addresses ``a`` (integers)."""
    return a.astype(">u4").view(np.uint8).reshape(-1, 4)
