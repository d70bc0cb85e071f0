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
import hashlib
import ipaddress

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
        """``rows``: (network, name, group, domains, line) tuples."""
        self.source = source
        self.names, self.groups, self.domains = [], [], []
        index = {}
        seen = {}
        v4, v6 = {}, {}
        for net, name, group, domains, line in rows:
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
            key = (net.version, int(net.network_address), net.prefixlen)
            prev = seen.get(key)
            if prev is not None:
                if prev[0] != i:
                    raise ValueError(f"line {line}: {net} is already given to "
                                     f"{self.names[prev[0]]!r} on line {prev[1]}")
                continue
            seen[key] = (i, line)
            (v4 if net.version == 4 else v6).setdefault(net.prefixlen, []).append(
                (int(net.network_address), i))
        self.prefixes = len(seen)
        self.keys = np.array([org_key(n) for n in self.names], dtype=_U)
        self.v4 = [self._table4(ln, v4[ln]) for ln in sorted(v4, reverse=True)]
        self.v6 = [self._table6(ln, v6[ln]) for ln in sorted(v6, reverse=True)]
        digest = hashlib.blake2b(digest_size=16)
        for k in sorted(seen):
            digest.update(repr((k, self.names[seen[k][0]])).encode("utf-8", "surrogatepass"))
        self.digest = digest.hexdigest()

    @staticmethod
    def _table4(length, items):
        vals = np.array([v for v, _ in items], dtype=_U)
        org = np.array([i for _, i in items], dtype=np.int64)
        order = np.argsort(vals, kind="stable")
        return _Table(length, vals[order], None, None, org[order])

    @staticmethod
    def _table6(length, items):
        hi = np.array([v >> 64 for v, _ in items], dtype=_U)
        lo = np.array([v & _ALL for v, _ in items], dtype=_U)
        org = np.array([i for _, i in items], dtype=np.int64)
        keys = hi if length <= 64 else hash_words(hi, lo)
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

    # -- lookup -------------------------------------------------------------
    def lookup4(self, addr: np.ndarray) -> np.ndarray:
        """Organisation index per IPv4 address (int64 column, -1: none or
        no address), longest prefix first."""
        out = np.full(len(addr), -1, dtype=np.int64)
        todo = np.flatnonzero(addr >= 0)
        vals = addr[todo].astype(_U)
        for t in self.v4:
            if not len(todo):
                break
            key = vals & _U(_mask64(t.length + 32) & 0xFFFFFFFF)
            todo, vals = self._find(t.keys, key, t.org, todo, vals, out)
        return out

    def lookup6(self, hi: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Organisation index per IPv6 address (two uint64 words)."""
        out = np.full(len(hi), -1, dtype=np.int64)
        todo = np.flatnonzero(valid)
        h, lw = hi[todo], lo[todo]
        for t in self.v6:
            if not len(todo):
                break
            if t.length <= 64:
                key = h & _U(_mask64(t.length))
                pos = np.minimum(np.searchsorted(t.keys, key), len(t.keys) - 1)
                hit = t.keys[pos] == key
            else:
                ml = _U(_mask64(t.length - 64))
                key = hash_words(h, lw & ml)
                pos = np.minimum(np.searchsorted(t.keys, key), len(t.keys) - 1)
                hit = (t.keys[pos] == key) & (t.hi[pos] == h) & (t.lo[pos] == (lw & ml))
            out[todo[hit]] = t.org[pos[hit]]
            keep = ~hit
            todo, h, lw = todo[keep], h[keep], lw[keep]
        return out

    @staticmethod
    def _find(keys, key, org, todo, vals, out):
        pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        hit = keys[pos] == key
        out[todo[hit]] = org[pos[hit]]
        keep = ~hit
        return todo[keep], vals[keep]


# -- reading the CSV ----------------------------------------------------------

def _domains(cell: str, line: int):
    out = []
    for d in cell.replace(";", " ").split():
        d = d.strip().strip(".").lower()
        if not d:
            continue
        if len(d) > 253 or any(not (ch.isalnum() or ch in "-_.") for ch in d):
            raise ValueError(f"line {line}: {d[:60]!r} is not a domain name")
        out.append(d)
    return out


def parse_rows(text_lines):
    """(network, name, group, domains, line) per data row of the CSV."""
    reader = csv.reader(text_lines, strict=True)
    rows = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ValueError(f"line {reader.line_num}: not valid CSV ({e})")
        line = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if rows == 0 and row[0].strip().lower() == "prefix":
            rows = -1              # a header: the next row is still "the first"
            continue
        rows = max(rows, 0) + 1
        if rows > MAX_ROWS:
            raise ValueError(f"line {line}: more than {MAX_ROWS:,} rows")
        if len(row) < 2 or len(row) > 4:
            raise ValueError(f"line {line}: expected prefix,organisation[,group][,domain], "
                             f"found {len(row)} field{'s' if len(row) != 1 else ''}")
        if any(len(c) > MAX_CELL for c in row):
            raise ValueError(f"line {line}: a field longer than {MAX_CELL} characters")
        text = row[0].strip()
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            why = "has host bits set" if "host bits" in str(e) else "is not an IPv4 or IPv6 CIDR"
            raise ValueError(f"line {line}: {text[:60]!r} {why}")
        name = row[1].strip()
        if not name:
            raise ValueError(f"line {line}: the organisation is empty")
        if len(name) > MAX_NAME:
            raise ValueError(f"line {line}: an organisation name longer than {MAX_NAME} "
                             "characters")
        group = row[2].strip() if len(row) > 2 else ""
        if len(group) > MAX_NAME:
            raise ValueError(f"line {line}: a group name longer than {MAX_NAME} characters")
        yield net, name, group, _domains(row[3], line) if len(row) > 3 else [], line


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
