"""Organisations from a CSV map of prefixes (``--org-map``), and the
vectorized longest-prefix match of many addresses against it.

The file: one row per prefix, ``prefix,organisation[,group][,domain]``
(IPv4 or IPv6 CIDR; ``domain`` may hold several names separated by spaces
or semicolons). Blank lines and lines starting with ``#`` are skipped, as
is a first row whose first cell is ``prefix`` (a header). The file is
read as UTF-8 (a BOM is allowed) by the ``csv`` module, so quotes and CRLF
line ends work as in any spreadsheet export. Anything else (a bad CIDR,
host bits set, a missing or over-long name, the same prefix given to two
organisations, too many rows) is a ``ValueError`` whose text names the
line: the CLI prints it as one line and exits 1.

Bounds (hostile maps): at most ``MAX_ROWS`` rows and ``MAX_ORGS``
organisations, names of at most ``MAX_NAME`` characters, cells of at most
``MAX_CELL`` characters; a map past one of them is refused, not cut. The
map is held as numpy arrays (16 bytes a row per IPv4 prefix, 32 per IPv6
prefix) plus the names, so a million rows cost tens of MB.

Lookup (STYLE habit 7: a pure kernel over checked input): for each prefix
length present, longest first, the addresses still unmatched are masked
to that length and found with one ``np.searchsorted`` in the sorted
networks of that length. IPv4 and IPv6 up to /64 compare the masked value
itself; longer IPv6 prefixes compare a 64-bit hash of the masked address
(then the two words are checked, so a hash collision cannot match).
"""

import csv
from array import array
import hashlib
import ipaddress
import re
import socket

import numpy as np

from .sketch import hash_words

MAX_ROWS = 1_000_000
MAX_ORGS = 20_000
MAX_NAME = 200
MAX_CELL = 1000
_U = np.uint64
_ALL = 0xFFFFFFFFFFFFFFFF


def org_key(name: str) -> int:
    """A fixed 64-bit key of an organisation's name (the same in every
    process and report): what its distinct sets are hashed with."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "big")


def _mask64(bits: int) -> int:
    return (_ALL << (64 - bits)) & _ALL if bits else 0


class _Table:
    """Sorted networks of one family and prefix length."""

    __slots__ = ("length", "keys", "hi", "lo", "org")

    def __init__(self, length, keys, hi, lo, org):
        self.length, self.keys, self.hi, self.lo, self.org = length, keys, hi, lo, org


class OrgMap:
    """Organisations (name, group, domains) and their prefixes."""

    def __init__(self, rows, source="org map"):
        """``rows``: (version, value, prefixlen, name, group, domains, line)
        tuples. Prefixes are gathered in compact arrays (``array``), not
        in Python objects per row, so a million rows stay small."""
        self.source = source
        self.names, self.groups, self.domains = [], [], []
        index = {}
        cols = {4: [array("Q"), array("Q"), array("B"), array("I"), array("I")],
                6: [array("Q"), array("Q"), array("B"), array("I"), array("I")]}
        for version, value, ln, name, group, domains, line in rows:
            i = index.get(name)
            if i is None:
                if len(self.names) >= MAX_ORGS:
                    raise ValueError(f"line {line}: more than {MAX_ORGS:,} organisations")
                i = index[name] = len(self.names)
                self.names.append(name)
                self.groups.append(group)
                self.domains.append([])
            elif group and not self.groups[i]:
                self.groups[i] = group
            for d in domains:
                if d not in self.domains[i]:
                    self.domains[i].append(d)
            hi, lo, lens, orgs, lines = cols[version]
            hi.append(value >> 64)
            lo.append(value & _ALL)
            lens.append(ln)
            orgs.append(i)
            lines.append(line)
        self.keys = np.array([org_key(n) for n in self.names], dtype=_U)
        digest = hashlib.blake2b(digest_size=16)
        self.prefixes = 0
        fams = {}
        for version in (4, 6):
            hi, lo, ln, org, line = (np.frombuffer(a, dtype=t) if len(a) else
                                     np.zeros(0, dtype=t) for a, t in
                                     zip(cols[version], (_U, _U, np.uint8, np.uint32, np.uint32)))
            hi, lo, ln, org = self._distinct(version, hi, lo, ln, org.astype(np.int64),
                                             line.astype(np.int64))
            fams[version] = (hi, lo, ln.astype(np.int64), org.astype(np.int64))
            self.prefixes += len(hi)
            for a in (hi, lo, ln, org):
                digest.update(np.ascontiguousarray(a).tobytes())
        for name in self.names:
            digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
        self.digest = digest.hexdigest()
        # what the compiled part's lookup memo is kept for (the same maps,
        # the same answers): 64 bits of the digest, never 0 (no map)
        self.token = int(self.digest[:16], 16) | 1
        _, lo4, ln4, org4 = fams[4]
        self.v4 = _Ranges(32, lo4, ln4, org4)
        hi6, lo6, ln6, org6 = fams[6]
        short = ln6 <= 64
        self.v6 = _Ranges(64, hi6[short], ln6[short], org6[short])
        self.v6_long = [self._table6(n, hi6[ln6 == n], lo6[ln6 == n], org6[ln6 == n])
                        for n in sorted(set(ln6[~short].tolist()), reverse=True)]
        # the /64s holding a longer prefix: only addresses in them are looked
        # up in the per-length tables
        self.v6_long_his = np.unique(hi6[~short])

    def _distinct(self, version, hi, lo, ln, org, line):
        """The prefixes once each; the same prefix for two organisations is
        an error naming both lines."""
        order = np.lexsort((line, ln, lo, hi))
        hi, lo, ln, org, line = hi[order], lo[order], ln[order], org[order], line[order]
        same = np.zeros(len(hi), dtype=bool)
        if len(hi):
            same[1:] = (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1]) & (ln[1:] == ln[:-1])
        clash = np.flatnonzero(same & (np.r_[-1, org[:-1]] != org)) if len(hi) else []
        if len(clash):
            # the first line (in file order) that repeats a prefix of another
            k = int(clash[np.argmin(line[clash])])
            j = k - 1
            while same[j] and org[j - 1] == org[j]:
                j -= 1
            first = k - 1
            while same[first]:
                first -= 1
            value = (int(hi[k]) << 64 | int(lo[k])) if version == 6 else int(lo[k])
            addr = ipaddress.IPv6Address(value) if version == 6 else ipaddress.IPv4Address(value)
            net = f"{addr}/{int(ln[k])}"
            raise ValueError(f"line {int(line[k])}: {net} is already given to "
                             f"{self.names[int(org[first])]!r} on line {int(line[first])}")
        keep = ~same
        return hi[keep], lo[keep], ln[keep], org[keep]

    @staticmethod
    def _table6(length, hi, lo, org):
        keys = hash_words(hi, lo)
        order = np.argsort(keys, kind="stable")
        return _Table(length, keys[order], hi[order], lo[order], org[order])

    # equal maps are equal options (DecodeOptions is a frozen dataclass)
    def __eq__(self, other):
        return isinstance(other, OrgMap) and self.digest == other.digest

    def __hash__(self):
        return hash(self.digest)

    @property
    def wants_names(self) -> bool:
        """Whether any organisation has a domain (then the DNS names asked
        without an answer matter too)."""
        return any(self.domains)

    def compiled_tables(self):
        """The lookup tables as ``_orgmap.observe`` takes them: the two
        families' ranges (starts, owners), then the prefixes longer than
        /64: the /64s holding one, the lengths (longest first), each
        length's offset in the next three arrays, and per length the
        networks (hi, lo words, sorted) and owners. Made once."""
        t = self.__dict__.get("_compiled")
        if t is None:
            lens = [x.length for x in self.v6_long]
            his, los, orgs, off = [], [], [], [0]
            for x in self.v6_long:
                order = np.lexsort((x.lo, x.hi))
                his.append(x.hi[order])
                los.append(x.lo[order])
                orgs.append(x.org[order])
                off.append(off[-1] + len(order))

            def cat(parts, dtype):
                return np.ascontiguousarray(np.concatenate(parts) if parts else
                                            np.zeros(0), dtype=dtype)
            t = self._compiled = tuple(np.ascontiguousarray(a, dtype=d) for a, d in (
                (self.v4.starts, _U), (self.v4.owner, np.int64), (self.v6.starts, _U),
                (self.v6.owner, np.int64), (self.v6_long_his, _U),
                (np.array(lens, dtype=np.int64), np.int64),
                (np.array(off, dtype=np.int64), np.int64),
                (cat(his, _U), _U), (cat(los, _U), _U), (cat(orgs, np.int64), np.int64)))
        return t

    # -- lookup -------------------------------------------------------------
    def lookup4(self, addr: np.ndarray) -> np.ndarray:
        """Organisation index per IPv4 address (int64 column, -1: none or
        no address)."""
        out = self.v4.find(np.maximum(addr, 0).astype(_U))
        out[addr < 0] = -1
        return out

    def lookup6(self, hi: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Organisation index per IPv6 address (two uint64 words): prefixes
        longer than /64 first (by length, longest first), then the ranges
        of the others."""
        out = self.v6.find(hi)
        if self.v6_long:
            his = self.v6_long_his
            near = his[np.minimum(np.searchsorted(his, hi), len(his) - 1)] == hi
            todo = np.flatnonzero(valid & near)
            h, lw = hi[todo], lo[todo]
            for t in self.v6_long:
                if not len(todo):
                    break
                ml = _U(_mask64(t.length - 64))
                key = hash_words(h, lw & ml)
                pos = np.minimum(np.searchsorted(t.keys, key), len(t.keys) - 1)
                hit = (t.keys[pos] == key) & (t.hi[pos] == h) & (t.lo[pos] == (lw & ml))
                out[todo[hit]] = t.org[pos[hit]]
                keep = ~hit
                todo, h, lw = todo[keep], h[keep], lw[keep]
        out[~valid] = -1
        return out


class _Ranges:
    """Prefixes of one family (``bits`` wide: IPv4, or the top 64 bits of
    IPv6 for prefixes up to /64) as disjoint ranges, each owned by the
    longest prefix that covers it: a lookup is one ``np.searchsorted``
    whatever the number of prefix lengths. Built by painting the ranges
    with each prefix, shortest first; a point lies in at most ``bits + 1``
    nested prefixes, so the painting is bounded by that many times the
    number of ranges."""

    def __init__(self, bits, val, ln, org):
        if not len(val):
            self.starts = np.zeros(1, dtype=_U)
            self.owner = np.full(1, -1, dtype=np.int64)
            return
        val = val.astype(_U)
        with np.errstate(over="ignore"):
            size = np.where(ln > 0, np.left_shift(_U(1), (bits - np.maximum(ln, 1)).astype(_U)),
                            _U(0))
            if bits == 64:
                end = val + size                       # wraps to 0 at 2**64
                to_end = (ln == 0) | (end == 0)
            else:
                end = val + np.where(ln > 0, size, _U(1 << 32))
                to_end = end >= _U(1 << 32)
        points = np.unique(np.concatenate((np.zeros(1, dtype=_U), val, end[~to_end])))
        a = np.searchsorted(points, val)
        b = np.where(to_end, len(points), np.searchsorted(points, end))
        owner = np.full(len(points), -1, dtype=np.int64)
        order = np.argsort(ln, kind="stable")
        # ranges of one prefix each, in one assignment where no two prefixes
        # of the same length overlap (they cannot: same length, different
        # network); lengths painted shortest first
        lens = ln[order]
        bounds = np.flatnonzero(np.r_[True, lens[1:] != lens[:-1], True])
        for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            idx = order[s:e]
            width = b[idx] - a[idx]
            start = np.repeat(a[idx], width)
            offs = np.arange(len(start)) - np.repeat(np.cumsum(width) - width, width)
            owner[start + offs] = np.repeat(org[idx], width)
        self.starts, self.owner = points, owner

    def find(self, x: np.ndarray) -> np.ndarray:
        return self.owner[np.searchsorted(self.starts, x, side="right") - 1]


# -- reading the CSV ----------------------------------------------------------

_DOMAIN = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def _domains(cell: str, line: int):
    out = []
    for d in cell.replace(";", " ").split():
        d = d.strip(".").lower()
        if not d:
            continue
        if len(d) > 253 or not _DOMAIN.fullmatch(d):
            raise ValueError(f"line {line}: {d[:60]!r} is not a domain name")
        out.append(d)
    return out


def parse_cidr(text: str):
    """'10.0.0.0/8' -> (4, value, 8); ValueError saying what is wrong
    (``ipaddress`` is ten times slower for a million rows)."""
    addr, sep, ln = text.partition("/")
    if not sep or not ln.isdigit() or not ln.isascii() or len(ln) > 3:
        raise ValueError("is not an IPv4 or IPv6 CIDR")
    version = 6 if ":" in addr else 4
    try:
        packed = socket.inet_pton(socket.AF_INET6 if version == 6 else socket.AF_INET, addr)
    except (OSError, ValueError):
        raise ValueError("is not an IPv4 or IPv6 CIDR")
    bits = 128 if version == 6 else 32
    n = int(ln)
    if n > bits:
        raise ValueError("is not an IPv4 or IPv6 CIDR")
    value = int.from_bytes(packed, "big")
    if value & ((1 << (bits - n)) - 1):
        raise ValueError("has host bits set")
    return version, value, n


def parse_rows(text_lines):
    """(network, name, group, domains, line) per data row of the CSV
    (``domains``: a tuple, shared by the rows that repeat a cell)."""
    reader = csv.reader(text_lines, strict=True)
    rows = 0
    last_cell, last_doms = None, ()
    try:
        for row in reader:
            line = reader.line_num
            n = len(row)
            first = row[0] if n else ""
            # a data row's first cell is a CIDR: the common case first, then
            # what the slow tests decide (blank, comment, header)
            if not (first[:1].isalnum() and n > 1) and (
                    not n or not "".join(row).strip() or first.lstrip().startswith("#")):
                continue
            if rows == 0 and first.strip().lower() == "prefix":
                rows = -1          # a header: the next row is still "the first"
                continue
            rows = rows + 1 if rows > 0 else 1
            if rows > MAX_ROWS:
                raise ValueError(f"line {line}: more than {MAX_ROWS:,} rows")
            if n < 2 or n > 4:
                raise ValueError(f"line {line}: expected prefix,organisation[,group][,domain], "
                                 f"found {n} field{'s' if n != 1 else ''}")
            if max(map(len, row)) > MAX_CELL:
                raise ValueError(f"line {line}: a field longer than {MAX_CELL} characters")
            text = first.strip()
            try:
                version, value, ln = parse_cidr(text)
            except ValueError as e:
                raise ValueError(f"line {line}: {text[:60]!r} {e}")
            name = row[1].strip()
            if not name:
                raise ValueError(f"line {line}: the organisation is empty")
            if len(name) > MAX_NAME:
                raise ValueError(f"line {line}: an organisation name longer than {MAX_NAME} "
                                 "characters")
            group = row[2].strip() if n > 2 else ""
            if len(group) > MAX_NAME:
                raise ValueError(f"line {line}: a group name longer than {MAX_NAME} "
                                 "characters")
            doms = ()
            if n > 3:
                # an organisation's rows repeat its domains: the last cell's are reused
                if row[3] != last_cell:
                    last_cell, last_doms = row[3], tuple(_domains(row[3], line))
                doms = last_doms
            yield version, value, ln, name, group, doms, line
    except csv.Error as e:
        raise ValueError(f"line {reader.line_num}: not valid CSV ({e})")


def load(path: str) -> OrgMap:
    """The map in ``path``, read as a stream of lines (memory grows with
    the rows kept, not with the file); ValueError naming the line, or
    OSError."""
    with open(path, "rb") as fh:
        return OrgMap(parse_rows(_Lines(fh)), path)


class _Lines:
    """The file's lines as text: UTF-8 (a BOM at the start is dropped),
    each line decoded alone so that an error names its line; a line is
    read at most ``8 * MAX_CELL`` bytes at a time (a longer one fails the
    cell bound)."""

    def __init__(self, fh):
        self.fh, self.n = fh, 0

    def __iter__(self):
        return self

    def __next__(self):
        raw = self.fh.readline(MAX_CELL * 8)
        if not raw:
            raise StopIteration
        self.n += 1
        if self.n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"line {self.n}: not UTF-8 text")
