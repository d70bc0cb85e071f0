"""The programme's scorecard (``--org-map``): organisations, adoption by
the public definitions, and what blocks IPv6.

Both decoders hand over the same per-frame columns as for clients and
flows (``analysis/population.py``, plus the wire length, the carrier
family and the TCP flags); everything here works on whole arrays of them.

A frame belongs to the organisation of its client side (population's
rules): the client side's address of the payload family is looked up in
the map, then its address of the other family (the outer IPv4 of a 6in4
or Teredo frame, the outer IPv6 of DS-Lite); a frame whose client side is
undecided belongs to its source's organisation, else its destination's
(the other side is then the server). Frames of no organisation are one
more row (``organisation: null``).

What is kept, all mergeable (``merge``, and ``state``/``from_state`` for
finished reports):

* per organisation, exact counters (frames and bytes by payload and by
  carrier family, native and tunnelled IPv6, NAT64, TCP connection
  attempts by route);
* one set of 64-bit hashes of (organisation, item) with the category in
  the low 3 bits: clients (all, with IPv4, with global IPv6, with global
  IPv6 not through NAT64) and flows (IPv4, IPv6, NAT64), per organisation
  and for the whole capture; exact up to ``MAX_ITEMS`` items in all (then
  new items are not added and the report says ``exact: false``);
* a destination table: per organisation, route (IPv4, native IPv6,
  NAT64) and server address, frames, bytes and TCP connection attempts
  (IPv6 servers only once a connection attempt to them is seen);
  at most ``MAX_DESTS`` entries (past it the smallest by bytes are folded
  into their organisation's ``untracked`` counters).

Names are joined at report time: from the DNS answers anywhere in the
capture (and those the merged reports carried), so that a capture cut in
two and merged gives what one run gives.
"""

import base64
import ipaddress
import secrets

import numpy as np

from ..compiled import switched_off
from ..arrays import distinct, unique_any, unique_inverse
from ..decode.addresses import prefix_mask, words_in_prefixes
from ..decode.registry import FAM_IPV6, IPPROTO_TCP
from . import rfc6052
from .orgmap import org_key
from .sketch import hash_words

MAX_ITEMS = 1 << 21          # (organisation, client or flow) pairs: 16 MB of hashes
MAX_DESTS = 1 << 16          # (organisation, route, server) entries
TOP = 10                     # blocking destinations listed per organisation
MAX_NAMES_SHOWN = 5          # names shown per blocking destination
_U = np.uint64
# An item is one uint64: 45 bits of a hash of (organisation, client or
# flow), the organisation's group index (16 bits; ALL: the whole capture)
# and the category (3 bits). One sorted array holds the set, so adding is
# a sort and counting per group a bincount.
_ALL = 0xFFFF
MAX_GROUPS = _ALL            # organisations a (merged) scorecard may hold
_GSHIFT = _U(3)
_HASH = _U(0xFFFFFFFFFFFFFFFF ^ ((1 << 19) - 1))
_GMASK = _U(0xFFFF << 3)
_KEY_NONE = org_key("\x00no organisation")
_KEY_ALL = org_key("\x00all")
_SRC, _DST = 1, 2
ROUTES = ("ipv4", "ipv6", "nat64")

# per-group counters
(C_P4, C_B4, C_P6, C_B6, C_CP4, C_CB4, C_CP6, C_CB6, C_NP, C_NB, C_TP, C_TB,
 C_XP, C_XB, C_S4, C_S6, C_SX, C_UP, C_UB) = range(19)
K = 19
# item categories (low 3 bits)
CAT_CLIENT, CAT_C4, CAT_C6, CAT_C6E, CAT_F4, CAT_F6, CAT_FX = range(7)

DEFINITIONS = {
    "traffic": "IPv6 frames (bytes) of all IP frames (bytes); on the wire NAT64 frames are "
               "IPv6, end to end they are IPv4 (how ISPs and IXPs report).",
    "flows": "IPv6 flows (bidirectional 5-tuples) of all flows; NAT64 flows are IPv6 on the "
             "wire, IPv4 end to end (connections).",
    "clients": "clients seen with a global IPv6 address (2000::/3) of all clients, by the "
               "client rules and key of `clients`; end to end, NAT64 frames do not make a "
               "client IPv6 (Facebook-style user statistics).",
    "ipv6_preferred": "of the TCP connection attempts (SYN without ACK) to addresses of names "
                      "the capture's DNS shows with both A and native AAAA answers, the share "
                      "made over IPv6; NAT64 is IPv6 on the wire, IPv4 end to end (Google's "
                      "and APNIC's 'preferred', Akamai's requests to dual-stacked names).",
    "blocking": "IPv4 traffic to servers whose names have no native AAAA in the capture's "
                "DNS (or that no DNS answer names), ranked by IPv4 bytes; the share is of the "
                "organisation's IPv4 bytes.",
}


def _config():
    """This module's constants, as ``_orgmap.configure`` takes them."""
    cfg = {name: value for name, value in globals().items()
           if name.startswith(("C_", "CAT_"))}
    cfg.update(K=K, HASH=int(_HASH), GSHIFT=int(_GSHIFT), ALL=_ALL, KEY_ALL=_KEY_ALL,
               FAM_IPV6=FAM_IPV6, IPPROTO_TCP=IPPROTO_TCP, SIDE_DST=_DST,
               # the group table's slots (not the results) depend on it
               SEED=secrets.randbits(64))
    return cfg


def _load_compiled():
    """The compiled per-batch part (``ipv6flow/_orgmap.c``), configured
    with this module's constants; None where it is not built or switched
    off (ipv6flow/compiled.py: ``IPV6FLOW_PURE_PYTHON=1`` or
    ``IPV6FLOW_NUMPY_KERNEL=1``): the numpy code below is then used, and
    gives the same state (tests/test_orgmap_compiled.py)."""
    if switched_off():
        return None
    try:
        from .. import _orgmap
    except ImportError:
        return None
    try:
        _orgmap.configure(_config())
    except (KeyError, ValueError):
        return None             # built from other sources: the numpy path is right
    return _orgmap


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


class Scorecard:
    """The mergeable state behind ``organisations``, ``adoption`` and
    ``blocking``. Group 0 is "no organisation"; group i + 1 is the map's
    organisation i (in-process) or the i-th of a report's list."""

    def __init__(self, orgmap=None, nat64_prefixes=()):
        self.map = orgmap
        self.prefixes = orgmap.prefixes if orgmap is not None else None
        self.nat64 = tuple(nat64_prefixes)
        self.names, self.groups, self.domains = [None], [""], [[]]
        if orgmap is not None:
            self.names += orgmap.names
            self.groups += orgmap.groups
            self.domains += orgmap.domains
            self.gkeys = np.concatenate((np.array([_KEY_NONE], dtype=_U), orgmap.keys))
        else:
            self.gkeys = np.array([_KEY_NONE], dtype=_U)
        self.counts = np.zeros((len(self.names), K), dtype=np.int64)
        self.items = np.zeros(0, dtype=_U)       # sorted packed items
        self._pending = []
        self._pending_n = 0
        self.items_exact = True
        self.dest = {k: np.zeros(0, dtype=t) for k, t in _DEST_FIELDS}
        self._dest_parts, self._dest_n = [], 0
        self.dns = {}        # name -> [a set, native set, synthesized set] (from reports)
        self._nat_words = None   # the NAT64 prefixes as the compiled part takes them

    # -- adding -------------------------------------------------------------
    def observe(self, c, side, tag, value, flow_h, flow_keyed):
        """Count the rows of columns ``c`` with population's client side,
        client key (tag, value) and flow hashes."""
        n = len(side)
        if not n:
            return
        if compiled is not None:
            self._observe_compiled(c, side, tag, value, flow_h, flow_keyed)
            return
        # The rows of one flow with one client side, client key and client
        # address agree on everything looked up below (organisation,
        # server, NAT64, items): the work runs once per such group (a few
        # hundred a batch), only the per-frame figures (length, carrier,
        # SYN) over the rows.
        dst = side == _DST
        c4 = np.where(dst, c["v4d"], c["v4s"])
        chi = np.where(dst, c["v6d_hi"], c["v6s_hi"])
        clo = np.where(dst, c["v6d_lo"], c["v6s_lo"])
        _, inv, rep = unique_any(hash_words(flow_h, side, tag, value, flow_keyed, c4, chi, clo))
        fam6_rows = c["fam"] == FAM_IPV6
        fam6, has6, side = fam6_rows[rep], c["has6"][rep], side[rep]
        dst, c4, chi, clo = dst[rep], c4[rep], chi[rep], clo[rep]
        r = {k: c[k][rep] for k in ("v4s", "v4d", "v6s_hi", "v6s_lo", "v6d_hi", "v6d_lo")}
        org = self._org(c4, chi, clo, has6, fam6)
        und = np.flatnonzero((side == 0) & (org < 0))
        if len(und):
            # undecided and the source in no organisation: the destination's
            o2 = self._org(r["v4d"][und], r["v6d_hi"][und], r["v6d_lo"][und], has6[und],
                           fam6[und])
            won = o2 >= 0
            org[und[won]] = o2[won]
            dst[und[won]] = True
        g = org + 1
        # the server: the other side
        s4 = np.where(dst, r["v4s"], r["v4d"])
        shi = np.where(dst, r["v6s_hi"], r["v6d_hi"])
        slo = np.where(dst, r["v6s_lo"], r["v6d_lo"])
        nat = fam6 & has6 & words_in_prefixes(shi, slo, self.nat64) if self.nat64 else \
            np.zeros(len(rep), dtype=bool)
        syn = (c["proto"] == IPPROTO_TCP) & ((c["flags"] & 0x12) == 0x02)
        self._counters(c, g[inv], fam6_rows, nat[inv], syn)
        self._items(g, fam6, nat, tag[rep], value[rep], chi, flow_h[rep], flow_keyed[rep])
        m = len(rep)
        weights = (np.bincount(inv, minlength=m),
                   np.bincount(inv, weights=c["wire"], minlength=m),
                   np.bincount(inv[syn], minlength=m))
        self._destinations(g, fam6, nat, s4, shi, slo, weights)

    def _observe_compiled(self, c, side, tag, value, flow_h, flow_keyed):
        """``observe`` by ``_orgmap.observe``: the same counters, the same
        sorted run of items and the same destination part."""
        n = len(side)
        i64 = np.int64
        rows = [np.ascontiguousarray(x, dtype=t) for x, t in (
            (c["v4s"], i64), (c["v4d"], i64), (c["v6s_hi"], _U), (c["v6s_lo"], _U),
            (c["v6d_hi"], _U), (c["v6d_lo"], _U), (c["fam"], i64), (c["has6"], bool),
            (c["carrier"], i64), (c["proto"], i64), (c["flags"], i64), (c["wire"], i64),
            (side, i64), (tag, i64), (value, _U), (flow_h, _U), (flow_keyed, bool))]
        rows = [x.view(np.uint8) if x.dtype == bool else x for x in rows]
        if not self.counts.flags.c_contiguous:
            self.counts = np.ascontiguousarray(self.counts)
        if self._nat_words is None:
            self._nat_words = _nat64_words(self.nat64)
        out = _buffers(n)
        m = self.map.compiled_tables() if self.map is not None else _NO_MAP
        ni, nd = compiled.observe(rows + list(m) + [self.gkeys, self.counts.reshape(-1),
                                                    self._nat_words] + out,
                                  self.map is not None,
                                  self.map.token if self.map is not None else 0)
        if ni:
            self._pending.append(out[0][:ni].copy())
            self._pending_n += ni
            if self._pending_n > max(len(self.items), 1 << 16):
                self._consolidate()
        if nd:
            part = {k: a[:nd].copy() for (k, _), a in zip(_DEST_FIELDS, out[1:])}
            self._dest_parts.append(part)
            self._dest_n += nd
            if self._dest_n > max(2 * len(self.dest["key"]), 1 << 16):
                self._merge_dest_parts()

    def _org(self, v4, hi, lo, has6, fam6):
        if self.map is None:
            return np.full(len(v4), -1, dtype=np.int64)
        o6 = self.map.lookup6(hi, lo, has6)
        o4 = self.map.lookup4(v4)
        return np.where(fam6, np.where(o6 >= 0, o6, o4), np.where(o4 >= 0, o4, o6))

    def _counters(self, c, g, fam6, nat, syn):
        # Each row is one of 16 kinds (IPv6 payload, IPv6 carrier, NAT64,
        # TCP SYN): two bincounts over (group, kind) give every counter.
        ug, inv = unique_inverse(g)
        m = len(ug)
        car6 = c["carrier"] == FAM_IPV6
        kind = fam6 * 1 + car6 * 2 + nat * 4 + syn * 8
        code = inv * 16 + kind
        p = np.bincount(code, minlength=m * 16).reshape(m, 16)
        b = np.bincount(code, weights=c["wire"], minlength=m * 16).reshape(m, 16) \
            .astype(np.int64)
        k = np.arange(16)
        f6, c6, x, sy = (k & 1) != 0, (k & 2) != 0, (k & 4) != 0, (k & 8) != 0
        cols = np.zeros((m, K), dtype=np.int64)
        for col, sel in ((C_P4, ~f6), (C_P6, f6), (C_CP4, ~c6), (C_CP6, c6), (C_NP, f6 & c6),
                         (C_TP, f6 & ~c6), (C_XP, x)):
            cols[:, col] = p[:, sel].sum(axis=1)
            cols[:, col + 1] = b[:, sel].sum(axis=1)
        cols[:, C_S4] = p[:, sy & ~f6].sum(axis=1)
        cols[:, C_S6] = p[:, sy & f6 & ~x].sum(axis=1)
        cols[:, C_SX] = p[:, sy & x].sum(axis=1)
        self.counts[ug] += cols

    def _items(self, g, fam6, nat, tag, value, chi, flow_h, flow_keyed):
        """Distinct (organisation, client or flow) items of the rows, and
        the same for the whole capture, as one sorted run for the set."""
        gk = self.gkeys[g]
        gbits = g.astype(np.uint64) << _GSHIFT
        allbits = _U(_ALL) << _GSHIFT
        keys = []
        keyed = np.flatnonzero(tag != 0)
        if len(keyed):
            h = hash_words(tag[keyed], value[keyed])
            global6 = fam6[keyed] & ((chi[keyed] >> _U(61)) == _U(1))
            e2e6 = global6 & ~nat[keyed]
            bits = (~fam6[keyed]).astype(np.uint64) | (global6.astype(np.uint64) << _U(1)) \
                | (e2e6.astype(np.uint64) << _U(2))
            # one row per (organisation, client, families) first
            u = distinct((hash_words(gk[keyed], h) & _HASH) | gbits[keyed] | bits)
            hs = distinct((hash_words(h ^ _U(_KEY_ALL)) & _HASH) | allbits | bits)
            for key in (u, hs):
                b = key & _U(7)
                base = key & ~_U(7)
                keys += [base | _U(CAT_CLIENT), base[(b & _U(1)) != 0] | _U(CAT_C4),
                         base[(b & _U(2)) != 0] | _U(CAT_C6), base[(b & _U(4)) != 0] | _U(CAT_C6E)]
        fk = np.flatnonzero(flow_keyed)
        if len(fk):
            bits = fam6[fk].astype(np.uint64) | (nat[fk].astype(np.uint64) << _U(1))
            fh = flow_h[fk]
            u = distinct((hash_words(gk[fk], fh) & _HASH) | gbits[fk] | bits)
            hs = distinct((hash_words(fh ^ _U(_KEY_ALL)) & _HASH) | allbits | bits)
            for key in (u, hs):
                base = key & ~_U(7)
                keys += [base | (_U(CAT_F4) + (key & _U(1))),
                         base[(key & _U(2)) != 0] | _U(CAT_FX)]
        if keys:
            run = distinct(np.concatenate(keys))      # one sorted run
            self._pending.append(run)
            self._pending_n += len(run)
            if self._pending_n > max(len(self.items), 1 << 16):
                self._consolidate()

    def _consolidate(self):
        self._merge_dest_parts()
        if not self._pending:
            return
        if compiled is not None:
            # the sorted runs and the held set merged pairwise (linear passes)
            runs = [np.ascontiguousarray(r, dtype=_U) for r in [self.items] + self._pending]
            out = np.empty(sum(len(r) for r in runs), dtype=_U)
            u = out[:compiled.union(runs, out)]
        else:
            # sorted runs: a stable sort (timsort) merges them in linear time each
            keys = np.sort(np.concatenate([self.items] + self._pending), kind="stable")
            first = np.empty(len(keys), dtype=bool)
            first[:1] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            u = keys[first]
        self._pending, self._pending_n = [], 0
        if len(u) > MAX_ITEMS:
            # keep what was held, then new items in hash order up to the cap
            self.items_exact = False
            old = np.isin(u, self.items, assume_unique=True)
            room = MAX_ITEMS - int(old.sum())
            new = np.flatnonzero(~old)[:max(room, 0)]
            u = u[np.sort(np.concatenate((np.flatnonzero(old), new)))]
        # a view of the merge's output is kept when it fills most of it (a
        # copy costs fresh pages; the slack is at most that view's length)
        self.items = u.copy() if u.base is not None and 2 * len(u) < len(u.base) else u

    def _destinations(self, g, fam6, nat, s4, shi, slo, weights):
        """Frames, bytes and SYNs (``weights``, per row) by (organisation,
        route, server)."""
        packets, nbytes, syn = weights
        # IPv6 servers matter only for their connection attempts (IPv6
        # preferred); the IPv4 ones for their bytes too (what blocks IPv6)
        keep = np.flatnonzero(~fam6 | (syn > 0))
        if len(keep) < len(fam6):
            g, fam6, nat, s4, shi, slo = g[keep], fam6[keep], nat[keep], s4[keep], shi[keep], \
                slo[keep]
            packets, nbytes, syn = packets[keep], nbytes[keep], syn[keep]
        if not len(keep):
            return
        route = np.where(fam6, np.where(nat, 2, 1), 0)
        hi = np.where(fam6, shi, _U(0))
        lo = np.where(fam6, slo, s4.astype(np.uint64))
        key = hash_words(self.gkeys[g], route, hi, lo)
        u, inv, first = unique_any(key)
        m = len(u)
        part = {"key": u, "group": g[first], "route": route[first], "hi": hi[first],
                "lo": lo[first],
                "packets": np.bincount(inv, weights=packets, minlength=m).astype(np.int64),
                "bytes": np.bincount(inv, weights=nbytes, minlength=m).astype(np.int64),
                "syn": np.bincount(inv, weights=syn, minlength=m).astype(np.int64)}
        # merged into the table once the parts held outgrow it (amortized)
        self._dest_parts.append(part)
        self._dest_n += m
        if self._dest_n > max(2 * len(self.dest["key"]), 1 << 16):
            self._merge_dest_parts()

    def _merge_dest_parts(self):
        if self._dest_parts:
            parts, self._dest_parts, self._dest_n = self._dest_parts, [], 0
            joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self.dest = _merge_dest(self.dest, joined, self.counts)

    # -- merging ------------------------------------------------------------
    def _remap(self, other):
        """Group indices of ``other`` in self (adding its organisations)."""
        index = {n: i for i, n in enumerate(self.names)}
        out = []
        for i, name in enumerate(other.names):
            j = index.get(name)
            if j is None:
                if len(self.names) >= MAX_GROUPS:
                    raise ValueError(f"more than {MAX_GROUPS - 1:,} organisations in all")
                j = index[name] = len(self.names)
                self.names.append(name)
                self.groups.append(other.groups[i])
                self.domains.append(list(other.domains[i]))
                self.gkeys = np.append(self.gkeys, other.gkeys[i])
                self.counts = np.vstack((self.counts, np.zeros((1, K), dtype=np.int64)))
            else:
                if not self.groups[j]:
                    self.groups[j] = other.groups[i]
                for d in other.domains[i]:
                    if d not in self.domains[j]:
                        self.domains[j].append(d)
            out.append(j)
        return np.array(out, dtype=np.int64)

    def merge(self, other: "Scorecard") -> "Scorecard":
        out = Scorecard(self.map or other.map, self.nat64 or other.nat64)
        out.prefixes = self.prefixes if self.prefixes is not None else other.prefixes
        out.names, out.groups = list(self.names), list(self.groups)
        out.domains = [list(d) for d in self.domains]
        out.gkeys = self.gkeys.copy()
        out.counts = self.counts.copy()
        for s in (self, other):
            s._consolidate()
        out.items = self.items
        out.items_exact = self.items_exact and other.items_exact
        out.dest = {k: v.copy() for k, v in self.dest.items()}
        out.dns = {n: [set(x) for x in v] for n, v in self.dns.items()}
        remap = out._remap(other)
        out.counts[remap] += other.counts
        og = ((other.items & _GMASK) >> _GSHIFT).astype(np.int64)
        ng = np.where(og == _ALL, _ALL, remap[np.minimum(og, len(remap) - 1)]).astype(np.uint64)
        out._pending = [np.sort((other.items & ~_GMASK) | (ng << _GSHIFT))]
        out._pending_n = len(other.items)
        out._consolidate()
        od = dict(other.dest)
        od["group"] = remap[od["group"]]
        out.dest = _merge_dest(out.dest, od, out.counts)
        for name, v in other.dns.items():
            e = out.dns.setdefault(name, [set(), set(), set()])
            for a, b in zip(e, v):
                a |= b
        return out

    # -- the JSON state -----------------------------------------------------
    def state(self, dns: dict) -> dict:
        """Everything a later merge needs (``dns``: the names joined)."""
        self._consolidate()
        d = self.dest
        return {
            "prefixes": self.prefixes,
            "organisations": [[n, g, list(dm)] for n, g, dm in
                              zip(self.names, self.groups, self.domains)],
            "counts": self.counts.tolist(),
            "items": {"packed": _b64(self.items),
                      "exact": self.items_exact},
            # the key is a hash of the rest: made again when read
            "destinations": {k: _b64(d[k]) for k, _ in _DEST_FIELDS if k != "key"},
            "nat64_prefixes": [rfc6052.prefix_text(v, ln) for v, ln in self.nat64],
            "dns": [[name, sorted(v[0]), sorted(v[1]), sorted(v[2])]
                    for name, v in sorted(dns.items())],
        }

    @classmethod
    def from_state(cls, st: dict) -> "Scorecard":
        nets = [ipaddress.IPv6Network(t) for t in st["nat64_prefixes"]]
        s = cls(None, [(int(x.network_address), x.prefixlen) for x in nets])
        s.prefixes = st["prefixes"]
        s.names = [o[0] for o in st["organisations"]]
        s.groups = [o[1] for o in st["organisations"]]
        s.domains = [list(o[2]) for o in st["organisations"]]
        if not s.names or s.names[0] is not None:
            raise ValueError("scorecard: the first organisation must be null")
        s.gkeys = np.array([_KEY_NONE] + [org_key(n) for n in s.names[1:]], dtype=_U)
        s.counts = np.array(st["counts"], dtype=np.int64).reshape(len(s.names), K)
        s.items = np.sort(_unb64(st["items"]["packed"], _U))

        s.items_exact = bool(st["items"]["exact"])
        s.dest = {k: _unb64(st["destinations"][k], t) for k, t in _DEST_FIELDS if k != "key"}
        lens = {len(v) for v in s.dest.values()}
        if len(lens) > 1:
            raise ValueError("scorecard: arrays of different lengths")
        if len(s.dest["group"]) and (s.dest["group"].max() >= len(s.names)
                                     or s.dest["group"].min() < 0):
            raise ValueError("scorecard: a destination of no organisation listed")
        ig = (s.items & _GMASK) >> _GSHIFT
        if len(ig) and ((ig >= _U(len(s.names))) & (ig != _U(_ALL))).any():
            raise ValueError("scorecard: an item of no organisation listed")
        d = s.dest
        d["key"] = hash_words(s.gkeys[d["group"]], d["route"], d["hi"], d["lo"])
        order = np.argsort(d["key"])
        s.dest = {k: v[order] for k, v in d.items()}
        for name, a, n6, syn in st["dns"]:
            s.dns[name] = [set(a), set(n6), set(syn)]
        return s


_DEST_FIELDS = (("key", _U), ("group", np.int64), ("route", np.int64), ("hi", _U), ("lo", _U),
                ("packets", np.int64), ("bytes", np.int64), ("syn", np.int64))


def _nat64_words(prefixes):
    """(value hi, value lo, mask hi, mask lo) per NAT64 prefix, as
    ``words_in_prefixes`` compares them."""
    out = []
    for value, length in prefixes:
        mask = prefix_mask(length)
        mh, ml = mask >> 64, mask & 0xFFFFFFFFFFFFFFFF
        out += [(value >> 64) & mh, value & ml, mh, ml]
    return np.array(out, dtype=_U)


# no map: every address in no organisation (ranges of one owner, -1)
_NO_MAP = (np.zeros(1, dtype=_U), np.full(1, -1, dtype=np.int64), np.zeros(1, dtype=_U),
           np.full(1, -1, dtype=np.int64), np.zeros(0, dtype=_U), np.zeros(0, dtype=np.int64),
           np.zeros(1, dtype=np.int64), np.zeros(0, dtype=_U), np.zeros(0, dtype=_U),
           np.zeros(0, dtype=np.int64))
_BUFFERS = {}


def _buffers(n):
    """The compiled part's output arrays for a batch of ``n`` rows (items:
    at most 12 a row; a destination at most one a row), kept for the next
    batch of this process (their contents are copied out)."""
    size = 1 << max(n - 1, 1).bit_length()
    got = _BUFFERS.get("out")
    if got is None or len(got[1]) < size:
        got = _BUFFERS["out"] = [np.empty(12 * size, dtype=_U)] + [
            np.empty(size, dtype=t) for _, t in _DEST_FIELDS]
    return got


compiled = _load_compiled()    # None: the numpy path (tests set it to None to compare)


def _merge_dest(a, b, counts):
    """Two destination tables as one (sorted by key); past ``MAX_DESTS``
    the entries with the fewest bytes go to their group's untracked
    counters."""
    if not len(b["key"]):
        return a
    keys = np.concatenate((a["key"], b["key"]))
    u, inv, first = unique_any(keys)
    out = {k: np.concatenate((a[k], b[k]))[first] for k in ("key", "group", "route", "hi", "lo")}
    for k in ("packets", "bytes", "syn"):
        out[k] = np.bincount(inv, weights=np.concatenate((a[k], b[k])),
                             minlength=len(u)).astype(np.int64)
    if len(u) > MAX_DESTS:
        order = np.lexsort((out["key"], -out["bytes"]))
        drop = order[MAX_DESTS:]
        np.add.at(counts[:, C_UP], out["group"][drop], out["packets"][drop])
        np.add.at(counts[:, C_UB], out["group"][drop], out["bytes"][drop])
        keep = np.sort(order[:MAX_DESTS])
        out = {k: v[keep] for k, v in out.items()}
    return out


# -- reports ------------------------------------------------------------------

def dns_names(entries: list) -> dict:
    """name -> [A set, native AAAA set, synthesized AAAA set] (address
    texts) from ``Nat64State.name_answers``."""
    return {s["name"]: [set(s["a"]), set(s["aaaa_native"]), set(s["aaaa_synthesized"])]
            for s in entries}


def _share(part, whole):
    return part / whole if whole else None


def _pb(p, b):
    return {"packets": int(p), "bytes": int(b)}


def _verdict(v):
    a, native, syn = v
    return ("ipv6_ready" if native else "dns64_only" if syn else "ipv4_only" if a
            else "no_answer")


class _Names:
    """The DNS knowledge the report joins: which names an IPv4 address
    answers for, which addresses belong to dual-stacked names, and which
    names lie under an organisation's domains."""

    def __init__(self, dns):
        self.dns = dns
        self.by_v4 = {}                       # IPv4 address (int) -> names
        native_v4, dual_v4, dual_v6, dual_syn = set(), set(), set(), set()
        for name, (a, native, syn) in dns.items():
            ints = [int(ipaddress.IPv4Address(x)) for x in a]
            for x in ints:
                self.by_v4.setdefault(x, []).append(name)
            if native:
                native_v4.update(ints)
                if a:
                    dual_v4.update(ints)
                    dual_v6.update(int(ipaddress.IPv6Address(x)) for x in native)
                    dual_syn.update(int(ipaddress.IPv6Address(x)) for x in syn)
        self.native_v4 = np.array(sorted(native_v4), dtype=_U)
        self.dual_v4 = np.array(sorted(dual_v4), dtype=_U)
        self.dual_v6 = dual_v6
        self.dual_syn = dual_syn
        self.dual_v6_h = np.unique(hash_words(*_words(dual_v6)))
        self.dual_v4_set = dual_v4

    def under(self, domains_of):
        """{group: verdict counts} of the names under each group's domains
        (``domains_of``: {domain: [groups]}); one walk up each name's
        labels, so the cost is the names' length, not names x domains."""
        out = {}
        for name, v in self.dns.items():
            labels = name.split(".")
            hit = set()
            for k in range(len(labels)):
                for g in domains_of.get(".".join(labels[k:]), ()):
                    hit.add(g)
            if hit:
                verdict = _verdict(v)
                for g in hit:
                    c = out.setdefault(g, {"ipv6_ready": 0, "dns64_only": 0, "ipv4_only": 0,
                                           "no_answer": 0})
                    c[verdict] += 1
        return out


def _words(ints):
    ints = list(ints)
    return (np.array([x >> 64 for x in ints], dtype=_U),
            np.array([x & 0xFFFFFFFFFFFFFFFF for x in ints], dtype=_U))


def report(sc: Scorecard, dns: dict) -> dict:
    """The ``organisations``, ``adoption`` and ``blocking`` sections."""
    sc._consolidate()
    names = _Names(dns)
    n = len(sc.names)
    cnt = sc.counts
    # distinct counts per group (and the whole capture), by category
    cat = (sc.items & _U(7)).astype(np.int64)
    base = sc.items & ~_U(7)
    grp = ((sc.items & _GMASK) >> _GSHIFT).astype(np.int64)
    gi = np.where(grp == _ALL, n, grp)

    def per_group(sel):
        return np.bincount(gi[sel], minlength=n + 1)

    dist = {c: per_group(cat == c) for c in range(7)}
    # IPv4-only clients: with IPv4, without global IPv6
    c4 = np.flatnonzero(cat == CAT_C4)
    both = np.isin(base[c4], base[cat == CAT_C6])
    dist["dual"] = np.bincount(gi[c4[both]], minlength=n + 1)
    # connections to dual-stacked names, per group and route
    d = sc.dest
    route, grp_d, syn = d["route"], d["group"], d["syn"]
    pref = np.zeros((n, 3), dtype=np.int64)
    r0 = route == 0
    sel = r0 & (syn > 0) & np.isin(d["lo"], names.dual_v4)
    pref[:, 0] = np.bincount(grp_d[sel], weights=syn[sel], minlength=n).astype(np.int64)
    sel = (route == 1) & (syn > 0)
    sel[sel] = np.isin(hash_words(d["hi"][sel], d["lo"][sel]), names.dual_v6_h)
    for i in np.flatnonzero(sel).tolist():            # a hash hit: check the address
        if (int(d["hi"][i]) << 64 | int(d["lo"][i])) in names.dual_v6:
            pref[grp_d[i], 1] += syn[i]
    for i in np.flatnonzero((route == 2) & (syn > 0)).tolist():
        a = int(d["hi"][i]) << 64 | int(d["lo"][i])
        raw = a.to_bytes(16, "big")
        v4 = {int.from_bytes(rfc6052.extract(raw, ln), "big")
              for v, ln in sc.nat64 if rfc6052.in_prefix(raw, v, ln)}
        if a in names.dual_syn or v4 & names.dual_v4_set:
            pref[grp_d[i], 2] += syn[i]
    # what blocks IPv6: IPv4 servers none of whose names has a native AAAA
    blk = np.flatnonzero(r0 & ~np.isin(d["lo"], names.native_v4))
    bg, blo, bb, bp = grp_d[blk], d["lo"][blk], d["bytes"][blk], d["packets"][blk]
    blocked = np.bincount(bg, weights=bb, minlength=n).astype(np.int64)
    count = np.bincount(bg, minlength=n)
    order = np.lexsort((blo, -bb, bg))
    bg, blo, bb, bp = bg[order], blo[order], bb[order], bp[order]
    first = np.searchsorted(bg, np.arange(n))
    top = {}
    for g in np.flatnonzero(count).tolist():
        k = int(first[g])
        e = k + min(TOP, int(count[g]))
        top[g] = list(zip(bb[k:e].tolist(), bp[k:e].tolist(), blo[k:e].tolist()))
    ua, inv = unique_inverse(blo)
    ab = np.bincount(inv, weights=bb, minlength=len(ua)).astype(np.int64)
    ap = np.bincount(inv, weights=bp, minlength=len(ua)).astype(np.int64)
    o = np.lexsort((ua, -ab))[:TOP]
    overall_top = list(zip(ab[o].tolist(), ap[o].tolist(), ua[o].tolist()))
    domains_of = {}
    for g, doms in enumerate(sc.domains):
        for dm in doms:
            domains_of.setdefault(dm, []).append(g)
    readiness = names.under(domains_of)

    # organisations listed: those with a frame or a name seen (and the
    # frames of no organisation, always); the others by name only
    seen = cnt.any(axis=1)
    for g, v in readiness.items():
        seen[g] |= any(v.values())
    order = sorted((i for i in range(1, n) if seen[i]), key=lambda i: sc.names[i]) + [0]
    not_seen = sorted(sc.names[i] for i in range(1, n) if not seen[i])
    rows, adoption_rows, blocking_rows = [], [], []
    for i in order:
        row = cnt[i]
        rows.append(_org_row(sc, i, row, dist, readiness.get(i)))
        adoption_rows.append({"organisation": sc.names[i], **_adoption(row, dist, i, pref[i])})
        blocking_rows.append({"organisation": sc.names[i],
                              **_blocking(top.get(i, []), int(blocked[i]), int(count[i]),
                                          int(row[C_B4]), dist, i, names)})
    total = cnt.sum(axis=0)
    return {
        "organisations": {
            "prefixes": sc.prefixes,
            "rows": rows,
            "exact": sc.items_exact,
            "untracked_destinations": _pb(total[C_UP], total[C_UB]),
            "not_seen": not_seen,
        },
        "adoption": {"definitions": {k: DEFINITIONS[k] for k in
                                     ("traffic", "flows", "clients", "ipv6_preferred")},
                     "overall": _adoption(total, dist, n, pref.sum(axis=0)),
                     "by_organisation": adoption_rows},
        "blocking": {"definition": DEFINITIONS["blocking"],
                     "overall": _blocking(overall_top, int(blocked.sum()), len(ua),
                                          int(total[C_B4]), dist, n, names),
                     "by_organisation": blocking_rows},
    }


def _org_row(sc, i, row, dist, readiness):
    total = int(dist[CAT_CLIENT][i])
    capable = int(dist[CAT_C6][i])
    readiness = readiness or {"ipv6_ready": 0, "dns64_only": 0, "ipv4_only": 0, "no_answer": 0}
    doms = sc.domains[i]
    p4, p6, cp4, cp6 = row[C_P4], row[C_P6], row[C_CP4], row[C_CP6]
    b4, b6, cb4, cb6 = row[C_B4], row[C_B6], row[C_CB4], row[C_CB6]
    return {
        "organisation": sc.names[i],
        "group": sc.groups[i],
        "domains": list(doms),
        "payload": {"ipv4": _pb(p4, b4), "ipv6": _pb(p6, b6)},
        "carrier": {"ipv4": _pb(cp4, cb4), "ipv6": _pb(cp6, cb6)},
        "share": {"ipv6_packets": _share(int(p6), int(p4 + p6)),
                  "ipv6_bytes": _share(int(b6), int(b4 + b6)),
                  "carrier_ipv6_packets": _share(int(cp6), int(cp4 + cp6)),
                  "carrier_ipv6_bytes": _share(int(cb6), int(cb4 + cb6))},
        "ipv6": {"native": _pb(row[C_NP], row[C_NB]), "tunnelled": _pb(row[C_TP], row[C_TB])},
        "nat64": _pb(row[C_XP], row[C_XB]),
        "clients": {"total": total, "ipv6_capable": capable,
                    "ipv4_only": int(dist[CAT_C4][i] - dist["dual"][i]),
                    "share_ipv6_capable": _share(capable, total)},
        "names": readiness,
    }


def _both(wire, e2e, whole):
    return {"on_the_wire": _share(int(wire), int(whole)),
            "end_to_end": _share(int(e2e), int(whole))}


def _adoption(row, dist, i, pref):
    f4, f6, fx = (int(dist[c][i]) for c in (CAT_F4, CAT_F6, CAT_FX))
    conns = int(pref.sum())
    return {
        "traffic_packets": _both(row[C_P6], row[C_P6] - row[C_XP], row[C_P4] + row[C_P6]),
        "traffic_bytes": _both(row[C_B6], row[C_B6] - row[C_XB], row[C_B4] + row[C_B6]),
        "flows": _both(f6, f6 - fx, f4 + f6),
        "clients": _both(dist[CAT_C6][i], dist[CAT_C6E][i], dist[CAT_CLIENT][i]),
        "ipv6_preferred": _both(pref[1] + pref[2], pref[1], conns),
        "counts": {"flows": {"ipv4": f4, "ipv6": f6, "nat64": fx},
                   "clients": {"total": int(dist[CAT_CLIENT][i]),
                               "ipv6": int(dist[CAT_C6][i]),
                               "ipv6_end_to_end": int(dist[CAT_C6E][i])},
                   "dual_stacked_connections": {"ipv4": int(pref[0]), "ipv6": int(pref[1]),
                                                "nat64": int(pref[2])}},
    }


def _blocking(top, blocked, count, ipv4_bytes, dist, i, names):
    """``top``: (bytes, packets, IPv4 address as int) of the first entries."""
    out, cum = [], 0
    for b, p, a in top:
        cum += b
        nm = sorted(names.by_v4.get(a, ()))
        out.append({"address": str(ipaddress.IPv4Address(a)), "names": nm[:MAX_NAMES_SHOWN],
                    "names_total": len(nm), "packets": p, "bytes": b,
                    "share_of_ipv4_bytes": _share(b, ipv4_bytes),
                    "cumulative_share": _share(cum, ipv4_bytes)})
    return {"ipv4_bytes": ipv4_bytes, "blocking_bytes": blocked,
            "share_of_ipv4_bytes": _share(blocked, ipv4_bytes),
            "destinations_total": count, "destinations": out,
            "ipv4_only_clients": int(dist[CAT_C4][i] - dist["dual"][i]),
            "clients": int(dist[CAT_CLIENT][i])}
