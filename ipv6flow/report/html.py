"""The report as one self-contained HTML page to share (``--format html``).

Everything is inlined: the styles, a few lines of script (sorting the
organisation table by any column) and the charts, drawn here as SVG. The
page fetches nothing, so it opens the same from a mail attachment, an
intranet share or a USB stick, and prints (or becomes a PDF) with the
print styles at the end of the stylesheet.

Every text that comes from a capture or a map (paths, DNS names,
organisation names, prefixes) goes through ``html.escape``; numbers are
formatted here. Each figure the page shows carries its JSON path and raw
value (``data-figure``, ``data-value``), which is how the tests read the
rendered page back and compare it with the JSON report.
"""

import datetime as _dt
import html

from ..decode.constants import EXT_TYPES, TUNNEL_KINDS
from . import found_by_dns_alone

STYLE = """
:root{--v6:#1b7f5f;--v4:#b8860b;--ink:#1d2733;--mute:#5b6675;--line:#d5dae1;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0;background:#fff}
header{background:var(--ink);color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:#c9d1db;font-size:13px}
main{padding:8px 32px 40px;max-width:1500px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.card{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .v{font-size:28px;font-weight:650;color:var(--v6)}
.card .l{font-size:12px;color:var(--mute)}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--bg);font-weight:600;position:sticky;top:0;white-space:normal;
vertical-align:bottom;max-width:120px}
th:first-child,td:first-child,td.t{text-align:left}
table.sortable th{cursor:pointer}
table.sortable th:after{content:" \\2195";color:#9aa4b1;font-size:11px}
.wrap{overflow-x:auto}
.note{color:var(--mute);font-size:12px;margin:4px 0}
.bar{display:inline-block;height:9px;background:var(--v6);vertical-align:middle;margin-right:6px}
svg text{font:11px system-ui,sans-serif;fill:var(--mute)}
dl.defs dt{font-weight:600;margin-top:6px}
dl.defs dd{margin:0 0 0 14px;color:var(--mute);font-size:13px}
.names{white-space:normal;text-align:left;min-width:220px;max-width:420px}
th.t{text-align:left}
table.blk{width:auto;min-width:60%}
@media print{body{font-size:11px}table{font-size:10px}.wrap{overflow:visible}
th,td{padding:3px 4px}
header{background:#fff;color:#000;border-bottom:2px solid #000;padding:8px 0}
header p{color:#333}main{padding:0;max-width:none}th{position:static}
table.sortable th:after{content:""}.card{break-inside:avoid}
h2{break-after:avoid}tr{break-inside:avoid}}
"""

SCRIPT = """
function sortBy(t,i,up){
  var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),th=t.tHead.rows[0].cells[i];
  t.querySelectorAll('th').forEach(function(x){x.removeAttribute('data-dir')});
  th.setAttribute('data-dir',up?'up':'down');
  rows.sort(function(a,c){
    var x=a.cells[i].getAttribute('data-sort'),y=c.cells[i].getAttribute('data-sort');
    var nx=parseFloat(x),ny=parseFloat(y),r;
    if(!isNaN(nx)&&!isNaN(ny)){r=nx-ny}else if(!isNaN(nx)){r=-1}else if(!isNaN(ny)){r=1}
    else{r=x<y?-1:x>y?1:0}
    return up?r:-r});
  rows.forEach(function(r){b.appendChild(r)});
}
document.querySelectorAll('table.sortable').forEach(function(t){
  Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){sortBy(t,i,th.getAttribute('data-dir')!=='up')});
  });
});
/* a link may open the page sorted: #sort=TABLE:COLUMN[:down] */
var m=/^#sort=([a-z]+):([0-9]+)(:down)?$/.exec(location.hash);
if(m){var t=document.getElementById(m[1]);if(t&&t.classList.contains('sortable')&&
  +m[2]<t.tHead.rows[0].cells.length){sortBy(t,+m[2],!m[3])}}
"""

NO_ORG = "(no organisation)"


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x) -> str:
    return f"{x:,}"


def fig(path, value, shown=None, tag="span", extra="") -> str:
    """An element showing a figure, with its JSON path and raw value."""
    raw = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    text = shown if shown is not None else (pct(value) if isinstance(value, float) or value is None
                                            else num(value))
    sort = raw if raw else ""
    return (f'<{tag} data-figure="{esc(path)}" data-value="{esc(raw)}" data-sort="{esc(sort)}"'
            f'{extra}>{esc(text)}</{tag}>')


def td(path, value, shown=None):
    return fig(path, value, shown, "td")


def _utc(t):
    if t is None:
        return "–"
    try:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"{t:.0f} s"


# -- charts (inline SVG) -------------------------------------------------------

def share_chart(bins, width=900, height=240):
    """IPv6 share of packets per time bin (payload view), as a line."""
    pts = []
    for b in bins:
        p4, p6 = b["ipv4"]["packets"], b["ipv6"]["packets"]
        if p4 + p6:
            pts.append((b["start"], p6 / (p4 + p6)))
    if not pts:
        return '<p class="note">No IP traffic in any time bin.</p>'
    left, right, top, bottom = 48, 12, 10, 28
    w, h = width - left - right, height - top - bottom
    t0, t1 = pts[0][0], pts[-1][0]
    span = (t1 - t0) or 1.0

    def x(t):
        return left + (w * (t - t0) / span if len(pts) > 1 else w / 2)

    def y(v):
        return top + h * (1 - v)

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="IPv6 share of packets over time">']
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#e3e7ec"/><text x="{left - 6}" y="{y(v) + 4:.1f}" '
                   f'text-anchor="end">{int(v * 100)}%</text>')
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
    area = f"{x(pts[0][0]):.1f},{y(0):.1f} {line} {x(pts[-1][0]):.1f},{y(0):.1f}"
    out.append(f'<polygon points="{area}" fill="#1b7f5f" fill-opacity="0.12"/>')
    out.append(f'<polyline points="{line}" fill="none" stroke="#1b7f5f" stroke-width="2"/>')
    if len(pts) <= 120:
        for t, v in pts:
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="#1b7f5f"/>')
    ends = ((t0, "start"), (t1, "end")) if len(pts) > 1 else ((t0, "middle"),)
    for t, anchor in ends:
        out.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}">'
                   f'{esc(_utc(t))}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(items, path, unit="frames"):
    """A table with proportional bars: (label, key, value) items."""
    items = [it for it in items if it[2]]
    if not items:
        return '<p class="note">None seen.</p>'
    top = max(v for _, _, v in items)
    rows = []
    for label, key, v in items:
        width = max(1, round(240 * v / top))
        rows.append(f'<tr><td class="t">{esc(label)}</td><td class="t">'
                    f'<span class="bar" style="width:{width}px"></span>'
                    f'{fig(f"{path}.{key}", v)}</td></tr>')
    return f'<table><thead><tr><th>kind</th><th>{esc(unit)}</th></tr></thead><tbody>' \
           + "".join(rows) + "</tbody></table>"


# -- sections -----------------------------------------------------------------

def headline(r):
    cards = [("share.ipv6_packets", r["share"]["ipv6_packets"], "IPv6 share of packets"),
             ("share.ipv6_bytes", r["share"]["ipv6_bytes"], "IPv6 share of bytes"),
             ("share.carrier_ipv6_bytes", r["share"]["carrier_ipv6_bytes"],
              "IPv6 on the wire (carrier), bytes")]
    if "clients" in r:
        cards.append(("clients.share_ipv6_capable", r["clients"]["share_ipv6_capable"],
                      "clients IPv6-capable"))
    if "flows" in r:
        cards.append(("flows.share_ipv6", r["flows"]["share_ipv6"], "IPv6 share of flows"))
    if "adoption" in r:
        a = r["adoption"]["overall"]
        cards.append(("adoption.overall.ipv6_preferred.on_the_wire",
                      a["ipv6_preferred"]["on_the_wire"], "IPv6 preferred (dual-stacked names)"))
    cards.append(("totals.packets", r["totals"]["packets"], "frames"))
    out = ['<div class="cards">']
    for path, v, label in cards:
        out.append(f'<div class="card"><div class="v">{fig(path, v)}</div>'
                   f'<div class="l">{esc(label)}</div></div>')
    out.append("</div>")
    return "".join(out)


def nat64_section(r):
    sus = r["nat64"]["suspects"]
    if not sus:
        return '<p class="note">No NAT64 prefix seen.</p>'
    rows = []
    for i, s in enumerate(sus):
        p = f"nat64.suspects[{i}]"
        rows.append([text_cell(s["prefix"]), text_cell(s["kind"]),
                     text_cell(", ".join(s["evidence"]))]
                    + [td(f"{p}.{k}", s[k]) for k in ("packets", "bytes", "ipv6_clients",
                                                       "ipv4_destinations")])
    out = table(["prefix", "kind", "evidence", "packets", "bytes", "IPv6 clients",
                 "IPv4 destinations"], rows, left=("prefix", "kind", "evidence"))
    # as the text report's caution (report/text.py _nat64)
    dns_only = [s["prefix"] for s in sus if found_by_dns_alone(s)]
    if dns_only:
        out += (f'<p class="note">{esc(", ".join(dns_only))}: found from DNS answers alone, '
                "as a service numbering its IPv6 after its IPv4 (Cloudflare does) would be; "
                "an ipv4only.arpa answer or PREF64 confirms.</p>")
    return out


def text_cell(text, cls="t"):
    return f'<td class="{cls}">{esc(text)}</td>'


def table(head, rows, cls=None, left=()):
    """A plain table: header labels (those in ``left`` aligned left) and
    rows of cells already made."""
    th = "".join(f'<th class="t">{esc(h)}</th>' if h in left else f"<th>{esc(h)}</th>"
                 for h in head)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def clients_section(r):
    c = r.get("clients")
    if c is None:
        return '<p class="note">Not counted (--no-clients).</p>'
    cols = [("total", "clients"), ("ipv4_only", "IPv4 only"), ("ipv6_only", "IPv6 only"),
            ("dual_stack", "dual stack"), ("link_local_only", "link-local only"),
            ("share_ipv6_capable", "IPv6-capable")]
    head = "".join(f"<th>{esc(label)}</th>" for _, label in cols)
    cells = "".join(td(f"clients.{k}", c[k]) for k, _ in cols)
    note = "" if c["exact"] else (f'<p class="note">Estimated (relative standard error '
                                  f'{100 * c["relative_standard_error"]:.1f}%).</p>')
    return f"<table><thead><tr>{head}</tr></thead><tbody><tr>{cells}</tr></tbody></table>{note}"


ORG_COLUMNS = (
    # header, JSON path within the row, kind
    ("group", "group", "text"),
    ("IPv6 packets", "share.ipv6_packets", "share"),
    ("IPv6 bytes", "share.ipv6_bytes", "share"),
    ("IPv6 on the wire", "share.carrier_ipv6_bytes", "share"),
    ("IPv4 bytes", "payload.ipv4.bytes", "n"),
    ("IPv6 bytes", "payload.ipv6.bytes", "n"),
    ("native IPv6 pkts", "ipv6.native.packets", "n"),
    ("tunnelled pkts", "ipv6.tunnelled.packets", "n"),
    ("NAT64 pkts", "nat64.packets", "n"),
    ("clients", "clients.total", "n"),
    ("IPv6-capable", "clients.share_ipv6_capable", "share"),
    ("IPv4-only clients", "clients.ipv4_only", "n"),
    ("names ready", "names.ipv6_ready", "n"),
    ("DNS64 only", "names.dns64_only", "n"),
    ("IPv4 only", "names.ipv4_only", "n"),
    ("no answer", "names.no_answer", "n"),
)
ADOPTION_COLUMNS = (("traffic_packets", "packets"), ("traffic_bytes", "bytes"),
                    ("flows", "flows"), ("clients", "clients"),
                    ("ipv6_preferred", "IPv6 preferred"))


def _get(d, path):
    for k in path.split("."):
        d = d[k]
    return d


def org_label(name):
    return NO_ORG if name is None else name


def _name_cell(i, name, path):
    label = org_label(name)
    return (f'<td class="t" data-sort="{esc(label if name is not None else "")}"'
            f' data-figure="{path}[{i}].organisation">{esc(label)}</td>')


def organisations_section(r):
    """One sortable table of traffic, clients and names per organisation."""
    rows = r["organisations"]["rows"]
    head = ["<th>organisation</th>"] + [f"<th>{esc(h)}</th>" for h, _, _ in ORG_COLUMNS]
    body = []
    for i, row in enumerate(rows):
        cells = [_name_cell(i, row["organisation"], "organisations.rows")]
        for _, path, kind in ORG_COLUMNS:
            v = _get(row, path)
            if kind == "text":
                cells.append(f'<td class="t" data-sort="{esc(v)}">{esc(v)}</td>')
            else:
                cells.append(td(f"organisations.rows[{i}].{path}", v))
        body.append("<tr>" + "".join(cells) + "</tr>")
    quiet = r["organisations"].get("not_seen") or []
    note = (f'<p class="note" id="not-seen">Not seen in the capture (no frame, no name), so '
            f'not listed: {len(quiet):,}: {esc(", ".join(quiet))}</p>' if quiet else "")
    return ('<div class="wrap"><table class="sortable" id="organisations"><thead><tr>'
            + "".join(head) + "</tr></thead><tbody>" + "".join(body)
            + '</tbody></table></div><p class="note">Click a column to sort. “names”: the DNS '
              'names under the organisation’s domains, by their answers in the capture.</p>'
            + note)


def adoption_by_org_section(r):
    """One sortable table of the adoption shares per organisation."""
    ad = r["adoption"]["by_organisation"]
    bl = r["blocking"]["by_organisation"]
    head = ["<tr><th>organisation</th>"]
    head += [f"<th>{esc(label)}<br>wire</th><th>{esc(label)}<br>end to end</th>"
             for _, label in ADOPTION_COLUMNS]
    head.append("<th>IPv4 bytes to<br>names without AAAA</th></tr>")
    body = []
    for i, (a, b) in enumerate(zip(ad, bl)):
        cells = [_name_cell(i, a["organisation"], "adoption.by_organisation")]
        for key, _ in ADOPTION_COLUMNS:
            for side in ("on_the_wire", "end_to_end"):
                cells.append(td(f"adoption.by_organisation[{i}].{key}.{side}", a[key][side]))
        cells.append(td(f"blocking.by_organisation[{i}].share_of_ipv4_bytes",
                        b["share_of_ipv4_bytes"]))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ('<div class="wrap"><table class="sortable" id="adoption"><thead>' + "".join(head)
            + "</thead><tbody>" + "".join(body) + "</tbody></table></div>")


def adoption_section(r):
    a = r["adoption"]
    ov = a["overall"]
    cells = []
    for key, label in ADOPTION_COLUMNS:
        cells.append(f'<tr><td class="t">{esc(label)}</td>'
                     f'{td(f"adoption.overall.{key}.on_the_wire", ov[key]["on_the_wire"])}'
                     f'{td(f"adoption.overall.{key}.end_to_end", ov[key]["end_to_end"])}</tr>')
    defs = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in a["definitions"].items())
    return ('<table style="width:auto"><thead><tr><th>definition</th><th>on the wire</th>'
            '<th>end to end</th></tr></thead><tbody>' + "".join(cells) + "</tbody></table>"
            f'<dl class="defs">{defs}</dl>')


def _blocking_table(b, path):
    if not b["destinations"]:
        return '<p class="note">No IPv4 traffic to names without AAAA.</p>'
    rows = []
    for j, d in enumerate(b["destinations"]):
        p = f"{path}.destinations[{j}]"
        names = ", ".join(d["names"]) or "(no name in the capture's DNS)"
        if d["names_total"] > len(d["names"]):
            names += f" and {d['names_total'] - len(d['names'])} more"
        rows.append([text_cell(d["address"]), text_cell(names, "names")]
                    + [td(f"{p}.{k}", d[k]) for k in ("bytes", "share_of_ipv4_bytes",
                                                       "cumulative_share")])
    return table(["server", "names", "IPv4 bytes", "of IPv4 bytes", "cumulative"], rows, "blk",
                 left=("names",))


def blocking_section(r):
    bl = r["blocking"]
    out = [f'<p class="note">{esc(bl["definition"])}</p>']
    entries = [("The whole capture", bl["overall"], "blocking.overall")] + \
        [(org_label(b["organisation"]), b, f"blocking.by_organisation[{i}]")
         for i, b in enumerate(bl["by_organisation"])]
    for label, b, path in entries:
        if not b["destinations"] and not b["ipv4_only_clients"]:
            continue
        out.append(f"<h3>{esc(label)}</h3><p>Moving these services would move "
                   f'{fig(path + ".share_of_ipv4_bytes", b["share_of_ipv4_bytes"])} of its IPv4 '
                   f'traffic to IPv6; {fig(path + ".ipv4_only_clients", b["ipv4_only_clients"])} '
                   f'of {fig(path + ".clients", b["clients"])} clients are IPv4-only.</p>')
        out.append(_blocking_table(b, path))
    return "".join(out)


def render(r: dict) -> str:
    inputs = ", ".join(i["path"] for i in r["inputs"]) or "(merged reports)"
    title = "IPv6 scorecard" if "organisations" in r else "IPv6 report"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(inputs)} · {esc(_utc(r['time']['first']))} to "
        f"{esc(_utc(r['time']['last']))} · ipv6flow {esc(r['tool']['version'])}</p></header><main>",
        "<h2>Headline</h2>", headline(r),
    ]
    if "organisations" in r:
        parts += ["<h2>Organisations</h2>", organisations_section(r),
                  "<h2>Adoption by the public definitions</h2>", adoption_section(r),
                  "<h3>Per organisation</h3>", adoption_by_org_section(r),
                  "<h2>What blocks IPv6</h2>", blocking_section(r)]
    tun = r["tunnels"]
    eh = r["extension_headers"]
    parts += [
        "<h2>IPv6 share over time</h2>", share_chart(r["timeseries"]["bins"]),
        '<p class="note">Share of IP packets that are IPv6 (payload view), per '
        + esc(format(r["timeseries"]["interval_s"], "g")) + ' s bin.</p>',
        "<h2>Tunnels</h2>",
        bars([(k, f"{k}.packets", tun[k]["packets"]) for k in TUNNEL_KINDS if k != "none"],
             "tunnels", "packets"),
        "<h2>Extension headers</h2>",
        bars([(k, k, eh["by_type"][k]) for k in EXT_TYPES], "extension_headers.by_type"),
        "<h2>NAT64</h2>", nat64_section(r),
        "<h2>Clients</h2>", clients_section(r),
        "</main>",
    ]
    if "organisations" in r:
        parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "".join(parts)

