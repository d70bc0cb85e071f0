"""Record-aligned parts of a large classic pcap file, for parallel work.

A pcap file has no index: record k starts where record k-1's captured
length says. To cut a file at about N equal offsets without walking every
record header from the start, each cut point is found by resynchronising:
from the wanted offset, look for the first position where a chain of
``CHAIN`` consecutive plausible record headers begins (lengths within the
snapshot limit, captured <= original length, a timestamp fraction below
one second and seconds near the first record's).

A false match is possible in principle (packet bytes that look like a
chain of 16 headers), so the result is checked, not trusted: the part
before a cut must end its walk exactly on the cut (``Capture.landed``);
the engine reads the whole file in one piece when that check fails.
"""

import os
import struct

from .pcap import (FILE_HEADER_LEN, FILE_LINKTYPE_AT, FILE_VERSION_AT, MAGICS, RECORD_HEADER,
                   RECORD_HEADER_LEN, max_caplen)

CHAIN = 16
SCAN = 1 << 20              # bytes searched for a sync point per cut
YEAR = 366 * 86400


def split_points(path, parts: int, min_part: int = 32 << 20):
    """[(start, end)] byte ranges of record-aligned parts (end None: EOF),
    or None when the file should be read whole (small, compressed, pcapng,
    old-format, or no sync point found)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    parts = min(parts, size // min_part)
    if parts < 2:
        return None
    with open(path, "rb") as f:
        head = f.read(FILE_HEADER_LEN + RECORD_HEADER_LEN)
        if len(head) < FILE_HEADER_LEN + RECORD_HEADER_LEN or head[:4] not in MAGICS:
            return None
        order, units = MAGICS[head[:4]]
        major, minor = struct.unpack_from(order + "HH", head, FILE_VERSION_AT)
        (linktype,) = struct.unpack_from(order + "I", head, FILE_LINKTYPE_AT)
        if (major, minor) < (2, 4):       # lengths may be stored swapped
            return None
        limit = max_caplen(linktype & 0xFFFF)
        rec = RECORD_HEADER[order]
        first_sec = rec.unpack_from(head, FILE_HEADER_LEN)[0]
        cuts = [FILE_HEADER_LEN]
        for k in range(1, parts):
            want = size * k // parts
            at = _sync(f, want, rec, units, limit, first_sec)
            if at is None or at <= cuts[-1]:
                return None
            cuts.append(at)
    return [(a, b) for a, b in zip(cuts, cuts[1:] + [None])]


def _plausible(rec, buf, o, units, limit, first_sec):
    sec, frac, caplen, wirelen = rec.unpack_from(buf, o)
    return (caplen <= limit and caplen <= wirelen and wirelen <= (1 << 24)
            and frac < units and abs(sec - first_sec) < 10 * YEAR)


def _sync(f, want, rec, units, limit, first_sec):
    f.seek(want)
    buf = f.read(SCAN)
    n = len(buf)
    for i in range(0, n - RECORD_HEADER_LEN):
        o, ok = i, 0
        while ok < CHAIN and o + RECORD_HEADER_LEN <= n and _plausible(rec, buf, o, units,
                                                                         limit, first_sec):
            o += RECORD_HEADER_LEN + rec.unpack_from(buf, o)[2]
            ok += 1
        if ok == CHAIN or (ok and o == n and want + n == f.seek(0, 2)):
            return want + i
    return None
