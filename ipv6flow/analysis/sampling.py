"""Sampled traffic (sFlow): how the estimates were made, and how sure they are.

Strategy: every sample stands for ``rate`` packets and ``rate * length``
bytes. The Summary scales what it counts by the rate of the batch being
added (``Summary.set_weight``), so every count of the report is already
the estimate and merges as any count does. This module keeps the rest:

* what was read: datagrams, samples, per agent (agent address and
  sub-agent) the datagrams lost in sequence gaps, bad datagrams by
  reason, skipped samples and records by kind, and per data source (sFlow
  source id) the samples, the sampling rates seen and samples lost;
* what the exporter's cut hid: samples whose header is shorter than the
  frame, IPv6 chains that ran into the cut (kept out of the
  ``truncated_chain`` anomaly: the cut is the exporter's, not the
  traffic's), decodes that stopped at the cut;
* variance sums per class of traffic, from which the 95% intervals of the
  headline shares are computed (docs/DECISIONS.md, "Sampled traffic").

For a sample of rate ``R`` and length ``L`` the sums add ``R(R-1)`` (for
packets) and ``R(R-1) L**2`` (for bytes) to each class the sample is in:
the Horvitz-Thompson variance of a total under independent 1-in-R
sampling. A share ``p = A / T`` of class A within T gets the linearised
(delta-method) variance ``((1-p)**2 V(A) + p**2 V(T-A)) / T**2``. At rate 1
every sum is zero: the counts are exact and so is the interval.

Everything here merges by adding; the maps an attacker can grow (agents,
sources, rates) are capped and what is past a cap is summed under
``"other"``.
"""
from __future__ import annotations

import math

from ..decode.registry import TUNNEL_KINDS

Z95 = 1.959963984540054          # two-sided 95% quantile of the normal law

MAX_AGENTS = 1024                 # agent (address, sub-agent) entries kept
MAX_SOURCES = 256                 # data sources kept per agent
MAX_RATES = 16                    # distinct sampling rates kept per source
OTHER = "other"

CUT_KEYS = ("samples", "packets", "chains_cut", "decode_stopped")
# What a cut header makes unreliable, and when (report section names).
UNRELIABLE = {
    "chains_cut": ("extension_headers",),
    "decode_stopped": ("extension_headers", "tunnels", "transport", "addresses", "nat64"),
}

# The classes whose variance is kept: (report section, key).
CLASSES = (("totals", None), ("payload", "ipv4"), ("payload", "ipv6"), ("carrier", "ipv4"),
           ("carrier", "ipv6"), ("ipv6", "native"), ("ipv6", "tunnelled")) + \
    tuple(("tunnels", k) for k in TUNNEL_KINDS)
CLASS_NAMES = tuple(s if k is None else f"{s}.{k}" for s, k in CLASSES)


def _agent_entry(agent, sub_agent):
    return {"agent": agent, "sub_agent": sub_agent, "datagrams": 0, "lost_datagrams": 0,
            "sequence_resets": 0, "bad_datagrams": {}, "bad_samples": 0, "skipped": {},
            "sources": {}}


def _source_entry():
    return {"samples": 0, "rates": {}, "lost_samples": 0}


def _bump(d, key, n=1):
    d[key] = d.get(key, 0) + n


def _capped(d, key, cap, make):
    """``d[key]``, made if there is room, else ``d["other"]``."""
    e = d.get(key)
    if e is None:
        if len(d) >= cap and key != OTHER:
            key = OTHER
            e = d.get(key)
        if e is None:
            e = d[key] = make()
    return e


def _add_nested(dst, src):
    for k, v in src.items():
        if isinstance(v, dict):
            _add_nested(dst.setdefault(k, {}), v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            dst[k] = dst.get(k, 0) + v
        else:
            dst.setdefault(k, v)


_IDENTITY = ("agent", "sub_agent", "sources")     # not added when entries merge


def _merge_agents(dst, src):
    """Add agent entries, keeping the caps (what is past them: "other")."""
    for key, entry in src.items():
        into = _capped(dst, key, MAX_AGENTS, lambda: _agent_entry(entry["agent"],
                                                                   entry["sub_agent"]))
        sources = entry.get("sources", {})
        _add_nested(into, {k: v for k, v in entry.items() if k not in _IDENTITY})
        for sk, se in sources.items():
            s = _capped(into["sources"], sk, MAX_SOURCES, _source_entry)
            s["samples"] += se["samples"]
            s["lost_samples"] += se["lost_samples"]
            for r, n in se["rates"].items():
                if r in s["rates"] or len(s["rates"]) < MAX_RATES:
                    _bump(s["rates"], r, n)
                else:
                    _bump(s["rates"], OTHER, n)


class SamplingState:
    """The ``sampling`` section of a report: mergeable, see the module."""

    def __init__(self):
        self.rate = 1           # of the samples being added now (not reported)
        self.cut = False
        self.datagrams = 0
        self.samples = 0
        self.agents = {}
        self.cut_counts = {k: 0 for k in CUT_KEYS}
        self._keys = {}         # frame key -> [samples, var packets, var bytes]
        self.classes = {name: [0, 0, 0, 0] for name in CLASS_NAMES}

    # -- reading (capture/sflow.py) ------------------------------------------
    def agent(self, agent: str, sub_agent: int) -> dict:
        return _capped(self.agents, f"{agent}/{sub_agent}", MAX_AGENTS,
                       lambda: _agent_entry(agent, sub_agent))

    def add_datagram(self, entry, datagram, lost: int, reset: bool) -> None:
        self.add_datagrams(entry, 1, lost, reset, datagram.skipped.items())
        if datagram.problem is not None:
            _bump(entry["bad_datagrams"], datagram.problem)
        entry["bad_samples"] += datagram.bad_samples

    def add_datagrams(self, entry, count: int, lost: int, resets: int, skipped) -> None:
        """``count`` datagrams of one agent read whole, ``skipped``:
        (what, how many) pairs."""
        self.datagrams += count
        entry["datagrams"] += count
        entry["lost_datagrams"] += lost
        entry["sequence_resets"] += resets
        for k, n in skipped:
            if n:
                _bump(entry["skipped"], k, n)

    def add_bad(self, problem: str) -> None:
        """A datagram whose header names no agent: counted under "other"."""
        self.datagrams += 1
        e = _capped(self.agents, OTHER, MAX_AGENTS + 1, lambda: _agent_entry(None, None))
        e["datagrams"] += 1
        _bump(e["bad_datagrams"], problem)

    def add_sample(self, entry, source, rate: int, lost: int, cut: bool, wirelen: int) -> None:
        s = self.source(entry, source)
        self.add_samples(s, 1, lost)
        self.add_rate(s, rate, 1)
        if cut:
            self.add_cut(1, rate)

    # The steps of add_sample, for many samples at once (capture/sflow.py:
    # the compiled walk counts runs of them).
    def source(self, entry, source) -> dict:
        """The entry of data source ``source`` (type, index) of an agent."""
        return _capped(entry["sources"], f"{source[0]}:{source[1]}", MAX_SOURCES, _source_entry)

    def add_samples(self, source: dict, count: int, lost: int) -> None:
        self.samples += count
        source["samples"] += count
        source["lost_samples"] += lost

    def add_rate(self, source: dict, rate: int, count: int) -> None:
        rates, r = source["rates"], str(rate)
        if r in rates or len(rates) < MAX_RATES:
            rates[r] = rates.get(r, 0) + count
        else:
            _bump(rates, OTHER, count)

    def add_cut(self, samples: int, packets: int) -> None:
        """``samples`` whose headers the exporter cut, standing for ``packets``."""
        c = self.cut_counts
        c["samples"] += samples
        c["packets"] += packets

    # -- decoding (summary.py) --------------------------------------------------
    def sampled(self, key, packets: int, squares: int):
        """Note ``packets`` samples of frame key ``key`` (``squares``: the
        sum of their lengths squared) at the current rate; returns the key
        to count them under (a chain cut by the exporter is not the
        ``truncated_chain`` anomaly)."""
        rate = self.rate
        if self.cut:
            anomalies = key[7]
            if "truncated_chain" in anomalies:
                key = key[:7] + (tuple(a for a in anomalies if a != "truncated_chain"),) + key[8:]
                self.cut_counts["chains_cut"] += packets * rate
            if key[9] == "truncated":
                self.cut_counts["decode_stopped"] += packets * rate
        c = rate * (rate - 1)
        e = self._keys.get(key)
        if e is None:
            self._keys[key] = [packets, c * packets, c * squares, packets if rate > 1 else 0]
        else:
            e[0] += packets
            e[1] += c * packets
            e[2] += c * squares
            if rate > 1:
                e[3] += packets
        return key

    def _flush(self):
        cl = self.classes
        for key, sums in self._keys.items():
            carrier, payload, tunnel = key[0], key[1], key[2]
            names = ["totals", f"carrier.{carrier}", f"payload.{payload}",
                     f"tunnels.{tunnel}"]
            if payload == "ipv6":
                names.append("ipv6.native" if carrier == "ipv6" else "ipv6.tunnelled")
            for name in names:
                e = cl.get(name)
                if e is not None:               # non_ip classes are not kept
                    for i in range(4):
                        e[i] += sums[i]
        self._keys.clear()

    # -- merging and reporting -------------------------------------------------
    def merge(self, other: "SamplingState | None") -> "SamplingState":
        out = SamplingState()
        for s in (self, other):
            if s is None:
                continue
            s._flush()
            out.datagrams += s.datagrams
            out.samples += s.samples
            _merge_agents(out.agents, s.agents)
            for k in CUT_KEYS:
                out.cut_counts[k] += s.cut_counts[k]
            for name, sums in s.classes.items():
                e = out.classes[name]
                for i in range(4):
                    e[i] += sums[i]
        return out

    def rates(self) -> dict:
        """Samples per sampling rate, over every agent and source."""
        out = {}
        for entry in self.agents.values():
            for s in entry["sources"].values():
                for r, n in s["rates"].items():
                    _bump(out, r, n)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == OTHER, int(kv[0])
                                                        if kv[0] != OTHER else 0)))

    def report(self, counts: dict) -> dict:
        """The ``sampling`` section, given the Summary's (estimated) counts."""
        self._flush()
        cut = dict(self.cut_counts)
        unreliable = sorted({name for k, names in UNRELIABLE.items() if cut[k]
                             for name in names})
        agents = {}
        for key in sorted(self.agents, key=lambda k: (k == OTHER, k)):
            e = dict(self.agents[key])
            e["bad_datagrams"] = dict(sorted(e["bad_datagrams"].items()))
            e["skipped"] = dict(sorted(e["skipped"].items()))
            e["sources"] = {sk: dict(se, rates=dict(sorted(
                se["rates"].items(), key=lambda kv: (kv[0] == OTHER, int(kv[0])
                                                     if kv[0] != OTHER else 0))))
                for sk, se in sorted(e["sources"].items(), key=lambda kv: _source_order(kv[0]))}
            agents[key] = e
        totals = {"lost_datagrams": 0, "bad_datagrams": 0, "bad_samples": 0, "skipped": {}}
        for e in self.agents.values():
            totals["lost_datagrams"] += e["lost_datagrams"]
            totals["bad_datagrams"] += sum(e["bad_datagrams"].values())
            totals["bad_samples"] += e["bad_samples"]
            for k, n in e["skipped"].items():
                _bump(totals["skipped"], k, n)
        totals["skipped"] = dict(sorted(totals["skipped"].items()))
        return {
            "datagrams": self.datagrams,
            "samples": self.samples,
            "rates": self.rates(),
            **totals,
            "cut": cut,
            "unreliable": unreliable,
            "intervals": intervals(counts, self.classes),
            "agents": agents,
            "classes": {name: {"samples": s[0], "var_packets": s[1], "var_bytes": s[2],
                               "sampled": s[3]}
                        for name, s in self.classes.items()},
        }

    @classmethod
    def from_report(cls, section: dict) -> "SamplingState":
        s = cls()
        s.datagrams = int(section["datagrams"])
        s.samples = int(section["samples"])
        _merge_agents(s.agents, section["agents"])
        for k in CUT_KEYS:
            s.cut_counts[k] = int(section["cut"][k])
        for name, e in section["classes"].items():
            if name in s.classes:
                s.classes[name] = [int(e["samples"]), int(e["var_packets"]), int(e["var_bytes"]),
                                   int(e["sampled"])]
        return s


def _source_order(key):
    if key == OTHER:
        return (1, 0, 0)
    a, _, b = key.partition(":")
    return (0, int(a), int(b))


def _count(counts, name, unit):
    section, _, key = name.partition(".")
    e = counts[section] if not key else counts[section].get(key, {"packets": 0, "bytes": 0})
    return e[unit]


def _interval(part, whole, var_part, var_rest, sampled):
    """The share ``part / whole`` and its 95% interval: the wider of the
    linearised one (see the module) and sFlow's own bound on the part,
    ``196 * sqrt(1 / c)`` percent of it for ``c`` samples taken at a rate
    above 1 (at rate 1 nothing is estimated)."""
    if not whole:
        return None
    p = part / whole
    var = ((1 - p) ** 2 * var_part + p * p * var_rest) / (whole * whole)
    half = Z95 * math.sqrt(max(var, 0.0))
    if sampled:
        half = max(half, p * Z95 / math.sqrt(sampled))
    return {"share": p, "low": max(0.0, p - half), "high": min(1.0, p + half),
            "half_width": half}


def intervals(counts: dict, classes: dict) -> dict:
    """95% intervals of the headline shares; ``None`` where a share is."""
    out = {}

    def share(name, parts, wholes):
        for unit, i in (("packets", 1), ("bytes", 2)):
            part = sum(_count(counts, n, unit) for n in parts)
            whole = sum(_count(counts, n, unit) for n in wholes)
            var_part = sum(classes[n][i] for n in parts)
            var_rest = sum(classes[n][i] for n in wholes) - var_part
            out[f"{name}_{unit}"] = _interval(part, whole, var_part, var_rest,
                                              sum(classes[n][3] for n in parts))

    share("ipv6", ["payload.ipv6"], ["payload.ipv4", "payload.ipv6"])
    share("carrier_ipv6", ["carrier.ipv6"], ["carrier.ipv4", "carrier.ipv6"])
    share("native", ["ipv6.native"], ["ipv6.native", "ipv6.tunnelled"])
    share("tunnelled", ["ipv6.tunnelled"], ["ipv6.native", "ipv6.tunnelled"])
    tunnels = {}
    for kind in TUNNEL_KINDS:
        name = f"tunnels.{kind}"
        if not classes[name][0]:
            continue
        entry = {}
        for unit, i in (("packets", 1), ("bytes", 2)):
            part = _count(counts, name, unit)
            whole = counts["totals"][unit]
            var_part = classes[name][i]
            entry[unit] = _interval(part, whole, var_part, classes["totals"][i] - var_part,
                                    classes[name][3])
        tunnels[kind] = entry
    out["tunnels"] = tunnels
    return out
