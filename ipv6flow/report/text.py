"""The text report: what an engineer reads first.

The headline is the IPv6 share (payload view: what end hosts speak), then
the carrier/payload table, tunnels, extension headers and anomalies,
address classes, transport and decode problems. Rows of zeros are left
out of the long tables (the JSON keeps every key); counts and percentages
are right-aligned in fixed columns. Anything that may come from outside
(paths now, DNS names later) goes through ``safe`` before it is printed.
"""

import datetime as _dt

from ..summary import TRANSPORT_KEYS
from . import found_by_dns_alone

FAMILY_LABELS = {"ipv4": "IPv4", "ipv6": "IPv6", "non_ip": "non-IP"}


def safe(text: str) -> str:
    """Escape control and non-printable characters (no terminal escapes)."""
    out = []
    for ch in str(text):
        if ch.isprintable() and ch not in "\x1b":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


LABEL_W = 36     # one label column for every table, so all columns line up


def _pct(part, whole):
    if not whole:
        return "      -"
    if part and 100.0 * part / whole < 0.05:
        return "  <0.1%"
    return f"{100.0 * part / whole:6.1f}%"


def _share(x):
    """A share as a percentage; '-' when undefined (no IP bytes at all)."""
    return "-" if x is None else f"{100 * x:.1f}%"


def _n(v):
    return f"{v:,}"


def _ts(t):
    if t is None:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):   # a clock past year 9999, or garbage
        return f"{t:.0f} s"


def human_size(n):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


class _Table:
    """Rows of (label, packets, bytes) with percentages of a total."""

    def __init__(self, title, total_p, total_b, label_width=LABEL_W):
        self.title, self.tp, self.tb, self.w = title, total_p, total_b, label_width
        self.rows = []

    def row(self, label, p, b=None, indent=2):
        self.rows.append((" " * indent + label, p, b))

    def render(self):
        w = max([self.w, len(self.title) + 1] + [len(r[0]) + 2 for r in self.rows])
        head = f"{self.title:<{w}}{'packets':>13} {'%':>7} {'bytes':>16} {'%':>7}"
        lines = [head]
        for label, p, b in self.rows:
            if p is None:
                lines.append(label)
                continue
            line = f"{label:<{w}}{_n(p):>13} {_pct(p, self.tp)}"
            if b is not None:
                line += f" {_n(b):>16} {_pct(b, self.tb)}"
            lines.append(line)
        return "\n".join(lines)


# How a suspect with no traffic became one, in words (evidence names: REPORT.md).
EVIDENCE_WORDS = {"configured": "given with --nat64-prefix",
                  "dns64": "seen in DNS64-synthesized answers",
                  "rfc7050": "announced by an ipv4only.arpa answer (RFC 7050)",
                  "pref64": "announced by a PREF64 Router Advertisement option"}


def _count_lines(title, counts, total, empty="none"):
    items = [(k, v) for k, v in counts.items() if v]
    lines = [title]
    if not items:
        lines.append(f"  {empty}")
        return lines
    w = max([LABEL_W] + [len(k) + 4 for k, _ in items])
    for k, v in items:
        lines.append(f"  {k:<{w - 2}}{_n(v):>13} {_pct(v, total)}")
    return lines


def render(report: dict) -> str:
    r = report
    t = r["totals"]
    tp, tb = t["packets"], t["bytes"]
    sh = r["share"]
    out = []

    # -- header and inputs ------------------------------------------------
    out.append(f"ipv6flow {r['tool']['version']} report")
    sampling = r.get("sampling")
    if sampling is not None:
        out.append(_estimated(sampling))
    for inp in r["inputs"]:
        comp = f"+{inp['compression']}" if inp.get("compression") else ""
        state = " TRUNCATED" if inp.get("truncated") else ""
        state += " ERROR" if inp.get("errors") else ""
        out.append(f"  {safe(inp['path'])}: {inp.get('format') or '?'}{comp}, "
                   f"{_n(inp['packets'])} frames, {human_size(inp['bytes'])}{state}")
    first, last = r["time"]["first"], r["time"]["last"]
    if first is not None:
        out.append(f"  time: {_ts(first)} .. {_ts(last)} UTC ({last - first:.3f} s)")
    out.append("")
    pm = _plus_minus(sampling)

    # -- headline ---------------------------------------------------------
    if sh["ipv6_packets"] is None:
        out.append("IPv6 share: no IP traffic in the input")
    else:
        out.append(f"IPv6 share of IP traffic: {_share(sh['ipv6_packets'])}{pm('ipv6_packets')} "
                   f"of packets, {_share(sh['ipv6_bytes'])}{pm('ipv6_bytes')} of bytes  "
                   "(payload: what end hosts speak)")
        out.append(f"  on the wire (outer header): {_share(sh['carrier_ipv6_packets'])}"
                   f"{pm('carrier_ipv6_packets')} of packets, "
                   f"{_share(sh['carrier_ipv6_bytes'])}{pm('carrier_ipv6_bytes')} of bytes")
        v6 = r["payload"]["ipv6"]["packets"]
        nat, tun = r["ipv6"]["native"]["packets"], r["ipv6"]["tunnelled"]["packets"]
        out.append(f"  IPv6 packets: {_n(nat)} native ({_pct(nat, v6).strip()}"
                   f"{pm('native_packets')}), {_n(tun)} tunnelled over IPv4 "
                   f"({_pct(tun, v6).strip()}{pm('tunnelled_packets')})")
    out.append("")
    if "clients" in r:
        out.extend(_clients(r["clients"], r["flows"]))

    # -- families ---------------------------------------------------------
    tab = _Table(f"Frames ({_n(tp)} in all)", tp, tb)
    for view, title in (("carrier", "carrier (outermost IP header)"),
                        ("payload", "payload (innermost IP header)")):
        tab.row(title, None)
        for fam in ("ipv4", "ipv6", "non_ip"):
            e = r[view][fam]
            tab.row(FAMILY_LABELS[fam], e["packets"], e["bytes"], indent=4)
    tab.row("IPv6 payload", None)
    for k in ("native", "tunnelled"):
        e = r["ipv6"][k]
        tab.row(k, e["packets"], e["bytes"], indent=4)
    out.append(tab.render())
    out.append("")

    # -- tunnels ----------------------------------------------------------
    tab = _Table("Tunnels (outermost encapsulation)", tp, tb)
    for kind, e in r["tunnels"].items():
        if e["packets"] or kind == "none":
            tab.row("not tunnelled" if kind == "none" else kind, e["packets"], e["bytes"])
    out.append(tab.render())
    if sampling is not None:
        out.extend(_tunnel_intervals(sampling["intervals"]["tunnels"]))
    out.append("")

    # -- extension headers ------------------------------------------------
    eh = r["extension_headers"]
    v6frames = sum(eh["chain_length"].values())
    out.append(f"IPv6 extension headers: {_n(eh['frames_with_any'])} frames "
               f"({_pct(eh['frames_with_any'], v6frames).strip()} of frames with IPv6)")
    out.extend(_count_lines("", eh["by_type"], v6frames)[1:])
    if eh["routing_types"]:
        out.append("  routing types: " + ", ".join(
            f"type {k}: {_n(v)}" for k, v in eh["routing_types"].items()))
    if eh["chain_length"]:
        out.append("  chain length (outermost IPv6 header): " + ", ".join(
            f"{k}: {_n(v)}" for k, v in eh["chain_length"].items()))
    out.append("")
    out.extend(_count_lines("IPv6 anomalies (frames, % of frames with IPv6)", eh["anomalies"],
                            v6frames))
    out.append("")

    # -- addresses, transport, decode --------------------------------------
    addr = r["addresses"]["ipv6"]
    out.extend(_count_lines("IPv6 address classes (innermost source and destination, "
                            "% of addresses)",
                            addr, sum(addr.values()), empty="no IPv6 payload"))
    out.append("")
    for fam in ("ipv4", "ipv6"):
        tr = r["transport"][fam]
        out.extend(_count_lines(f"Transport over {FAMILY_LABELS[fam]} (payload view)",
                                {k: tr[k] for k in TRANSPORT_KEYS[fam]},
                                r["payload"][fam]["packets"], empty=f"no {FAMILY_LABELS[fam]}"))
    out.append("")
    out.extend(_count_lines("Decode problems (frames)", r["decode"], tp))
    out.append("")
    out.extend(_nat64(r["nat64"], tp))
    out.extend(_translation(r.get("translation")))
    if sampling is not None:
        out.extend(_sampling(sampling))
    out.extend(_timeseries(r["timeseries"]))
    return "\n".join(out)


# -- sampled input (sFlow) -------------------------------------------------------

def _estimated(sampling):
    """The line that says every count is an estimate, and from what."""
    rates = [k for k in sampling["rates"] if k != "other"]
    if not rates:
        how = "no sampling rate"
    elif len(rates) == 1 and "other" not in sampling["rates"]:
        how = f"1 in {int(rates[0]):,}"
    else:
        how = f"1 in {int(rates[0]):,} to 1 in {int(rates[-1]):,}"
    return (f"estimated from {_n(sampling['samples'])} samples ({how}) in "
            f"{_n(sampling['datagrams'])} sFlow datagrams: every count below is an estimate")


def _plus_minus(sampling):
    """``pm(name)``: ' ±x.x%' for a headline share, '' without sampling."""
    def pm(name):
        if sampling is None:
            return ""
        iv = sampling["intervals"].get(name)
        return "" if iv is None else f" ±{100 * iv['half_width']:.1f}%"
    return pm


def _tunnel_intervals(tunnels):
    lines = []
    for kind, iv in tunnels.items():
        p, b = iv["packets"], iv["bytes"]
        if p is None:
            continue
        label = "not tunnelled" if kind == "none" else kind
        lines.append(f"  {label}: {100 * p['share']:.1f}% ±{100 * p['half_width']:.1f}% of "
                     f"frames, {100 * b['share']:.1f}% ±{100 * b['half_width']:.1f}% of bytes "
                     "(95%)")
    return ["Tunnel shares, 95% intervals"] + lines if lines else []


def _sampling(s):
    cut = s["cut"]
    lines = ["Sampling (sFlow)",
             f"  datagrams {_n(s['datagrams'])}, lost in sequence gaps {_n(s['lost_datagrams'])}"
             f", bad {_n(s['bad_datagrams'])}; samples {_n(s['samples'])}, "
             f"bad {_n(s['bad_samples'])}",
             "  rates (samples): " + (", ".join(f"1 in {k}: {_n(v)}" if k != "other"
                                                 else f"other: {_n(v)}"
                                                 for k, v in s["rates"].items()) or "none")]
    if s["skipped"]:
        lines.append("  skipped: " + ", ".join(f"{safe(k)} {_n(v)}"
                                               for k, v in s["skipped"].items()))
    lines.append(f"  cut by the exporter: {_n(cut['samples'])} samples ({_n(cut['packets'])} "
                 f"packets); chains cut {_n(cut['chains_cut'])}, decodes stopped at the cut "
                 f"{_n(cut['decode_stopped'])} (packets; not counted as truncated_chain)")
    if s["unreliable"]:
        lines.append("  unreliable where the cut hid them: " + ", ".join(s["unreliable"]))
    lines.append("  clients and flows: left out (samples are not a population)")
    for key, a in s["agents"].items():
        head = (f"  agent {safe(a['agent'])} sub-agent {a['sub_agent']}"
                if a["agent"] is not None else f"  {safe(key)}")
        bad = sum(a["bad_datagrams"].values())
        lines.append(f"{head}: {_n(a['datagrams'])} datagrams, {_n(a['lost_datagrams'])} lost, "
                     f"{_n(bad)} bad" + (" (" + ", ".join(f"{safe(k)} {_n(v)}" for k, v in
                                                       a["bad_datagrams"].items()) + ")"
                                         if bad else ""))
        for sk, se in a["sources"].items():
            rates = ", ".join(f"1 in {safe(k)}" for k in se["rates"])
            lines.append(f"    source {safe(sk)}: {_n(se['samples'])} samples ({rates}), "
                         f"{_n(se['lost_samples'])} lost")
    lines.append("")
    return lines


def _approx(section):
    if section["exact"]:
        return ""
    return f"  (estimates, relative standard error {100 * section['relative_standard_error']:.1f}%)"


def _clients(c, fl):
    """Clients by family, interface identifiers and flows."""
    total = c["total"]
    key = c["key"] + "".join(f", inside {p}" for p in c["client_prefixes"])
    lines = [f"IPv6-capable clients: {_n(c['ipv6_capable'])} of {_n(total)} "
             f"({_pct(c['ipv6_capable'], total).strip()})  (client key: {key}){_approx(c)}"]
    for k, label in (("dual_stack", "dual-stack"), ("ipv6_only", "IPv6 only"),
                     ("ipv4_only", "IPv4 only"), ("link_local_only", "link-local IPv6 only")):
        lines.append(f"  {label:<{LABEL_W - 2}}{_n(c[k]):>13} {_pct(c[k], total)}")
    fr = c["frames"]
    lines.append(f"  frames counted for no client (no client side, or nothing to key it by): "
                 f"{_n(fr['unattributed'])} of {_n(fr['attributed'] + fr['unattributed'])}")
    ii = c["interface_ids"]
    src = ii["sources"]
    lines.append("")
    lines.append(f"IPv6 interface identifiers: {_n(src['addresses'])} global source addresses "
                 f"in {_n(src['prefixes64'])} /64s{_approx(ii)}")
    lines.append(f"  {'':<{LABEL_W - 2}}{'addresses':>13} {'%':>7} {'/64s':>16} {'%':>7}")
    for k, v in ii["addresses"].items():
        p64 = ii["prefixes64"][k]
        if v or p64:
            lines.append(f"  {k:<{LABEL_W - 2}}{_n(v):>13} {_pct(v, src['addresses'])} "
                         f"{_n(p64):>16} {_pct(p64, src['prefixes64'])}")
    lines.append("")
    ft = fl["total"]
    lines.append(f"Flows (distinct 5-tuples, both directions): {_n(ft)}, IPv6 "
                 f"{_share(fl['share_ipv6'])}{_approx(fl)}")
    lines.append(f"  {'IPv4':<{LABEL_W - 2}}{_n(fl['ipv4']):>13} {_pct(fl['ipv4'], ft)}")
    lines.append(f"  {'IPv6':<{LABEL_W - 2}}{_n(fl['ipv6']):>13} {_pct(fl['ipv6'], ft)}")
    tunnelled = {k: v for k, v in fl["by_tunnel"].items() if v and k != "none"}
    if tunnelled:
        items = [f"{k}: {_n(v)}" for k, v in tunnelled.items()]
        line = "  in tunnels:"
        for i, item in enumerate(items):
            piece = f" {item}" + ("," if i < len(items) - 1 else "")
            if len(line) + len(piece) > 88:
                lines.append(line)
                line = "   "
            line += piece
        lines.append(line)
    if fl["unkeyed_frames"]:
        lines.append(f"  TCP/UDP frames with no readable ports (not counted): "
                     f"{_n(fl['unkeyed_frames'])}")
    lines.append("")
    return lines


def _plural(n, word):
    return f"{_n(n)} {word}" + ("" if n == 1 else "s")


def _nat64(nat, total):
    """Each NAT64 suspect with its evidence, traffic and a short reading."""
    lines = ["NAT64 / DNS64"]
    if not nat["suspects"]:
        lines.append("  no NAT64 prefix in use or announced")
    for sp in nat["suspects"]:
        lines.append(f"  {sp['prefix']} ({sp['kind']}; evidence: {', '.join(sp['evidence'])})")
        lines.append(f"    {_n(sp['packets'])} packets ({_pct(sp['packets'], total).strip()} of all), "
                     f"{_n(sp['bytes'])} bytes, {_plural(sp['ipv6_clients'], 'IPv6 client')}, "
                     f"{_plural(sp['ipv4_destinations'], 'IPv4 destination')}")
        dns_only = found_by_dns_alone(sp)
        if sp["packets"]:
            reading = (f"clients {'may ' if dns_only else ''}reach IPv4-only services "
                       f"through NAT64 prefix {sp['prefix']}")
        else:
            found = [EVIDENCE_WORDS.get(e, e) for e in sp["evidence"] if e != "traffic"]
            reading = f"{' and '.join(found)}, but no traffic through it in this capture"
        lines.append(f"    reading: {reading}")
        if dns_only:
            lines.append("    caution: found from DNS answers alone, as a service numbering "
                         "its IPv6 after its")
            lines.append("             IPv4 (Cloudflare does) would be; an ipv4only.arpa "
                         "answer or PREF64 confirms")
    d = nat["dns64"]
    lines.append(f"  DNS64: {_plural(d['synthesized_answers'], 'synthesized AAAA answer')}"
                 + (f" from {', '.join(safe(x) for x in d['resolvers'])}" if d["resolvers"] else ""))
    if nat.get("malformed_dns"):
        lines.append(f"  malformed DNS messages skipped: {_n(nat['malformed_dns'])}")
    lines.append("")
    return lines


TOP_DESTS = 10
MECHANISM_LABELS = {"nat64": "NAT64 (incl. 464XLAT)", "ds-lite": "DS-Lite (RFC 6333)",
                    "lw4o6": "lightweight 4over6 (RFC 7596)", "map-e": "MAP-E (RFC 7597)",
                    "map-t": "MAP-T (RFC 7599)"}


def _figures(x):
    return (f"{_n(x['packets'])} packets, {_n(x['bytes'])} bytes, "
            f"{_plural(x['flows'], 'flow')}, {_plural(x['clients'], 'client')}, "
            f"{_plural(x['ipv4_destinations'], 'IPv4 destination')}")


def _translation(tr):
    """IPv4 as a service: each mechanism's gateways, their size and peak,
    the IPv4 destinations that keep them needed, and the CLAT suspects.
    Nothing is printed when the capture holds none of it."""
    if not tr or not (tr["gateways"] or tr["clat_suspects"]
                      or tr["unclassified_4in6"]["packets"] or tr["map_port_mismatch"]["packets"]):
        return []
    lines = ["IPv4 as a service (NAT64, 464XLAT, DS-Lite, lw4o6, MAP)"]
    for g in tr["gateways"]:
        lines.append(f"  {MECHANISM_LABELS[g['mechanism']]} via {g['gateway']} "
                     f"(confidence {g['confidence']}; evidence: {', '.join(g['evidence'])})")
        if g["mechanism"] == "nat64" and g["confidence"] == "medium":
            # the prefix is inferred from DNS64 answers alone (translation.py)
            lines.append("    caution: its prefix is known from DNS answers alone "
                         "(see NAT64 / DNS64 above)")
        lines.append(f"    {_figures(g)}")
        pk = g["peak"]
        if pk is not None:
            lines.append(f"    peak bin {_ts(pk['start'])}: {_figures(pk)}")
        if g["destinations"]:
            lines.append("    top IPv4 destinations by bytes (AAAA: the name has a native "
                         "IPv6 address, so this traffic could go native)")
        for d in g["destinations"][:TOP_DESTS]:
            names = ", ".join(safe(x) for x in d["names"]) or "no name in the capture's DNS"
            mark = "AAAA" if d["aaaa"] else "IPv4-only" if d["names"] else "?"
            lines.append(f"      {d['address']:<16}{_n(d['bytes']):>14} bytes  {mark:<9} {names}")
    if tr["clat_suspects"]:
        lines.append("  464XLAT CLAT suspects (NAT64 client /64s whose IPv4 destinations no "
                     "DNS64 answer explains)")
    for sp in tr["clat_suspects"]:
        lines.append(f"    {sp['client']} via {sp['gateway']} (confidence {sp['confidence']}; "
                     f"evidence: {', '.join(sp['evidence'])}): {_n(sp['packets'])} packets, "
                     f"{_n(sp['bytes'])} bytes")
        if sp["unexplained_destinations"]:
            lines.append(f"      reached with no AAAA answer naming them: "
                         f"{', '.join(sp['unexplained_destinations'][:TOP_DESTS])}"
                         + (" ..." if len(sp["unexplained_destinations"]) > TOP_DESTS else ""))
        if sp["confidence"] == "low":
            lines.append("      (low: the capture holds no DNS64 answer for this prefix, so "
                         "the lookups may just not be in it)")
    un = tr["unclassified_4in6"]
    if un["packets"]:
        lines.append(f"  4in6 fitting no rule: {_n(un['packets'])} packets, {_n(un['bytes'])} "
                     "bytes (public IPv4 both sides, no MAP form: routers tunnelling, or an "
                     "lwAFTR not given with --aftr)")
    mm = tr["map_port_mismatch"]
    if mm["packets"]:
        lines.append(f"  MAP-form addresses whose port lies outside their PSID's set: "
                     f"{_plural(mm['packets'], 'packet')} (not counted as MAP)")
    lines.append("")
    return lines


MAX_TIME_ROWS = 24


def _timeseries(ts):
    """IPv6 share per time bin; long series are shown in at most
    MAX_TIME_ROWS rows of consecutive bins (the JSON keeps every bin)."""
    bins = ts["bins"]
    if not bins:
        return []
    per_row = -(-len(bins) // MAX_TIME_ROWS)
    width = ts["interval_s"] * per_row
    lines = [f"IPv6 share over time ({width:g} s per row, payload view)",
             f"  {'start (UTC)':<21}{'IP packets':>13} {'IPv6 pkts':>8} {'IPv6 bytes':>10}"]
    for i in range(0, len(bins), per_row):
        group = bins[i:i + per_row]
        v4p = sum(b["ipv4"]["packets"] for b in group)
        v6p = sum(b["ipv6"]["packets"] for b in group)
        v4b = sum(b["ipv4"]["bytes"] for b in group)
        v6b = sum(b["ipv6"]["bytes"] for b in group)
        lines.append(f"  {_ts(group[0]['start']):<21}{_n(v4p + v6p):>13} "
                     f"{_pct(v6p, v4p + v6p):>8} {_pct(v6b, v4b + v6b):>10}")
    lines.append("")
    return lines
