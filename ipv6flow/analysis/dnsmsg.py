"""A small, bounded DNS message parser (RFC 1035) for the records ipv6flow
uses: the question, and A, AAAA and CNAME answers.

Written here rather than taken from dpkt because hostile input must cost
bounded work and never raise anything but ``DnsError``: compression
pointers may only point backwards and are followed at most
``MAX_POINTERS`` times per name, names are capped at 255 octets, and the
record counts of the header are trusted only as far as the bytes go.
"""

import struct

from ..compiled import core_function

MAX_POINTERS = 32
MAX_NAME = 255
MAX_RECORDS = 512

TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
CLASS_IN = 1


def _load():
    """_core.c dns_parse, given these constants; None where it is not built
    or switched off (compiled.py)."""
    configure, fn = core_function("configure_dns"), core_function("dns_parse")
    if configure is None or fn is None:
        return None
    configure(MAX_POINTERS, MAX_NAME, MAX_RECORDS, TYPE_A, TYPE_CNAME, TYPE_AAAA, CLASS_IN)
    return fn


BUILT_PARSE = _load()
_compiled = BUILT_PARSE      # tests set None: parse in Python
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")


class DnsError(ValueError):
    """The message is malformed (counted, never fatal)."""


def read_name(msg: bytes, off: int) -> tuple[str, int]:
    """Decode the name at ``off``; return it (lowercase, dotted, no trailing
    dot) and the offset just after it in the message."""
    labels = []
    size = 0
    end = None
    jumps = 0
    n = len(msg)
    while True:
        if off >= n:
            raise DnsError("name runs past the message")
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        kind = ln & 0xC0
        if kind == 0xC0:
            if off + 1 >= n:
                raise DnsError("compression pointer runs past the message")
            target = ((ln & 0x3F) << 8) | msg[off + 1]
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > MAX_POINTERS or target >= off:
                raise DnsError("compression pointer loop")
            off = target
            continue
        if kind:
            raise DnsError("unknown label type")
        if off + 1 + ln > n:
            raise DnsError("label runs past the message")
        size += ln + 1
        if size > MAX_NAME:
            raise DnsError("name longer than 255 octets")
        label = msg[off + 1:off + 1 + ln]
        if 46 in label or 92 in label:
            # a dot inside a label is escaped (RFC 4343 presentation
            # format), so the label "evil.gov" + "vn" is not taken for a
            # name under gov.vn
            label = label.replace(b"\\", b"\\\\").replace(b".", b"\\.")
        labels.append(label)
        off += 1 + ln
    # decoded and lowered once for the whole name: latin-1 maps each byte to
    # one character, and lowering one never changes a dot or a backslash
    return b".".join(labels).decode("latin-1").lower(), (end if end is not None else off)


def parse(msg: bytes):
    """Parse a DNS message. Returns (response, qname or None, qtype or
    None, rcode, records) where records is a list of (owner, type, rdata)
    for A, AAAA and CNAME answers in class IN (rdata: 4 or 16 address
    bytes, or the CNAME target name); a query has no records."""
    if len(msg) < 12:
        raise DnsError("shorter than a DNS header")
    _id, flags, qd, an, _ns, _ar = _HEADER.unpack_from(msg)
    response = bool(flags & 0x8000)
    if not response:
        an = 0
    rcode = flags & 0x0F
    off = 12
    qname = qtype = None
    for i in range(min(qd, MAX_RECORDS)):
        name, off = read_name(msg, off)
        if off + 4 > len(msg):
            raise DnsError("question runs past the message")
        if i == 0:
            qname, qtype = name, (msg[off] << 8) | msg[off + 1]
        off += 4
    records = []
    for _ in range(min(an, MAX_RECORDS)):
        owner, off = read_name(msg, off)
        if off + 10 > len(msg):
            raise DnsError("answer record runs past the message")
        rtype, rclass, _ttl, rdlen = _RR.unpack_from(msg, off)
        off += 10
        if off + rdlen > len(msg):
            raise DnsError("record data runs past the message")
        if rclass == CLASS_IN:
            if rtype == TYPE_A and rdlen == 4:
                records.append((owner, TYPE_A, msg[off:off + 4]))
            elif rtype == TYPE_AAAA and rdlen == 16:
                records.append((owner, TYPE_AAAA, msg[off:off + 16]))
            elif rtype == TYPE_CNAME:
                target, _ = read_name(msg, off)
                records.append((owner, TYPE_CNAME, target))
        off += rdlen
    return response, qname, qtype, rcode, records


def parsed(msg: bytes):
    """``parse(msg)``, by the compiled parser where it is built, or None
    where ``parse`` raises DnsError."""
    if _compiled is not None:
        return _compiled(msg)
    try:
        return parse(msg)
    except DnsError:
        return None


def tcp_messages(payload: bytes):
    """DNS messages in one TCP segment (RFC 7766: 2-byte length prefix).
    Only whole messages are returned; a message split across segments is
    not reassembled (each frame is judged alone)."""
    out = []
    off = 0
    while off + 2 <= len(payload) and len(out) < MAX_RECORDS:
        ln = (payload[off] << 8) | payload[off + 1]
        if ln == 0 or off + 2 + ln > len(payload):
            break
        out.append(payload[off + 2:off + 2 + ln])
        off += 2 + ln
    return out
