"""The scorecard (``--org-map``) as text and as CSV, one row per
organisation.

Organisation names come from the map file and DNS names from packets:
both go through ``text.safe`` before a terminal sees them, and CSV cells
get the formula guard of ``services.cell``.
"""

import csv
import io
import textwrap

from .services import cell
from .text import _n, safe

CSV_COLUMNS = (
    "organisation", "group", "domains",
    "ipv4_packets", "ipv4_bytes", "ipv6_packets", "ipv6_bytes",
    "carrier_ipv4_packets", "carrier_ipv4_bytes", "carrier_ipv6_packets", "carrier_ipv6_bytes",
    "share_ipv6_packets", "share_ipv6_bytes", "carrier_share_ipv6_packets",
    "carrier_share_ipv6_bytes",
    "ipv6_native_packets", "ipv6_native_bytes", "ipv6_tunnelled_packets", "ipv6_tunnelled_bytes",
    "nat64_packets", "nat64_bytes",
    "clients", "clients_ipv6_capable", "clients_ipv4_only", "share_clients_ipv6_capable",
    "names_ipv6_ready", "names_dns64_only", "names_ipv4_only", "names_no_answer",
    "adoption_packets_wire", "adoption_packets_e2e", "adoption_bytes_wire", "adoption_bytes_e2e",
    "adoption_flows_wire", "adoption_flows_e2e", "adoption_clients_wire", "adoption_clients_e2e",
    "ipv6_preferred_wire", "ipv6_preferred_e2e", "dual_stacked_connections",
    "blocking_bytes", "blocking_share_of_ipv4_bytes", "blocking_destinations",
    "blocking_top_destination", "blocking_top_names")

NO_ORG = "(no organisation)"


NOT_SEEN_SHOWN = 20     # organisations not seen named in the text report


def _label(name):
    return NO_ORG if name is None else safe(name)


def _num(x):
    return "" if x is None else repr(float(x)) if isinstance(x, float) else str(x)


def to_csv(report: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    adoption = report["adoption"]["by_organisation"]
    blocking = report["blocking"]["by_organisation"]
    for r, a, b in zip(report["organisations"]["rows"], adoption, blocking):
        p, c, sh, cl, nm = r["payload"], r["carrier"], r["share"], r["clients"], r["names"]
        top = b["destinations"][0] if b["destinations"] else None
        values = [
            NO_ORG if r["organisation"] is None else r["organisation"], r["group"],
            " ".join(r["domains"]),
            p["ipv4"]["packets"], p["ipv4"]["bytes"], p["ipv6"]["packets"], p["ipv6"]["bytes"],
            c["ipv4"]["packets"], c["ipv4"]["bytes"], c["ipv6"]["packets"], c["ipv6"]["bytes"],
            _num(sh["ipv6_packets"]), _num(sh["ipv6_bytes"]), _num(sh["carrier_ipv6_packets"]),
            _num(sh["carrier_ipv6_bytes"]),
            r["ipv6"]["native"]["packets"], r["ipv6"]["native"]["bytes"],
            r["ipv6"]["tunnelled"]["packets"], r["ipv6"]["tunnelled"]["bytes"],
            r["nat64"]["packets"], r["nat64"]["bytes"],
            cl["total"], cl["ipv6_capable"], cl["ipv4_only"], _num(cl["share_ipv6_capable"]),
            nm["ipv6_ready"], nm["dns64_only"], nm["ipv4_only"], nm["no_answer"]]
        for k in ("traffic_packets", "traffic_bytes", "flows", "clients", "ipv6_preferred"):
            values += [_num(a[k]["on_the_wire"]), _num(a[k]["end_to_end"])]
        values.append(sum(a["counts"]["dual_stacked_connections"].values()))
        values += [b["blocking_bytes"], _num(b["share_of_ipv4_bytes"]), b["destinations_total"],
                   top["address"] if top else "", " ".join(top["names"]) if top else ""]
        w.writerow([cell(v) for v in values])
    return out.getvalue()


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def _pair(d):
    return f"{_pct(d['on_the_wire'])} / {_pct(d['end_to_end'])}"


def to_text(report: dict) -> str:
    orgs = report["organisations"]
    rows = orgs["rows"]
    adoption = report["adoption"]
    blocking = report["blocking"]
    labels = [_label(r["organisation"]) for r in rows]
    w = max([24] + [len(x) + 2 for x in labels])
    n = len(rows) - 1
    lines = [f"Scorecard: {n:,} organisation{'' if n == 1 else 's'}"
             + (f" ({orgs['prefixes']:,} prefixes)" if orgs.get("prefixes") is not None else "")]
    lines.append(f"  {'organisation':<{w}}{'IPv6 pkts':>10}{'IPv6 bytes':>11}{'native':>8}"
                 f"{'tunnel':>8}{'NAT64':>8}{'clients':>9}{'v6-cap':>8}{'names r/d/4/-':>15}")
    for label, r in zip(labels, rows):

        nm = r["names"]
        names = (f"{nm['ipv6_ready']}/{nm['dns64_only']}/{nm['ipv4_only']}/{nm['no_answer']}"
                 if r["domains"] else "-")
        lines.append(
            f"  {label:<{w}}{_pct(r['share']['ipv6_packets']):>10}"
            f"{_pct(r['share']['ipv6_bytes']):>11}{_n(r['ipv6']['native']['packets']):>8}"
            f"{_n(r['ipv6']['tunnelled']['packets']):>8}{_n(r['nat64']['packets']):>8}"
            f"{_n(r['clients']['total']):>9}{_pct(r['clients']['share_ipv6_capable']):>8}"
            f"{names:>15}")
    lines.append("  names: under the organisation's domains, IPv6-ready / DNS64 only / IPv4 only / "
                 "no answer")
    quiet = orgs.get("not_seen") or []
    if quiet:
        shown = ", ".join(safe(x) for x in quiet[:NOT_SEEN_SHOWN])
        more = (f", and {len(quiet) - NOT_SEEN_SHOWN:,} more (all in the JSON report)"
                if len(quiet) > NOT_SEEN_SHOWN else "")
        lines.extend(textwrap.wrap(f"not seen (no frame, no name; not listed): {len(quiet):,}: "
                                   f"{shown}{more}", 96, initial_indent="  ",
                                   subsequent_indent="    "))
    lines.append("")
    lines.append("Adoption (on the wire / end to end; NAT64 is IPv6 on the wire, IPv4 end to end)")
    lines.append(f"  {'organisation':<{w}}{'packets':>17}{'bytes':>17}{'flows':>17}"
                 f"{'clients':>17}{'IPv6 preferred':>17}")
    entries = [("(whole capture)", adoption["overall"])] + \
        [(_label(a["organisation"]), a) for a, r in zip(adoption["by_organisation"], rows)
         if r["payload"]["ipv4"]["packets"] + r["payload"]["ipv6"]["packets"]]
    for label, a in entries:
        lines.append(f"  {label:<{w}}{_pair(a['traffic_packets']):>17}"
                     f"{_pair(a['traffic_bytes']):>17}{_pair(a['flows']):>17}"
                     f"{_pair(a['clients']):>17}{_pair(a['ipv6_preferred']):>17}")
    for k, text in adoption["definitions"].items():
        lines.extend(textwrap.wrap(f"{k}: {text}", 96, initial_indent="  ",
                                   subsequent_indent="    "))
    lines.append("")
    lines.append("What blocks IPv6: IPv4 traffic to names with no AAAA (by IPv4 bytes)")
    for label, b in [("(whole capture)", blocking["overall"])] + \
            [(_label(x["organisation"]), x) for x in blocking["by_organisation"]]:
        if not b["destinations"] and not b["ipv4_only_clients"]:
            continue
        lines.append(f"  {label}: moving these would move {_pct(b['share_of_ipv4_bytes'])} of "
                     f"its IPv4 bytes; {_n(b['ipv4_only_clients'])} of {_n(b['clients'])} "
                     f"clients IPv4-only")
        for d in b["destinations"]:
            names = ", ".join(safe(x) for x in d["names"]) or "(no name)"
            more = f" +{d['names_total'] - len(d['names'])}" if d["names_total"] > len(d["names"]) \
                else ""
            lines.append(f"    {d['address']:<40}{_n(d['bytes']):>14} B {_pct(d['share_of_ipv4_bytes']):>7}"
                         f" (cum. {_pct(d['cumulative_share'])})  {names}{more}")
    lines.append("")
    return "\n".join(lines)
