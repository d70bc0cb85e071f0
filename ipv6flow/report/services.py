"""The DNS service-readiness report as text and CSV.

DNS names come from packets: every name goes through ``text.safe`` before
a terminal sees it, and CSV cells that a spreadsheet would read as a
formula (= + - @, tab, CR) get a leading apostrophe (OWASP's advice on CSV
injection).
"""

import csv
import io

from .text import _n, _pct, safe

CSV_COLUMNS = ("name", "verdict", "a", "aaaa_native", "aaaa_synthesized",
               "ipv4_packets", "ipv4_bytes", "ipv6_native_packets", "ipv6_native_bytes",
               "nat64_packets", "nat64_bytes")


def cell(value) -> str:
    # control characters (CR that would split a row, ESC for terminals)
    # are written as escapes first; then the formula guard
    text = safe(str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(services: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in services["names"]:
        t = s["traffic"]
        w.writerow([cell(v) for v in (
            s["name"], s["verdict"], " ".join(s["a"]), " ".join(s["aaaa_native"]),
            " ".join(s["aaaa_synthesized"]),
            t["ipv4"]["packets"], t["ipv4"]["bytes"], t["ipv6_native"]["packets"],
            t["ipv6_native"]["bytes"], t["nat64"]["packets"], t["nat64"]["bytes"])])
    return out.getvalue()


def to_text(services: dict) -> str:
    sm = services["summary"]
    total = sm["names"]
    scope = (" under " + ", ".join(safe(x) for x in services["domain_suffixes"])
             if services["domain_suffixes"] else "")
    lines = [f"DNS service readiness: {_n(total)} name{'' if total == 1 else 's'} asked{scope}"]
    if total:
        lines.append(f"  IPv6-ready: {_n(sm['ipv6_ready'])} of {_n(total)} names "
                     f"({_pct(sm['ipv6_ready'], total).strip()}); DNS64 only: {_n(sm['dns64_only'])}; "
                     f"IPv4 only: {_n(sm['ipv4_only'])}; no answer: {_n(sm['no_answer'])}")
        names = [safe(s["name"]) for s in services["names"]]
        w = max(24, max(len(x) for x in names) + 2)
        lines.append(f"  {'name':<{w}}{'verdict':<12}{'A':>4}{'AAAA':>6}{'syn':>5}"
                     f"{'IPv4 pkts':>12}{'IPv6 pkts':>12}{'NAT64 pkts':>12}")
        for name, s in zip(names, services["names"]):
            t = s["traffic"]
            lines.append(f"  {name:<{w}}{s['verdict']:<12}{len(s['a']):>4}"
                         f"{len(s['aaaa_native']):>6}{len(s['aaaa_synthesized']):>5}"
                         f"{_n(t['ipv4']['packets']):>12}{_n(t['ipv6_native']['packets']):>12}"
                         f"{_n(t['nat64']['packets']):>12}")
    lines.append("")
    return "\n".join(lines)
