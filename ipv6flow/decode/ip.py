"""IPv4 and IPv6 headers, and the IPv6 extension-header walk.

The walk is our own (not dpkt's ``extension_hdrs``): dpkt 1.9.8 keeps one
header per type, so repeats vanish; it parses an SRH with the type 0 layout,
leaves Mobility undecoded, and decodes a non-first fragment as TCP behind a
Hop-by-Hop header. Here the chain is an ordered walk over the bytes, so a
repeated header is seen, and each header is only checked for the fields the
report needs (length, routing type, fragment offset and M flag).

Two limits bound a header: the captured bytes (``end``: snap length or the
enclosing packet) and the packet's own declared length. A header running
past the captured bytes is ``truncated_chain``; one running past the
declared length is ``chain_not_in_first_fragment`` inside a first fragment
(RFC 7112) and a malformed packet elsewhere.
"""

from . import registry
from .registry import (ETH, EXT, EXT_MAX_REPEAT, EXT_NAMES, IPPROTO_AH, IPPROTO_ESP,
                       IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_NONE, IPPROTO_ROUTING, IPV4,
                       IPV6, UPPER_LAYER_MIN, is_known_protocol)

# Protocol number -> (next token, tunnel kind when over IPv4, over IPv6)
# (registry.IP_PROTOCOLS).
IP_PROTOCOLS = {p: (e.token, e.kind4, e.kind6) for p, e in registry.IP_PROTOCOLS.items()}


def header_problem(token, d, off, end):
    """Why an IP header at ``off`` cannot be decoded, or None when it can.

    Used before a tunnel is counted: an encapsulation counts only when its
    inner fixed header is fully captured and has the right version.
    """
    if token == "ipv4":
        if off + IPV4.LEN > end:
            return "truncated"
        v = d[off]
        if v >> 4 != 4 or (v & 0x0F) * 4 < IPV4.LEN:
            return "malformed"
        tot = (d[off + IPV4.TOTAL_LEN] << 8) | d[off + IPV4.TOTAL_LEN + 1]
        if tot and tot < (v & 0x0F) * 4:     # 0: a TSO/GSO super-packet, length unset
            return "malformed"
    elif token == "ipv6":
        if off + IPV6.LEN > end:
            return "truncated"
        if d[off] >> 4 != 6:
            return "malformed"
    elif token == "eth":
        if off + ETH.LEN > end:
            return "truncated"
    return None


def _next(f, nh, off, end, v6):
    entry = IP_PROTOCOLS.get(nh)
    if entry is None:
        return None
    token, kind4, kind6 = entry
    return (token, off, end, kind6 if v6 else kind4)


def ipv4(f, d, off, end, opts):
    problem = header_problem("ipv4", d, off, end)
    if problem:
        f.fail(problem)
        return None
    ihl = (d[off] & 0x0F) * 4
    tot = (d[off + IPV4.TOTAL_LEN] << 8) | d[off + IPV4.TOTAL_LEN + 1]
    # 0: a TSO/GSO super-packet, length unset (header_problem refused a
    # total length below the header length)
    pend = end if tot == 0 else min(end, off + tot)
    if f.carrier == "non_ip":
        f.carrier = "ipv4"
    f.payload = "ipv4"
    proto = d[off + IPV4.PROTO]
    f.proto = proto
    f.src4 = d[off + IPV4.SRC:off + IPV4.SRC + IPV4.ADDR_LEN]
    f.dst4 = d[off + IPV4.DST:off + IPV4.DST + IPV4.ADDR_LEN]
    if off + ihl > pend:
        # the options run past the packet: no upper layer here (not the
        # outer header's, which l4_off may still point at)
        f.l4_off = None
        f.fail("truncated" if off + ihl > end else "malformed")
        return None
    if ((d[off + IPV4.FRAG] << 8) | d[off + IPV4.FRAG + 1]) & IPV4.FRAG_OFFSET_MASK:
        f.l4_off = None
        return None                      # non-first fragment: no header inside
    f.l4_off, f.l4_end = off + ihl, pend
    return _next(f, proto, off + ihl, pend, False)


def ipv6(f, d, off, end, opts):
    problem = header_problem("ipv6", d, off, end)
    if problem:
        f.fail(problem)
        return None
    plen = (d[off + IPV6.PLEN] << 8) | d[off + IPV6.PLEN + 1]
    nh = d[off + IPV6.NH]
    # Payload length 0 is a jumbogram (RFC 2675) or a GSO super-packet:
    # the packet then runs to the end of what we have.
    decl = end if plen == 0 and nh != IPPROTO_NONE else off + IPV6.LEN + plen
    if f.carrier == "non_ip":
        f.carrier = "ipv6"
    f.payload = "ipv6"
    f.src6 = d[off + IPV6.SRC:off + IPV6.SRC + IPV6.ADDR_LEN]
    f.dst6 = d[off + IPV6.DST:off + IPV6.DST + IPV6.ADDR_LEN]
    outermost = f.chain_len is None
    nh, pos, n, follow = walk_chain(f, d, nh, off + IPV6.LEN, end, decl, opts)
    if outermost:
        f.chain_len = n
    f.proto = nh
    if not follow:
        f.l4_off = None
        return None
    f.l4_off, f.l4_end = pos, min(end, decl)
    return _next(f, nh, pos, min(end, decl), True)


def walk_chain(f, d, nh, pos, end, decl, opts):
    """Walk extension headers from ``pos``.

    Returns (next header, offset after the chain, headers walked, follow)
    where follow says whether what comes next may be decoded (False after
    ESP, a non-first fragment, a cut or a malformed header).
    """
    n = 0
    seen = {}
    first_fragment = False
    limit = min(end, decl)
    anomalies = f.anomalies
    while True:
        name = EXT_NAMES.get(nh)
        if name is None:
            break
        f.ext_types.add(name)
        n += 1
        c = seen[nh] = seen.get(nh, 0) + 1
        if c > EXT_MAX_REPEAT.get(nh, 1):
            anomalies.add("repeated_header")
        if nh == IPPROTO_HOPOPTS and n != 1:
            anomalies.add("hbh_not_first")
        if nh == IPPROTO_ESP:            # encrypted from here on
            return nh, pos, n, False
        if n > opts.max_chain:
            anomalies.add("chain_too_long")
            return nh, pos, n, False
        # Every extension header is at least 8 bytes; read the length field
        # only once those are there.
        hlen = EXT.LEN
        if pos + EXT.LEN <= limit and nh != IPPROTO_FRAGMENT:
            b = d[pos + EXT.HLEN]
            hlen = (b + 2) * 4 if nh == IPPROTO_AH else (b + 1) * 8
        if pos + hlen > limit:
            if pos + hlen > decl:
                if first_fragment:
                    anomalies.add("chain_not_in_first_fragment")
                else:
                    f.fail("malformed")
            else:
                anomalies.add("truncated_chain")
                f.fail("truncated")
            _header_fields(f, d, nh, pos, limit)
            return nh, pos, n, False
        fragment = _header_fields(f, d, nh, pos, limit)
        nxt = d[pos + EXT.NH]
        pos += hlen
        if fragment is not None:
            offset, more = fragment
            if offset:
                # A non-first fragment: what follows is the middle of the
                # packet. Its transport is the fragment header's next header.
                return nxt, pos, n, False
            if more:
                first_fragment = True
            else:
                anomalies.add("atomic_fragment")
        nh = nxt
    if not is_known_protocol(nh):
        anomalies.add("unknown_next_header")
    if first_fragment and nh != IPPROTO_NONE and pos + UPPER_LAYER_MIN.get(nh, 1) > decl:
        anomalies.add("chain_not_in_first_fragment")
    return nh, pos, n, True


def _header_fields(f, d, nh, pos, limit):
    """Record the routing type; return (offset, M) for a Fragment header.

    Reads only bytes inside ``limit``, so a cut header yields what it can.
    """
    if nh == IPPROTO_ROUTING and pos + EXT.ROUTING_TYPE + 1 <= limit:
        rtype = d[pos + EXT.ROUTING_TYPE]
        f.routing_types.add(rtype)
        if rtype == 0:
            f.anomalies.add("rh0")
    elif nh == IPPROTO_FRAGMENT and pos + EXT.FRAG_OFFSET + 2 <= limit:
        w = (d[pos + EXT.FRAG_OFFSET] << 8) | d[pos + EXT.FRAG_OFFSET + 1]
        return w >> 3, w & 0x01
    return None


PARSERS = {"ipv4": ipv4, "ipv6": ipv6}
