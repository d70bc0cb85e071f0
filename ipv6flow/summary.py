"""The mergeable Summary behind every report (STYLE habit 8).

Frames are first folded into a small table keyed by everything the report
needs to know about a frame (views, tunnel, transport, extension headers,
anomalies, address classes, decode problem): real traffic has few distinct
keys, so adding a frame is one dict update, and a vectorized decoder can
add whole batches of identical keys at once. The table is expanded into
the report's counters only when a report is made.

A Summary also reads a report back (``from_report``), so merging earlier
reports and merging in-process Summaries are the same operation:
``merge`` adds every counter, unions inputs, and takes min/max of times.
It is associative and commutative; ``Summary()`` is its identity.
"""

import math

from . import __version__
from .analysis.nat64 import Nat64State
from .analysis.population import Population
from .analysis.sampling import SamplingState
from .analysis.services import merge_reports as merge_services
from .analysis.translation import TranslationState
from .decode.addresses import ADDRESS_CLASSES
from .decode.columns import columns_of, frame_columns
from .decode.frame import frame_key
from .decode.registry import ANOMALIES, EXT_TYPES, FAMILIES, TRANSPORT_KEYS, TUNNEL_KINDS
from .options import DEFAULT_INTERVAL, MIN_INTERVAL

SCHEMA_ID = "ipv6flow/report/1"
DECODE_KEYS = ("malformed", "truncated", "unsupported_linktype", "depth_exceeded")
MAX_BINS = 50_000           # time bins held (a month of one-minute bins)


def _scorecard():
    """analysis.scorecard, imported when --org-map (or a report holding a
    scorecard) asks for it: with the org map reader it is about 16 ms of
    start-up (socket, csv, hashlib, secrets) that other runs need not pay."""
    from .analysis import scorecard
    return scorecard


def pb(packets=0, nbytes=0):
    return {"packets": packets, "bytes": nbytes}


def _empty_counts():
    return {
        "totals": pb(),
        "carrier": {k: pb() for k in FAMILIES},
        "payload": {k: pb() for k in FAMILIES},
        "ipv6": {"native": pb(), "tunnelled": pb()},
        "tunnels": {k: pb() for k in TUNNEL_KINDS},
        "extension_headers": {
            "frames_with_any": 0,
            "by_type": {k: 0 for k in EXT_TYPES},
            "routing_types": {},
            "chain_length": {},
            "anomalies": {k: 0 for k in ANOMALIES},
        },
        "transport": {fam: {k: 0 for k in keys} for fam, keys in TRANSPORT_KEYS.items()},
        "addresses": {"ipv6": {k: 0 for k in ADDRESS_CLASSES}},
        "decode": {k: 0 for k in DECODE_KEYS},
    }


def _add_counts(dst, src):
    """Add nested counters of the same shape; keys missing in dst appear."""
    for k, v in src.items():
        if isinstance(v, dict):
            _add_counts(dst.setdefault(k, {}), v)
        else:
            dst[k] = dst.get(k, 0) + v


def _add_pb(d, key, packets, nbytes):
    e = d.setdefault(key, pb())
    e["packets"] += packets
    e["bytes"] += nbytes


def _expand(counts, key, packets, nbytes):
    (carrier, payload, tunnel, transport, ext, rtypes, chain_len, anomalies,
     classes, problem) = key
    t = counts["totals"]
    t["packets"] += packets
    t["bytes"] += nbytes
    _add_pb(counts["carrier"], carrier, packets, nbytes)
    _add_pb(counts["payload"], payload, packets, nbytes)
    if payload == "ipv6":
        _add_pb(counts["ipv6"], "native" if carrier == "ipv6" else "tunnelled", packets, nbytes)
    _add_pb(counts["tunnels"], tunnel, packets, nbytes)
    eh = counts["extension_headers"]
    if ext:
        eh["frames_with_any"] += packets
    for name in ext:
        eh["by_type"][name] += packets
    for rt in rtypes:
        k = str(rt)
        eh["routing_types"][k] = eh["routing_types"].get(k, 0) + packets
    if chain_len is not None:
        k = str(chain_len)
        eh["chain_length"][k] = eh["chain_length"].get(k, 0) + packets
    for a in anomalies:
        eh["anomalies"][a] += packets
    if transport is not None:
        counts["transport"][payload][transport] += packets
    for c in classes:
        counts["addresses"]["ipv6"][c] += packets
    if problem is not None:
        counts["decode"][problem] += packets


def _bin(start, b, flows):
    out = {"start": start, "ipv4": pb(b[0], b[1]), "ipv6": pb(b[2], b[3]),
           "carrier": {"ipv4": pb(b[4], b[5]), "ipv6": pb(b[6], b[7])}}
    if flows is not None:
        out["flows"] = flows
    return out


def _share(part, whole):
    return part / whole if whole else None


class Summary:
    """Mergeable figures of one or more inputs."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, nat64_prefixes=(), opts=None):
        if not interval >= MIN_INTERVAL or not math.isfinite(interval):
            raise ValueError("interval must be at least a microsecond (in seconds)")
        self.interval = float(interval)
        self.inputs = []
        self.first = None
        self.last = None
        self._keys = {}          # frame key -> [packets, bytes]
        self._counts = _empty_counts()
        # bin index -> packets and bytes of IPv4 and IPv6, payload view then
        # carrier view: [p4, b4, p6, b6, carrier p4, b4, p6, b6]
        self._bins = {}
        self.bin_overflow = [0, 0]   # IP frames whose bin was past MAX_BINS
        self.nat64 = Nat64State(nat64_prefixes)
        # IPv4 as a service: NAT64/464XLAT, DS-Lite, lw4o6, MAP-E, MAP-T
        # (left out of sampled input, as clients and flows: samples hold no
        # flows, clients or destinations to count)
        self.translation = (TranslationState(nat64_prefixes, opts.aftr, opts.map_rules,
                                             enabled=not opts.sflow_port)
                            if opts is not None else TranslationState(nat64_prefixes))
        # clients and flows, by the options' client key (None: not set yet)
        self.population = (Population(opts.client_key, opts.client_prefixes)
                           if opts is not None else Population())
        # the scorecard of --org-map (organisations, adoption, blocking)
        org_map = getattr(opts, "org_map", None)
        self.scorecard = (_scorecard().Scorecard(org_map, self.nat64.static_prefixes())
                          if org_map is not None else None)
        self.nat64.want_answerless = self.wants_names
        self._rows = []          # reference frames' columns, observed in blocks
        self.services = None     # the DNS service report, when asked for
        # sampled input (sFlow): what each frame stands for, and the
        # ``sampling`` section (analysis/sampling.py); None: exact input
        self.weight = 1
        self.sampling = (SamplingState() if opts is not None and opts.sflow_port else None)

    # -- adding -----------------------------------------------------------
    def add(self, f, ts: float, wirelen: int, linktype=None, data=None) -> None:
        """Count one decoded frame. With its ``linktype`` and ``data`` the
        frame also counts towards clients and flows (the fast path hands
        those over as arrays instead)."""
        key = frame_key(f)
        w = self.weight
        if self.sampling is not None:
            key = self.sampling.sampled(key, 1, wirelen * wirelen)
        e = self._keys.get(key)
        if e is None:
            self._keys[key] = [w, wirelen * w]
        else:
            e[0] += w
            e[1] += wirelen * w
        self.add_time(ts, f.payload, f.carrier, 1, wirelen)
        if linktype is not None and self.wants_columns:
            row = frame_columns(f, linktype, data, ts, wirelen)
            if row is not None:
                self._rows.append(row)
                if len(self._rows) >= Population.FLUSH_EVERY:
                    self._flush_rows()

    @property
    def wants_columns(self) -> bool:
        """Whether frames' columns are counted (clients, flows, scorecard,
        translation)."""
        return self.wants_all_columns or self.translation.enabled

    @property
    def wants_all_columns(self) -> bool:
        """Whether every IP frame's columns are (translation alone needs
        only its candidate rows': the fast path picks those first)."""
        return self.population.enabled or self.scorecard is not None

    @property
    def wants_names(self) -> bool:
        """Whether DNS responses without answers matter (organisations with
        domains: their names' "no answer")."""
        return self.scorecard is not None and self.scorecard.map is not None \
            and self.scorecard.map.wants_names

    def count_nat64(self, prefixes) -> None:
        """NAT64 prefixes found in the capture: translation counts their
        traffic from here on (the frames before are the engine's second
        pass, engine/local.py)."""
        tr = self.translation
        if tr.enabled and not set(prefixes) <= set(tr.nat64_prefixes):
            self._flush_rows()          # the frames buffered came before
            tr.add_prefixes(prefixes, self.interval)

    def _flush_rows(self):
        if self._rows:
            rows, self._rows = self._rows, []
            self.observe_columns(columns_of(rows))

    def observe_columns(self, c) -> None:
        """Clients, flows, the scorecard and translation of column arrays
        (population.py)."""
        if not len(c["fam"]):
            return
        pop = self.population
        d = pop.derive(c) if self.scorecard is not None else None
        if pop.enabled:
            pop.observe(c, self.interval, d)
        if self.scorecard is not None:
            self.scorecard.observe(c, d["side"], d["tag"], d["value"], d["flow_h"],
                                   d["flow_keyed"])
        if self.translation.enabled:
            self.translation.observe(c, c["wire"], self.interval)

    def add_key(self, key, packets: int, nbytes: int, squares: int = 0) -> None:
        """Count ``packets`` frames with the same ``frame_key`` at once
        (``squares``: the sum of their lengths squared, for sampled input)."""
        if self.sampling is not None:
            key = self.sampling.sampled(key, packets, squares)
        w = self.weight
        packets, nbytes = packets * w, nbytes * w
        e = self._keys.get(key)
        if e is None:
            self._keys[key] = [packets, nbytes]
        else:
            e[0] += packets
            e[1] += nbytes

    def add_span(self, first: float, last: float) -> None:
        if self.first is None or first < self.first:
            self.first = first
        if self.last is None or last > self.last:
            self.last = last

    def add_bin(self, idx: int, payload: str, carrier: str, packets: int, nbytes: int) -> None:
        """Add IP frames to time bin ``idx`` (start ``idx * interval``)."""
        packets, nbytes = packets * self.weight, nbytes * self.weight
        b = self._bin_row(idx, packets, nbytes)
        if b is None:
            return
        i = 0 if payload == "ipv4" else 2
        b[i] += packets
        b[i + 1] += nbytes
        i = 4 if carrier == "ipv4" else 6
        b[i] += packets
        b[i + 1] += nbytes

    def add_bin_sums(self, idx: int, sums) -> None:
        """``add_bin`` of every family of bin ``idx`` at once: ``sums`` are
        its eight counters as the bin holds them (payload IPv4 packets,
        bytes, payload IPv6 ..., carrier IPv4 ..., carrier IPv6 ...)."""
        w = self.weight
        b = self._bin_row(idx, (sums[0] + sums[2]) * w, (sums[1] + sums[3]) * w)
        if b is None:
            return
        for i in range(8):
            b[i] += sums[i] * w

    def _bin_row(self, idx: int, packets: int, nbytes: int):
        """Bin ``idx``'s eight counters, made if new; None when no more bins
        may be held: timestamps spread over more bins than memory should
        hold (a hostile or broken clock) are counted (``packets``, ``nbytes``,
        weighted), not binned."""
        b = self._bins.get(idx)
        if b is None:
            if len(self._bins) >= MAX_BINS:
                self.bin_overflow[0] += packets
                self.bin_overflow[1] += nbytes
                return None
            b = self._bins[idx] = [0] * 8
        return b

    def add_time(self, ts, payload, carrier, packets, nbytes):
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        if payload != "non_ip":
            self.add_bin(math.floor(ts / self.interval), payload, carrier, packets, nbytes)

    def set_weight(self, rate: int, cut: bool) -> None:
        """The frames added from now on are samples of 1 in ``rate``
        packets, ``cut``: their headers shorter than the frames."""
        self.weight = rate
        self.nat64.weight = rate
        self.sampling.rate, self.sampling.cut = rate, cut

    def add_input(self, entry: dict) -> None:
        self.inputs.append(entry)

    def _flush(self):
        for key, (p, b) in self._keys.items():
            _expand(self._counts, key, p, b)
        self._keys.clear()

    # -- merging ----------------------------------------------------------
    def __getstate__(self):
        """For other processes (a worker's part, a streamed chunk): what
        is buffered is counted first, as ``merge`` would count it in the
        parent, so that work runs in the worker beside the other parts
        (on the real corpus mix with two workers, 17 ms of the parent's
        merge went to classifying translation rows). Counting buffered
        rows changes no figure: merge and the report count them first
        anyway, with the same prefixes."""
        self._flush_rows()
        self.translation.flush(self.interval)
        self.population.flush(self.interval)
        self._flush()
        return self.__dict__

    def merge(self, other: "Summary") -> "Summary":
        """A new Summary holding both; neither operand is changed."""
        if self.interval != other.interval:
            raise ValueError(f"cannot merge reports with intervals {self.interval} s "
                             f"and {other.interval} s")
        out = Summary(self.interval)
        for s in (self, other):
            s._flush_rows()          # the buffered rows count before anything merges
        out.nat64 = self.nat64.merge(other.nat64)
        out.translation = self.translation.merge(other.translation, self.interval)
        out.population = self.population.merge(other.population, self.interval)
        out.services = merge_services(self.services, other.services)
        if self.sampling is not None or other.sampling is not None:
            out.sampling = (self.sampling or other.sampling).merge(
                other.sampling if self.sampling is not None else None)
        if self.scorecard is None or other.scorecard is None:
            without = self if self.scorecard is None else other
            if (self.scorecard or other.scorecard) is not None and without.inputs:
                # its frames would be in no row of the organisation table
                raise ValueError("cannot merge reports made with --org-map and without one "
                                 "(organisations are counted while the capture is read)")
            out.scorecard = self.scorecard or other.scorecard
        else:
            out.scorecard = self.scorecard.merge(other.scorecard)
        if out.scorecard is not None and out.scorecard is (self.scorecard or other.scorecard):
            out.scorecard = out.scorecard.merge(_scorecard().Scorecard())
        for s in (self, other):
            s._flush()
            _add_counts(out._counts, s._counts)
            out.inputs.extend(s.inputs)
            for idx, b in s._bins.items():
                t = out._bins.setdefault(idx, [0] * 8)
                for i in range(8):
                    t[i] += b[i]
            out.bin_overflow = [x + y for x, y in zip(out.bin_overflow, s.bin_overflow)]
            for ts in (s.first, s.last):
                if ts is not None:
                    out.first = ts if out.first is None else min(out.first, ts)
                    out.last = ts if out.last is None else max(out.last, ts)
        return out

    # -- reports ----------------------------------------------------------
    def counts(self) -> dict:
        self._flush()
        self._flush_rows()
        self.population.flush(self.interval)
        return self._counts

    def to_report(self, partial: bool = False) -> dict:
        """The JSON report of REPORT.md section 7 (plain dicts, stable order).
        ``partial``: the run was interrupted (options.RunResult says so; the
        Summary holds figures only)."""
        c = self.counts()
        ip_p = c["payload"]["ipv4"]["packets"] + c["payload"]["ipv6"]["packets"]
        ip_b = c["payload"]["ipv4"]["bytes"] + c["payload"]["ipv6"]["bytes"]
        cip_p = c["carrier"]["ipv4"]["packets"] + c["carrier"]["ipv6"]["packets"]
        cip_b = c["carrier"]["ipv4"]["bytes"] + c["carrier"]["ipv6"]["bytes"]
        eh = c["extension_headers"]
        pop = self.population
        clients, flows = pop.report() if pop.enabled else (None, None)
        bin_flows = pop.bin_flows
        report = {
            "schema": SCHEMA_ID,
            "tool": {"name": "ipv6flow", "version": __version__},
            "inputs": list(self.inputs),
            "time": {"first": self.first, "last": self.last},
            "totals": dict(c["totals"]),
            "carrier": c["carrier"],
            "payload": c["payload"],
            "ipv6": c["ipv6"],
            "share": {
                "ipv6_packets": _share(c["payload"]["ipv6"]["packets"], ip_p),
                "ipv6_bytes": _share(c["payload"]["ipv6"]["bytes"], ip_b),
                "carrier_ipv6_packets": _share(c["carrier"]["ipv6"]["packets"], cip_p),
                "carrier_ipv6_bytes": _share(c["carrier"]["ipv6"]["bytes"], cip_b),
            },
            "tunnels": c["tunnels"],
            "extension_headers": {
                "frames_with_any": eh["frames_with_any"],
                "by_type": eh["by_type"],
                "routing_types": dict(sorted(eh["routing_types"].items(), key=lambda kv: int(kv[0]))),
                "chain_length": dict(sorted(eh["chain_length"].items(), key=lambda kv: int(kv[0]))),
                "anomalies": eh["anomalies"],
            },
            "transport": c["transport"],
            "addresses": c["addresses"],
            "nat64": self.nat64.report(),
            "translation": self.translation.report(self.nat64, self.interval),
            **({"clients": clients, "flows": flows} if pop.enabled else {}),
            "decode": c["decode"],
            **({"sampling": self.sampling.report(c)} if self.sampling is not None else {}),
            "timeseries": {
                "interval_s": self.interval,
                "bins": [_bin(idx * self.interval, b, bin_flows(idx))
                         for idx, b in sorted(self._bins.items())],
                "overflow": pb(*self.bin_overflow),
            },
        }
        if self.services is not None:
            report["services"] = self.services
        sc = self.scorecard
        if sc is not None:
            dns = _scorecard().dns_names(self.nat64.name_answers((), responses=True))
            for name, v in sc.dns.items():
                e = dns.setdefault(name, [set(), set(), set()])
                for a, b in zip(e, v):
                    a |= b
            # an address both native and synthesized (merged parts) is synthesized
            for v in dns.values():
                v[1] -= v[2]
            report.update(_scorecard().report(sc, dns))
        if partial:
            report["partial"] = True
        if pop.enabled:
            report["sketches"] = pop.sketches(self.interval)     # for merging; last
        if sc is not None:
            report["scorecard_state"] = sc.state(dns)
        return report

    @classmethod
    def from_report(cls, report: dict) -> "Summary":
        """Rebuild a Summary from a report made by ``to_report``."""
        if report.get("schema") != SCHEMA_ID:
            raise ValueError(f"not an ipv6flow report (schema {report.get('schema')!r})")
        s = cls(report["timeseries"]["interval_s"])
        s.inputs = list(report["inputs"])
        s.first, s.last = report["time"]["first"], report["time"]["last"]
        for k in ("totals", "carrier", "payload", "ipv6", "tunnels", "extension_headers",
                  "transport", "addresses", "decode"):
            _add_counts(s._counts[k], report[k])
        s.nat64 = Nat64State.from_report(report["nat64"])
        if "translation" in report:
            s.translation = TranslationState.from_report(report["translation"], s.interval)
        s.population = Population.from_report(report, s.interval)
        s.services = report.get("services")
        if report.get("sampling") is not None:
            s.sampling = SamplingState.from_report(report["sampling"])
        if "scorecard_state" in report:
            s.scorecard = _scorecard().Scorecard.from_state(report["scorecard_state"])
        over = report["timeseries"].get("overflow") or pb()
        s.bin_overflow = [over["packets"], over["bytes"]]
        for b in report["timeseries"]["bins"]:
            idx = round(b["start"] / s.interval)
            c = b.get("carrier") or {"ipv4": pb(), "ipv6": pb()}
            s._bins[idx] = [b["ipv4"]["packets"], b["ipv4"]["bytes"],
                            b["ipv6"]["packets"], b["ipv6"]["bytes"],
                            c["ipv4"]["packets"], c["ipv4"]["bytes"],
                            c["ipv6"]["packets"], c["ipv6"]["bytes"]]
        return s
