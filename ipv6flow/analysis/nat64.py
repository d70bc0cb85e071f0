"""NAT64 / DNS64 suspects (REPORT.md section 6) and DNS service readiness.

What is kept while frames stream by:

* ``dns``: per name, the A and AAAA answers seen (with how often, and which
  resolver sent each AAAA), the names tied together by CNAME chains inside
  each response, and the AAAA answers for ``ipv4only.arpa`` (RFC 7050).
* ``pref64``: prefixes from PREF64 options in Router Advertisements.
* ``traffic``: per suspect prefix, packets, bytes, the distinct IPv6
  addresses on the other side (clients) and the distinct embedded IPv4
  addresses (destinations).

Which prefixes are suspects is only known at the end (a DNS64 answer can
come after the traffic through its prefix), so the engine reads the
captures twice when a prefix was *discovered*: the first pass counts the
traffic of the prefixes known from the start (well-known, local-use,
configured) and collects the evidence; the second pass counts only the
traffic of the discovered prefixes. stdin is spooled to a temporary file
so that it can be read twice too (see engine/local.py).

Everything here merges (``merge``) so that parts of a capture analysed
apart give the same figures.
"""

import ipaddress

import numpy as np

from ..compiled import core_function
from ..decode.addresses import MAX_PREFIX_BITS, Prefix, in_prefix, prefix_rows
from ..decode.registry import DNS_PORT, IPPROTO_ICMPV6, IPPROTO_TCP, PORTED, TCP, UDP
from . import dnsmsg, rfc6052
from .sketch import HashSketch, hash_rows, hash_words, relative_error
from .dnsmsg import TYPE_A, TYPE_AAAA, TYPE_CNAME
from .services import verdict

IPV4ONLY = "ipv4only.arpa"
WELL_KNOWN_V4 = (bytes([192, 0, 0, 170]), bytes([192, 0, 0, 171]))   # RFC 7050
ICMPV6_RA = 134
ND_OPT_PREF64 = 38
BUILT_DNS_GROUPS = core_function("dns_groups")
_dns_groups = BUILT_DNS_GROUPS      # tests set None: message by message
MAX_PENDING = 50000    # distinct DNS messages held before they are parsed
MAX_NAMES = 100_000    # names kept (A, AAAA, asked); more are counted as dropped
MAX_PENDING_BYTES = 32 << 20   # bytes of DNS messages held before they are parsed
CACHE_BODY_MAX = 1500  # longer DNS messages are parsed each time, not cached
MAX_PER_NAME = 256     # addresses kept per name, resolvers per address
MAX_PREFIXES = 16      # prefixes kept per kind of evidence (real networks have one or two)
THRESHOLD, P = 4096, 12   # distinct clients and IPv4 destinations: exact up to, then HLL
HASH = "splitmix64"    # the form of ``distinct`` in a report (absent: the earlier BLAKE2b form)


def _addr_text(b: bytes) -> str:
    return str(ipaddress.ip_address(bytes(b)))


class Traffic:
    """Frames seen through one prefix, and its distinct clients (IPv6
    addresses) and embedded IPv4 destinations, mergeable sketches of
    address hashes (sketch.HashSketch, exact up to ``THRESHOLD``).

    The fast path adds a batch's rows as address words (``add_words``);
    the reference path one frame's addresses (``add_frame``), as bytes.
    Both are held and hashed in blocks of about ``BLOCK`` (a batch holds a
    few hundred such rows, and hashing costs mostly per call): the same
    hashes either way, and a set does not depend on the order they came."""

    __slots__ = ("packets", "bytes", "clients", "v4", "_held", "_rows", "_nrows")
    BLOCK = 4096

    def __init__(self):
        self.packets = 0
        self.bytes = 0
        self.clients = HashSketch(THRESHOLD, P)
        self.v4 = HashSketch(THRESHOLD, P)
        self._held = ([], [])         # IPv6 clients, IPv4 destinations (bytes)
        self._rows = []               # add_words' arguments
        self._nrows = 0

    def add(self, clients, v4) -> None:
        """Rows of (n, 16) and (n, 4) uint8 arrays: client and embedded
        IPv4 addresses."""
        self.clients.add(hash_rows(clients))
        self.v4.add(hash_rows(v4))

    def add_words(self, length, s_hi, s_lo, d_hi, d_lo, s_in, d_in) -> None:
        """Rows of source and destination addresses as 64-bit words, and
        whether each side is in the prefix (of ``length``): each inside
        side's embedded IPv4 address, and the client, the other side,
        where only one is inside."""
        self._rows.append((length, s_hi, s_lo, d_hi, d_lo, s_in, d_in))
        self._nrows += len(s_hi)
        if self._nrows >= self.BLOCK:
            self._settle_rows()

    def _settle_rows(self) -> None:
        rows, self._rows, self._nrows = self._rows, [], 0
        length = rows[0][0]
        sh, sl, dh, dl, s_in, d_in = (np.concatenate([r[k] for r in rows]) for k in range(1, 7))
        # hashed from the words, as hash_rows hashes the addresses' bytes
        inside = np.concatenate((rfc6052.embedded_words(sh[s_in], sl[s_in], length),
                                 rfc6052.embedded_words(dh[d_in], dl[d_in], length)))
        one = s_in != d_in
        if not one.all():
            s_in, sh, sl, dh, dl = s_in[one], sh[one], sl[one], dh[one], dl[one]
        self.clients.add(hash_words(np.where(s_in, dh, sh), np.where(s_in, dl, sl)))
        self.v4.add(hash_words(inside))

    def add_frame(self, client, v4s) -> None:
        """One frame's client address (bytes, or None) and embedded IPv4
        addresses."""
        held6, held4 = self._held
        if client is not None:
            held6.append(client)
        held4.extend(v4s)
        if len(held6) + len(held4) >= self.BLOCK:
            self.settle()

    def settle(self) -> "Traffic":
        """Hash what ``add_words`` and ``add_frame`` hold into the sketches."""
        if self._rows:
            self._settle_rows()
        held6, held4 = self._held
        if held6 or held4:
            self._held = ([], [])
            self.add(np.frombuffer(b"".join(held6), dtype=np.uint8).reshape(-1, 16),
                     np.frombuffer(b"".join(held4), dtype=np.uint8).reshape(-1, 4))
        return self

    def merge(self, other):
        self.settle()
        other.settle()
        self.packets += other.packets
        self.bytes += other.bytes
        self.clients.merge(other.clients)
        self.v4.merge(other.v4)

    def distinct(self) -> dict:
        """The ``distinct`` object of a suspect (what a merge needs)."""
        self.settle()
        return {"hash": HASH, "ipv6_clients": self.clients.to_json(),
                "ipv4_destinations": self.v4.to_json()}

    def load(self, dist: dict, prefix: str) -> "Traffic":
        """Merge in a suspect's ``distinct`` object; one of the earlier
        form (items as hex, BLAKE2b HyperLogLog registers) is read when
        its sets are exact, and refused past the threshold, where its
        registers do not merge with these."""
        form = dist.get("hash")
        if form is not None and form != HASH:
            raise ValueError(f"NAT64 prefix {prefix}: distinct counts of hash {form!r}, "
                             f"not {HASH}")
        for sketch, key, width in ((self.clients, "ipv6_clients", 16),
                                   (self.v4, "ipv4_destinations", 4)):
            data = dist[key]
            if form == HASH:
                sketch.load(data)
            elif "hll" in data:
                raise ValueError(
                    f"NAT64 prefix {prefix}: its {key} past {THRESHOLD:,} are an earlier "
                    f"ipv6flow's BLAKE2b HyperLogLog, which does not merge with this "
                    f"version's {HASH} sketches; analyse its captures again")
            else:
                if not isinstance(data["exact"], list):
                    raise ValueError(f"NAT64 prefix {prefix}: {key} are neither hashes "
                                     f"nor a list of addresses")
                items = [bytes.fromhex(x) for x in data["exact"]]
                if any(len(x) != width for x in items):
                    raise ValueError(f"NAT64 prefix {prefix}: {key} are not "
                                     f"{width}-byte addresses")
                rows = np.frombuffer(b"".join(items), dtype=np.uint8).reshape(-1, width)
                sketch.add(hash_rows(rows))
        return self


def response_plan(records):
    """The A and AAAA answers of a response, each with the names it
    answers: its owner and the names that lead to it through the
    response's CNAMEs (at most 64): [(owner, rtype, rdata, names)]. Worked
    out once per distinct message (cached with its parse), applied as often
    as the message was seen."""
    aliases = {}
    for owner, rtype, rdata in records:
        if rtype == TYPE_CNAME:
            aliases.setdefault(rdata, set()).add(owner)

    def names_of(owner):
        out, todo = {owner}, [owner]
        while todo and len(out) < 64:
            for alias in aliases.get(todo.pop(), ()):
                if alias not in out:
                    out.add(alias)
                    todo.append(alias)
        return out

    return [(owner, rtype, rdata, names_of(owner)) for owner, rtype, rdata in records
            if rtype == TYPE_A or rtype == TYPE_AAAA]


class Nat64State:
    """Evidence and traffic of NAT64/DNS64; see the module note."""

    # Packets each traffic frame stands for (sampled input sets the rate:
    # Summary.set_weight); a class default, so pickles and merges keep 1.
    weight = 1

    def __init__(self, configured=()):
        self.configured = set(configured)            # {(value, length)}
        self.a = {}            # name -> {ipv4 bytes: count}
        self.aaaa = {}         # name -> {ipv6 bytes: {resolver text: count}}
        self.queried = set()   # names asked about (answered or not)
        self.responded = set()  # names a response was seen for (with answers or not)
        self.rfc7050 = set()   # {(value, length)}
        self.pref64 = set()
        self.traffic = {}      # (value, length) -> Traffic
        self.malformed = 0
        self._pending = {}     # (DNS message without its ID, resolver) -> times seen
        self._pending_bytes = 0
        self._parsed = {}      # message body -> parse result (a bounded cache)
        # (body, resolver) -> (the counters a response applied in full last
        # time, plain): applied again, while no cap is reached, it only adds
        # to them; plain when its question is known too (_flush)
        self._applied = {}
        self._deferred = {}    # (body, resolver) -> [counters, count] not yet added
        self.dns64_prefixes = set()
        self.names_dropped = 0
        # Queries and answerless responses only matter to the service
        # report (names asked); the fast path skips them otherwise.
        self.want_queries = False
        # Responses without answers (NXDOMAIN, NODATA) matter to the
        # scorecard's "no answer" (organisations with domains); queries do not.
        self.want_answerless = False
        # what merged reports bring (their DNS records are not in a report)
        self.frozen_evidence = {}  # (value, length) -> set of evidence kinds
        self.frozen_synthesized = 0
        self.frozen_resolvers = set()

    # -- static prefixes ----------------------------------------------------
    def static_prefixes(self):
        """Prefixes whose traffic is counted from the first frame on."""
        return sorted({rfc6052.WKP, rfc6052.LOCAL_USE} | self.configured)

    # -- evidence -----------------------------------------------------------
    def observe_dns(self, payload: bytes, resolver: bytes, tcp: bool = False) -> None:
        """A DNS payload (UDP, or a TCP segment) sent by ``resolver`` (its
        address bytes). Messages are not parsed here: identical messages
        (the ID aside) are common, so each distinct one is parsed once, at
        the next ``_flush``, and applied as often as it was seen."""
        self.observe_dns_many(((payload, resolver, tcp),))

    def observe_dns_many(self, items) -> None:
        """``observe_dns`` over ``(payload, resolver, tcp)`` items, in order
        (the fast path hands a batch's payloads at once: one call, not one
        per message)."""
        pending = self._pending
        keep_all = self.want_queries
        answerless = self.want_answerless
        for payload, resolver, tcp in items:
            for msg in (dnsmsg.tcp_messages(payload) if tcp else (payload,)):
                if not keep_all and not (len(msg) >= 12 and msg[2] & 0x80
                                         and (msg[6] or msg[7] or answerless)):
                    continue        # a query or an answerless response: no evidence
                key = (bytes(msg[2:]), bytes(resolver))
                n = pending.get(key)
                if n is None:
                    self._pending_bytes += len(msg)
                    n = 0
                pending[key] = n + 1
            if len(pending) > MAX_PENDING or self._pending_bytes > MAX_PENDING_BYTES:
                self._flush(settle=False)
                pending = self._pending

    def _flush(self, settle=True):
        """Parse and apply what is pending. A response applied in full
        before whose question is known (``_applied``, marked plain) only
        adds to the counters it added to then: those additions wait in
        ``_deferred`` (one entry per message, its counts summed) until
        ``_settle``, which ``settle`` calls at the end; only the answers'
        counts wait, never a name, address, correlation or prefix (what
        ``discovered`` and the caps read), so the engine's flush after
        every batch (``discovered``) leaves them waiting."""
        pending, self._pending = self._pending, {}
        self._pending_bytes = 0
        cache, applied, deferred = self._parsed, self._applied, self._deferred
        full = self._names_full()
        for key, count in pending.items():
            done = applied.get(key)
            if done is not None and done[1] and not full:
                wait = deferred.get(key)
                if wait is not None:
                    wait[1] += count
                    continue
                if len(deferred) >= MAX_PENDING:
                    self._settle()
                    deferred = self._deferred
                deferred[key] = [done[0], count]
                continue
            body, resolver = key
            parsed = cache.get(body)
            if parsed is None:
                parsed = dnsmsg.parsed(b"\0\0" + body)
                parsed = False if parsed is None else \
                    parsed + (response_plan(parsed[4]) if parsed[0] else (),)
                if len(body) <= CACHE_BODY_MAX:     # bounded in bytes too
                    if len(cache) >= MAX_PENDING:
                        cache.clear()
                    cache[body] = parsed
            if parsed is False:
                self.malformed += count
                continue
            response, qname, qtype, rcode, records, plan = parsed
            asked = qname is not None and qtype in (TYPE_A, TYPE_AAAA)
            if asked:
                if qname in self.queried or len(self.queried) < MAX_NAMES:
                    self.queried.add(qname)
                    if response:
                        self.responded.add(qname)
                else:
                    self.names_dropped += count
            if response:
                if done is not None and not full:
                    for d, k in done[0]:
                        d[k] += count
                    continue
                refs = self._response(plan, resolver, count)
                full = self._names_full()
                if refs is not None and len(body) <= CACHE_BODY_MAX:
                    if len(applied) >= MAX_PENDING:
                        applied.clear()
                    # plain: seen again, its question changes nothing
                    applied[key] = (refs, not asked or qname in self.responded)
        if settle:
            self._settle()

    def _settle(self):
        """Add the counts ``_flush`` left waiting."""
        deferred, self._deferred = self._deferred, {}
        for refs, count in deferred.values():
            for d, k in refs:
                d[k] += count

    def _response(self, plan, resolver, count):
        """Apply a response's ``response_plan`` ``count`` times. Returns the
        (dict, key) counters it added to when it applied in full (nothing
        dropped at a cap, nothing left out), else None: applying it again
        then only adds to them (new keys, correlations and RFC 7050
        prefixes come only from a first application)."""
        refs = []
        if self._names_full():
            # bounded memory on a capture of random names: the names already
            # known still gather answers, new ones are only counted
            plan = [r for r in plan if r[0] in self.a or r[0] in self.aaaa]
            self.names_dropped += count
            refs = None
        for owner, rtype, rdata, names in plan:
            if rtype == TYPE_A:
                for name in names:
                    d = self.a.setdefault(name, {})
                    if rdata not in d:
                        if len(d) >= MAX_PER_NAME:
                            self.names_dropped += count
                            refs = None
                            continue
                        self._correlate(name, (rdata,), self.aaaa.get(name, ()))
                    d[rdata] = d.get(rdata, 0) + count
                    if refs is not None:
                        refs.append((d, rdata))
            else:
                for name in names:
                    by_addr = self.aaaa.setdefault(name, {})
                    if rdata not in by_addr:
                        if len(by_addr) >= MAX_PER_NAME:
                            self.names_dropped += count
                            refs = None
                            continue
                        self._correlate(name, self.a.get(name, ()), (rdata,))
                    d = by_addr.setdefault(rdata, {})
                    if resolver in d or len(d) < MAX_PER_NAME:
                        d[resolver] = d.get(resolver, 0) + count
                        if refs is not None:
                            refs.append((d, resolver))
                    else:
                        refs = None
                if IPV4ONLY in names:
                    for v4 in WELL_KNOWN_V4:
                        length = rfc6052.embedding_length(rdata, v4)
                        if length is not None and len(self.rfc7050) < MAX_PREFIXES:
                            self.rfc7050.add((rfc6052.prefix_of(rdata, length), length))
        return refs

    def _names_full(self) -> bool:
        return len(self.a) >= MAX_NAMES or len(self.aaaa) >= MAX_NAMES

    def _correlate(self, name, a4s, a6s):
        """DNS64 evidence: a AAAA of ``name`` that embeds an A of ``name``
        (RFC 6052 position, u octet zero) names the synthesizing prefix."""
        for addr6 in a6s:
            for addr4 in a4s:
                length = rfc6052.embedding_length(addr6, addr4)
                if length is not None:
                    if len(self.dns64_prefixes) < MAX_PREFIXES:
                        self.dns64_prefixes.add((rfc6052.prefix_of(addr6, length), length))
                    break

    def observe_ra(self, icmp: bytes) -> None:
        """An ICMPv6 Router Advertisement (from its type byte): PREF64
        options (RFC 8781) name NAT64 prefixes."""
        off = 16                                     # RA header: 4 + 12 bytes
        while off + 2 <= len(icmp):
            otype, olen = icmp[off], icmp[off + 1] * 8
            if olen == 0:
                self.malformed += 1
                return
            if otype == ND_OPT_PREF64 and olen == 16 and off + 16 <= len(icmp):
                plc = icmp[off + 3] & 0x07
                length = rfc6052.PLC_LENGTHS.get(plc)
                if length is not None and len(self.pref64) < MAX_PREFIXES:
                    value = int.from_bytes(icmp[off + 4:off + 16] + bytes(4), "big")
                    self.pref64.add((value >> (128 - length) << (128 - length), length))
            off += olen

    # -- conclusions ---------------------------------------------------------
    def dns64(self):
        """(prefixes found by DNS64 correlation, synthesized AAAA count,
        resolvers that sent them, {name: set of synthesized AAAA})."""
        self._flush()
        prefixes, resolvers, synthesized = set(), set(), {}
        count = 0
        for name, aaaas in self.aaaa.items():
            a4 = self.a.get(name)
            if not a4:
                continue
            for addr6, by_resolver in aaaas.items():
                for addr4 in a4:
                    length = rfc6052.embedding_length(addr6, addr4)
                    if length is not None:
                        prefixes.add((rfc6052.prefix_of(addr6, length), length))
                        synthesized.setdefault(name, set()).add(addr6)
                        resolvers.update(by_resolver)
                        break
        # Each occurrence counts once, whichever of its names matched.
        seen = set()
        for name, addrs in synthesized.items():
            for addr6 in addrs:
                for resolver, n in self.aaaa[name][addr6].items():
                    key = (addr6, resolver)
                    if key not in seen:
                        seen.add(key)
                        count += n
        return prefixes, count, resolvers, synthesized

    def discovered(self):
        """Prefixes named by evidence, with the evidence kinds."""
        self._flush(settle=False)         # (what it reads takes no count)
        out = {}
        for p in self.rfc7050:
            out.setdefault(p, set()).add("rfc7050")
        for p in self.pref64:
            out.setdefault(p, set()).add("pref64")
        for p in self.dns64_prefixes:
            out.setdefault(p, set()).add("dns64")
        for p in self.configured:
            out.setdefault(p, set()).add("configured")
        for p, ev in self.frozen_evidence.items():
            ev = ev - {"traffic"}
            if ev:
                out.setdefault(p, set()).update(ev)
        return out

    # -- traffic --------------------------------------------------------------
    def add_frame(self, prefixes, src6: bytes, dst6: bytes, wirelen: int) -> None:
        """Count one frame for every prefix its innermost IPv6 source or
        destination is in."""
        s, d = int.from_bytes(src6, "big"), int.from_bytes(dst6, "big")
        for value, length in prefixes:
            s_in, d_in = in_prefix(s, value, length), in_prefix(d, value, length)
            if not (s_in or d_in):
                continue
            t = self.traffic.get((value, length))
            if t is None:
                t = self.traffic[(value, length)] = Traffic()
            t.packets += self.weight
            t.bytes += wirelen * self.weight
            t.add_frame(bytes(dst6 if s_in else src6) if s_in != d_in else None,
                        [rfc6052.extract(addr, length)
                         for addr, inside in ((src6, s_in), (dst6, d_in)) if inside])

    def add_traffic(self, prefixes, c, bits=None) -> None:
        """``add_frame`` over the rows of columns ``c`` (IPv6 payloads with
        addresses: ``v6s_hi`` .. ``v6d_lo`` and ``wire``), whichever decoder
        made them. ``bits``: the rows' source and destination bits over
        ``prefixes`` (addresses.prefix_rows; at most MAX_PREFIX_BITS
        prefixes), when the caller has them."""
        # each prefix tested in full: one found in the capture may sit in a
        # /32 that carries most of it (2001:db8::/32 in the corpus)
        prefixes = list(prefixes)
        if bits is None:
            for at in range(0, len(prefixes), MAX_PREFIX_BITS):
                part = prefixes[at:at + MAX_PREFIX_BITS]
                rows, s_bits, d_bits = prefix_rows(
                    c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"],
                    np.ones(len(c["wire"]), dtype=bool), part)
                self.add_traffic(part, {k: c[k][rows] for k in _TRAFFIC}, (s_bits, d_bits))
            return
        s_hi, s_lo, d_hi, d_lo = c["v6s_hi"], c["v6s_lo"], c["v6d_hi"], c["v6d_lo"]
        s_bits, d_bits = bits
        # the prefixes some row is in (most batches: one, holding them all)
        present = int(np.bitwise_or.reduce(s_bits | d_bits)) if len(s_bits) else 0
        for p, (value, length) in enumerate(prefixes):
            bit = 1 << p
            if not present & bit:
                continue
            if present == bit:          # every row is this prefix's
                s_in, d_in = s_bits != 0, d_bits != 0
                sh, sl, dh, dl, wire = s_hi, s_lo, d_hi, d_lo, c["wire"]
            else:
                s_in, d_in = (s_bits & np.uint64(bit)) != 0, (d_bits & np.uint64(bit)) != 0
                hit = np.flatnonzero(s_in | d_in)
                s_in, d_in = s_in[hit], d_in[hit]
                sh, sl, dh, dl, wire = s_hi[hit], s_lo[hit], d_hi[hit], d_lo[hit], c["wire"][hit]
            t = self.traffic.get((value, length))
            if t is None:
                t = self.traffic[(value, length)] = Traffic()
            t.packets += len(wire) * self.weight
            t.bytes += int(wire.sum()) * self.weight
            t.add_words(length, sh, sl, dh, dl, s_in, d_in)

    def observe_dns_segments(self, buf, start, stop, tcp, src, src_end) -> None:
        """``observe_dns`` over the DNS segments of a batch: arrays of byte
        offsets into ``buf`` (payload ``start``:``stop``, ``tcp``, sender
        address ``src``:``src_end``). Without the service report only
        responses with answers carry evidence (and answerless ones for the
        scorecard's "no answer"): the QR bit and the answer count pick them
        out before any slicing. (TCP segments may hold several messages:
        they are all kept and filtered message by message.)"""
        if not len(start):
            return
        view = memoryview(buf)
        if _dns_groups is not None and self._observe_grouped(buf, view, start, stop, tcp, src,
                                                             src_end):
            return
        if not self.want_queries:
            b = np.frombuffer(buf, dtype=np.uint8)
            qr = np.take(b, start + 2, mode="clip") & 0x80
            answers = (np.take(b, start + 6, mode="clip").astype(np.int64) << 8) \
                | np.take(b, start + 7, mode="clip")
            resp = tcp | ((start + 12 <= stop) & (qr != 0) & ((answers > 0) | self.want_answerless))
            start, stop, tcp, src, src_end = (a[resp] for a in (start, stop, tcp, src, src_end))
        self.observe_dns_many((view[a:b], view[c:d], t) for a, b, t, c, d in zip(
            start.tolist(), stop.tolist(), tcp.tolist(), src.tolist(), src_end.tolist()))

    def _observe_grouped(self, buf, view, start, stop, tcp, src, src_end) -> bool:
        """``observe_dns_many`` over the segments, each distinct message
        (the ID aside, with its sender) handled once with its count, when
        that changes nothing: _core.c ``dns_groups`` finds the messages that
        carry evidence (TCP segments split as ``dnsmsg.tcp_messages`` does)
        and groups them, with their counts; they go into ``_pending`` in
        the order of first appearance with the same counts, and no flush
        would have come within the batch (else False, with nothing done).
        A batch holds the same few messages many times over (2 M generated
        frames: 83,909 DNS responses, 1,740 distinct a batch summed)."""
        # room for every segment's message and a few TCP segments with more
        # (past it: the per-message path)
        groups = np.empty((5, 2 * len(start) + 64), dtype=np.int64)
        g = _dns_groups(buf, *(np.ascontiguousarray(a, dtype=np.int64) for a in (start, stop)),
                        np.ascontiguousarray(tcp, dtype=np.uint8),
                        *(np.ascontiguousarray(a, dtype=np.int64) for a in (src, src_end)),
                        self.want_queries, self.want_answerless, dnsmsg.MAX_RECORDS,
                        groups.reshape(-1))
        if g < 0:
            return False
        pending = self._pending
        items, new, new_bytes = [], 0, 0
        for a, b, c, d, count in zip(*groups[:, :g].tolist()):
            key = (bytes(view[a + 2:b]), bytes(view[c:d]))
            if key not in pending:
                new += 1
                new_bytes += b - a
            items.append((key, count, b - a))
        if len(pending) + new > MAX_PENDING or self._pending_bytes + new_bytes > MAX_PENDING_BYTES:
            return False
        for key, count, size in items:
            n = pending.get(key)
            if n is None:
                self._pending_bytes += size
                n = 0
            pending[key] = n + count
        return True

    def observe_icmpv6(self, buf, start, stop) -> None:
        """``observe_ra`` over the ICMPv6 messages ``buf[start:stop]`` of a
        batch that are Router Advertisements."""
        if not len(start):
            return
        ra = np.take(np.frombuffer(buf, dtype=np.uint8), start, mode="clip") == ICMPV6_RA
        for a, b in zip(start[ra].tolist(), stop[ra].tolist()):
            self.observe_ra(bytes(buf[a:b]))

    def __getstate__(self):
        """For other processes: parse what is pending, leave the cache."""
        self._flush()
        for t in self.traffic.values():
            t.settle()
        state = dict(self.__dict__)
        state["_parsed"] = {}
        state["_applied"] = {}
        state["_deferred"] = {}           # settled by the flush above
        return state

    # -- merging and reporting -------------------------------------------------
    def merge(self, other: "Nat64State") -> "Nat64State":
        out = Nat64State(self.configured | other.configured)
        for st in (self, other):
            st._flush()
            for name, d in st.a.items():
                t = out.a.setdefault(name, {})
                for k, v in d.items():
                    t[k] = t.get(k, 0) + v
            for name, d in st.aaaa.items():
                t = out.aaaa.setdefault(name, {})
                for addr, by in d.items():
                    tt = t.setdefault(addr, {})
                    for r, v in by.items():
                        tt[r] = tt.get(r, 0) + v
            out.queried |= st.queried
            out.responded |= st.responded
            out.rfc7050 |= st.rfc7050
            out.pref64 |= st.pref64
            for p, tr in st.traffic.items():
                out.traffic.setdefault(p, Traffic()).merge(tr)
            out.malformed += st.malformed
            out.names_dropped += st.names_dropped
            for p, ev in st.frozen_evidence.items():
                out.frozen_evidence.setdefault(p, set()).update(ev)
            out.frozen_synthesized += st.frozen_synthesized
            out.frozen_resolvers |= st.frozen_resolvers
        # An A seen in one part may pair with a AAAA seen in the other.
        out.dns64_prefixes = out.dns64()[0]
        return out

    def report(self) -> dict:
        """The ``nat64`` object of the report."""
        evidence = self.discovered()
        for p, tr in self.traffic.items():
            if tr.packets:
                evidence.setdefault(p, set()).add("traffic")
        suspects = []
        for (value, length), ev in sorted(evidence.items()):
            tr = self.traffic.get((value, length), Traffic()).settle()
            suspects.append({
                "prefix": rfc6052.prefix_text(value, length),
                "kind": rfc6052.kind_of(value, length),
                "evidence": sorted(ev),
                "packets": tr.packets,
                "bytes": tr.bytes,
                "ipv6_clients": len(tr.clients),
                "ipv4_destinations": len(tr.v4),
                "distinct": tr.distinct(),
            })
        _, count, resolvers, _ = self.dns64()
        count += self.frozen_synthesized
        resolvers = set(resolvers) | self.frozen_resolvers
        return {"suspects": suspects,
                "dns64": {"synthesized_answers": count,
                          "resolvers": [_addr_text(r) for r in sorted(resolvers, key=_sort_ip)]},
                "malformed_dns": self.malformed,
                "dns_names_dropped": self.names_dropped,
                "distinct_counts": {"exact_up_to": THRESHOLD, "sketch": "hyperloglog",
                                    "relative_error": round(relative_error(P), 4)}}

    @classmethod
    def from_report(cls, nat: dict, configured=()) -> "Nat64State":
        """The state a finished report's ``nat64`` object stands for."""
        st = cls(configured)
        for sp in nat["suspects"]:
            net = ipaddress.IPv6Network(sp["prefix"])
            p = Prefix(int(net.network_address), net.prefixlen)
            st.frozen_evidence[p] = set(sp["evidence"])
            t = st.traffic[p] = Traffic()
            t.packets, t.bytes = sp["packets"], sp["bytes"]
            dist = sp.get("distinct") or {}
            if "ipv6_clients" in dist:
                t.load(dist, sp["prefix"])
        st.frozen_synthesized = nat["dns64"]["synthesized_answers"]
        st.frozen_resolvers = {ipaddress.ip_address(r).packed for r in nat["dns64"]["resolvers"]}
        st.malformed = nat.get("malformed_dns", 0)
        return st

    def name_answers(self, suffixes=(), responses=False) -> list:
        """Per name asked about: A, native AAAA, synthesized AAAA, verdict
        (the entries of the DNS service-readiness report, analysis/services.py).
        With ``responses``, every name a response was seen for or answered
        instead, whatever queries were kept: the scorecard's names."""
        self._flush()
        _, _, _, synthesized = self.dns64()
        prefixes = [p for p in self.discovered()] + [rfc6052.WKP, rfc6052.LOCAL_USE]
        # One entry per name asked about (in a query or a response); the
        # records at the end of a CNAME chain belong to the asked name.
        names = set(self.queried)
        if responses:
            names = self.responded | set(self.a) | set(self.aaaa)
        if suffixes:
            names = {n for n in names if any(n == s or n.endswith("." + s) for s in suffixes)}
        out = []
        for name in sorted(names):
            a = sorted(self.a.get(name, {}), key=bytes)
            syn, native = [], []
            for addr in sorted(self.aaaa.get(name, {}), key=bytes):
                if addr in synthesized.get(name, ()) or any(
                        rfc6052.in_prefix(addr, v, ln) for v, ln in prefixes):
                    syn.append(addr)
                else:
                    native.append(addr)
            out.append({"name": name, "a": [_addr_text(x) for x in a],
                        "aaaa_native": [_addr_text(x) for x in native],
                        "aaaa_synthesized": [_addr_text(x) for x in syn],
                        "verdict": verdict(native, syn, a)})
        return out


_TRAFFIC = ("v6s_hi", "v6s_lo", "v6d_hi", "v6d_lo", "wire")     # the columns add_traffic reads


def _sort_ip(raw: bytes):
    """IPv4 before IPv6, each in numeric order."""
    return (len(raw), raw)


def prefixes_at(prefixes, limits, index):
    """The prefixes to count at frame ``index`` of a file, given per-prefix
    exclusive limits (None: every frame)."""
    if not limits:
        return prefixes
    return [p for p in prefixes if limits.get(p) is None or index < limits[p]]


def dns_payload(d: bytes, proto: int, off: int, end: int):
    """(payload, over_tcp) of a UDP or TCP segment to or from port 53, or
    None. ``off`` is the transport header, ``end`` the packet's end."""
    if proto not in PORTED:
        return None
    tcp = proto == IPPROTO_TCP
    if off + (TCP.LEN if tcp else UDP.LEN) > end:
        return None
    # TCP and UDP put their ports at the same offsets
    if (d[off + UDP.SPORT] << 8 | d[off + UDP.SPORT + 1]) != DNS_PORT \
            and (d[off + UDP.DPORT] << 8 | d[off + UDP.DPORT + 1]) != DNS_PORT:
        return None
    if not tcp:
        ulen = d[off + UDP.ULEN] << 8 | d[off + UDP.ULEN + 1]
        if ulen < UDP.LEN or off + ulen > end:
            # Cut by the snap length, or the first fragment of a datagram:
            # not a whole message, and not a malformed one either.
            return None
        return bytes(d[off + UDP.LEN:off + ulen]), False
    doff = (d[off + TCP.DOFF] >> 4) * 4
    if doff < TCP.LEN or off + doff > end:
        return None
    return bytes(d[off + doff:end]), True


def inspect_frame(state: Nat64State, f, d: bytes, wirelen: int, prefixes, observe=True):
    """Feed one reference-decoded frame to ``state``: NAT64 traffic for
    ``prefixes``, and (with ``observe``) DNS answers and RA options."""
    if prefixes and f.payload == "ipv6" and f.src6 is not None:
        state.add_frame(prefixes, f.src6, f.dst6, wirelen)
    if not observe or f.l4_off is None or f.payload == "non_ip":
        return
    off, end = f.l4_off, min(f.l4_end, len(d))
    if f.proto in PORTED:
        found = dns_payload(d, f.proto, off, end)
        if found is not None:
            src = f.src6 if f.payload == "ipv6" else f.src4
            state.observe_dns(found[0], src, found[1])
    elif f.proto == IPPROTO_ICMPV6 and f.payload == "ipv6" and off < end and d[off] == ICMPV6_RA:
        state.observe_ra(bytes(d[off:end]))
