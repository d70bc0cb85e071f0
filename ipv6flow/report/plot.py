"""The report as one PNG for a slide: IPv6 share over time, tunnel and
extension-header mix.

Left, the IPv6 share of IP traffic per time bin in percent (payload view,
packets and bytes) on a UTC time axis. Bins are drawn as steps, the width
they cover; a time without IP traffic (no bin in the report) is a gap in
the line; a lone bin too narrow to see gets a dot; more bins than the axis
has room for are merged into wider round ones (shares from summed counts,
and the panel title says so). Report schema 1 keeps only the payload view
per bin, so the carrier view (outer header, what the link carries) is drawn
as the whole-capture share, a flat reference line, and the legend and a
footnote say so; should bins one day carry ``"carrier": {"ipv4": PB,
"ipv6": PB}``, it is drawn per bin instead. Right, frames per tunnel kind
(outermost encapsulation, ``none`` left out) and per IPv6 extension-header
type, as horizontal bars with counts and percentages, largest first; kinds
with no frame are left out.

matplotlib is an optional extra (``pip install 'ipv6flow[plot]'``),
imported only when a plot is made; without it ``render`` raises
``MissingExtra``, whose message is the one line the CLI prints. The figure
is drawn on the Agg canvas directly (no pyplot: no global state, no display
needed) as a 16-inch-wide slide at ``width_px / 16`` dpi, so any size keeps
the layout and the PNG has exactly the pixels asked for. It is written
through a temp file and a rename like every report. Capture names come from
the user: they are drawn with ``safe`` and with mathtext off (a ``$`` in a
file name stays a dollar).
"""

import datetime as _dt
import json
import math
import os
import sys

from ..atomic import atomic_file
from ..errors import Ipv6flowError
from ..summary import SCHEMA_ID
from .text import safe

FIG_WIDTH_IN = 16.0     # the layout is made for 16 x 9 inches; dpi sets the pixels
COLORS = {"payload": "#1d4ed8", "carrier": "#ea580c", "tunnel": "#0f766e",
          "ext": "#7c3aed", "text": "#1f2937", "muted": "#6b7280", "grid": "#e5e7eb"}
TUNNEL_LABELS = {"6in4": "6in4", "6to4": "6to4", "isatap": "ISATAP", "6rd": "6rd",
                 "teredo": "Teredo", "ayiya": "AYIYA", "gre": "GRE", "gtpu": "GTP-U",
                 "l2tp": "L2TP", "vxlan": "VXLAN", "geneve": "Geneve", "4in6": "4in6",
                 "6in6": "6in6", "ipip": "IP-in-IP"}
EXT_LABELS = {"hop_by_hop": "Hop-by-Hop", "routing": "Routing", "fragment": "Fragment",
              "destination_options": "Dest. Options", "ah": "AH", "esp": "ESP",
              "mobility": "Mobility", "hip": "HIP", "shim6": "Shim6",
              "experimental": "Experimental"}
NICE_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 7 * 86400)


MECH_COLORS = {"nat64": "#b45309", "ds-lite": "#0369a1", "lw4o6": "#15803d",
               "map-e": "#be185d", "map-t": "#6d28d9"}
MECH_LABELS = {"nat64": "NAT64 / 464XLAT", "ds-lite": "DS-Lite", "lw4o6": "lw4o6",
               "map-e": "MAP-E", "map-t": "MAP-T"}


# The parts of the report the plot reads (REPORT.md section 7).
REPORT_KEYS = ("tool", "inputs", "time", "totals", "payload", "share", "tunnels",
               "extension_headers", "timeseries")


class MissingExtra(Ipv6flowError):
    """An optional dependency is not installed."""


class ReportFileError(Ipv6flowError):
    """A file that should hold an ipv6flow JSON report does not."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def load_report(path: str) -> dict:
    """Read a JSON report made by ``analyze --format json`` ('-': stdin)."""
    shown = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                data = fh.read()
    except FileNotFoundError:
        raise ReportFileError(shown, "no such file")
    except (OSError, UnicodeDecodeError) as e:
        raise ReportFileError(shown, f"cannot be read ({e.__class__.__name__}: "
                                     f"{getattr(e, 'strerror', None) or e})")
    try:
        report = json.loads(data)
    except ValueError:
        raise ReportFileError(shown, "not a JSON report (run: ipv6flow analyze --format json)")
    if not isinstance(report, dict) or report.get("schema") != SCHEMA_ID:
        found = report.get("schema") if isinstance(report, dict) else None
        raise ReportFileError(shown, f"not an ipv6flow report (schema {found!r}, "
                                     f"expected {SCHEMA_ID!r})")
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        raise ReportFileError(shown, f"incomplete ipv6flow report (no {', '.join(missing)})")
    return report


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("plotting needs matplotlib, an optional extra: "
                           "pip install 'ipv6flow[plot]'") from None
    del matplotlib  # the Agg canvas below needs no backend choice (no matplotlib.use)
    from matplotlib import dates as mdates
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return Figure, FigureCanvasAgg, mdates, ticker


# -- text ----------------------------------------------------------------------

def _n(v: int) -> str:
    return f"{v:,}"


def _pct(part, whole) -> str:
    if not whole:
        return "-"
    p = 100.0 * part / whole
    return "<0.1%" if 0 < p < 0.05 else f"{p:.1f}%"


def _utc(ts: float):
    """The UTC datetime of epoch seconds; None past what datetime holds."""
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.3g} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    if s < 365 * 86400:
        return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"
    return f"{s / (365.25 * 86400):.1f} years"


def _width(s: float) -> str:
    """A bin width as given: 0.5 s, 60 s -> 1 min, 3600 s -> 1 h."""
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g} h"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g} min"
    return f"{s:g} s"


def _span(first, last) -> str:
    if first is None:
        return "no frames"
    a, b = _utc(first), _utc(last)
    if a is None or b is None:
        return f"epoch {first:.0f} – {last:.0f} s (clock out of range)"
    fmt = "%H:%M:%S" if a.date() == b.date() else "%Y-%m-%d %H:%M:%S"
    return (f"{a:%Y-%m-%d %H:%M:%S} – {b.strftime(fmt)} UTC "
            f"({_duration(last - first)})")


def _names(inputs, room=60) -> str:
    """Capture names for the title, within about ``room`` characters.

    One name; two or three joined; more as "first … last (N captures)",
    which reads well for tcpdump -G rotations. Long names are cut in the
    middle, keeping the end (the date part of a rotated name).
    """
    names = [safe(os.path.basename(i["path"]) or i["path"]) if i["path"] != "-" else "<stdin>"
             for i in inputs]

    def cut(name, n):
        return name if len(name) <= n else name[:n // 3] + "…" + name[-(n - n // 3 - 1):]

    if not names:
        return "no input"
    if len(names) == 1:
        return cut(names[0], room)
    joined = ", ".join(names)
    if len(names) <= 3 and len(joined) <= room:
        return joined
    each = max((room - 20) // 2, 12)
    return f"{cut(names[0], each)} … {cut(names[-1], each)} ({len(names)} captures)"


# -- data ----------------------------------------------------------------------

def _series(bins, interval, view="payload"):
    """Step points (epoch x, packet share %, byte share %) with NaN at gaps.

    Each bin is a point at its start; a point at its end closes the step,
    with NaN when the next bin does not follow at once (a gap), else the
    next bin's point continues the line.
    """
    xs, yp, yb = [], [], []
    nan = float("nan")
    for i, b in enumerate(bins):
        if view == "payload":
            v4, v6 = b["ipv4"], b["ipv6"]
        else:
            v4, v6 = b["carrier"]["ipv4"], b["carrier"]["ipv6"]
        ip_p = v4["packets"] + v6["packets"]
        ip_b = v4["bytes"] + v6["bytes"]
        sp = 100.0 * v6["packets"] / ip_p if ip_p else nan
        sb = 100.0 * v6["bytes"] / ip_b if ip_b else nan
        xs.append(b["start"])
        yp.append(sp)
        yb.append(sb)
        end = b["start"] + interval
        nxt = bins[i + 1]["start"] if i + 1 < len(bins) else None
        if nxt is None:
            xs.append(end)
            yp.append(sp)
            yb.append(sb)
        elif nxt > end + interval * 1e-6:
            xs.append(end)
            yp.append(nan)
            yb.append(nan)
    return xs, yp, yb


# -- drawing -------------------------------------------------------------------

def _style_axes(ax, fs):
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(COLORS["muted"])
    ax.tick_params(labelsize=fs["tick"], colors=COLORS["text"])


def _bars(ax, title, items, total_label, whole, color, fs, empty_text):
    """Horizontal bars of (label, count), largest on top, counts at the ends."""
    ax.set_title(title, loc="left", fontsize=fs["panel"], color=COLORS["text"],
                 fontweight="bold", pad=fs["panel"] * 0.6)
    _style_axes(ax, fs)
    ax.spines["bottom"].set_visible(False)
    ax.set_xticks([])
    items = sorted(((lab, v) for lab, v in items if v), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.text(0.5, 0.5, empty_text, transform=ax.transAxes, ha="center", va="center",
                fontsize=fs["label"], color=COLORS["muted"], parse_math=False)
        return
    # Bar labels no taller than their slot: many kinds shrink the font.
    slot_in = ax.get_position().height * ax.figure.get_figheight() / max(len(items), 4)
    bar_fs = min(fs["bar"], slot_in * 0.8 * 72)
    labels = [lab for lab, _ in items]
    values = [v for _, v in items]
    ys = list(range(len(items)))
    ax.barh(ys, values, color=color, height=0.7)
    ax.set_yticks(ys, labels)
    # At least four bar slots, so one or two bars do not become slabs.
    ax.set_ylim(max(len(items), 4) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0, labelsize=bar_fs)
    top = max(values)
    ax.set_xlim(0, top * 1.45)
    for y, v in zip(ys, values):
        ax.text(v + top * 0.015, y, f"{_n(v)}  ({_pct(v, whole)})", va="center", ha="left",
                fontsize=bar_fs, color=COLORS["text"], parse_math=False)
    ax.text(0.0, -0.02, total_label, transform=ax.transAxes, ha="left", va="top",
            fontsize=fs["note"], color=COLORS["muted"], parse_math=False)


def _regroup(bins, interval, max_steps):
    """Bins merged k at a time (aligned to k * interval) so that the span
    holds at most ``max_steps`` steps; shares come from the summed counts.

    A day of 1 s bins is 86,400 steps on 900 pixels: drawn as is, it is a
    solid smear. Returns (bins, interval) unchanged when they fit.
    """
    if not bins:
        return bins, interval
    span = bins[-1]["start"] + interval - bins[0]["start"]
    k = math.ceil(span / interval / max_steps)
    if k <= 1:
        return bins, interval
    # Prefer a round width (10 min rather than 8) when it is a whole
    # number of bins.
    for nice in NICE_WIDTHS:
        m = nice / interval
        if m >= k and abs(m - round(m)) < 1e-9:
            k = round(m)
            break
    width = k * interval
    out = {}
    for b in bins:
        g = math.floor(round(b["start"] / interval) / k)
        e = out.get(g)
        if e is None:
            e = out[g] = {"start": g * width, "ipv4": {"packets": 0, "bytes": 0},
                          "ipv6": {"packets": 0, "bytes": 0}}
            if "carrier" in b:
                e["carrier"] = {f: {"packets": 0, "bytes": 0} for f in ("ipv4", "ipv6")}
        for view, src, dst in (("payload", b, e), ("carrier", b.get("carrier"), e.get("carrier"))):
            if src is None or dst is None:
                continue
            for fam in ("ipv4", "ipv6"):
                dst[fam]["packets"] += src[fam]["packets"]
                dst[fam]["bytes"] += src[fam]["bytes"]
    return [out[g] for g in sorted(out)], width


def _isolated(bins, interval):
    """Midpoints and shares of bins with no neighbour bin on either side."""
    out = []
    eps = interval * 1e-6
    for i, b in enumerate(bins):
        before = i > 0 and bins[i - 1]["start"] + interval >= b["start"] - eps
        after = i + 1 < len(bins) and b["start"] + interval >= bins[i + 1]["start"] - eps
        if not (before or after):
            ip = b["ipv4"]["packets"] + b["ipv6"]["packets"]
            if ip:
                out.append((b["start"] + interval / 2, 100.0 * b["ipv6"]["packets"] / ip))
    return out


def _date_axis(ax, mdates, fs):
    """UTC clock ticks on the x axis (dates in the offset text)."""
    locator = mdates.AutoDateLocator(tz=_dt.timezone.utc, minticks=4, maxticks=8)
    # matplotlib steps seconds and minutes 1, 5, 10...: a 9 s capture
    # got two ticks. With 2 in the list it gets five.
    locator.intervald[mdates.SECONDLY] = [1, 2, 5, 10, 15, 30]
    locator.intervald[mdates.MINUTELY] = [1, 2, 5, 10, 15, 30]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=_dt.timezone.utc)
    # Clock times on every tick (not a bare "20" for 22:13:20); the
    # date goes to the offset text at the axis end.
    formatter.formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
    formatter.zero_formats = ["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M:%S"]
    formatter.offset_formats = ["", "%Y", "%Y-%m", "%Y-%m-%d (UTC)", "%Y-%m-%d (UTC)",
                                "%Y-%m-%d (UTC)"]
    ax.xaxis.set_major_formatter(formatter)
    ax.xaxis.get_offset_text().set_fontsize(fs["tick"])


def _share_panel(ax, report, fs, mdates, ticker, legend_y=-0.115):
    ts = report["timeseries"]
    axis_px = ax.get_position().width * ax.figure.get_figwidth() * ax.figure.dpi
    bins, interval = _regroup(ts["bins"], ts["interval_s"], max(int(axis_px / 4), 10))
    share = report["share"]
    _style_axes(ax, fs)
    shown = f"{_width(interval)} bins"
    if interval != ts["interval_s"]:
        shown = f"{_width(ts['interval_s'])} bins drawn as {_width(interval)}"
    ax.set_title(f"IPv6 share of IP traffic over time ({shown})",
                 loc="left", fontsize=fs["panel"], fontweight="bold", color=COLORS["text"],
                 pad=fs["panel"] * 0.6)
    ax.set_ylim(-1.5, 101.5)
    ax.yaxis.set_major_locator(ticker.MultipleLocator(20))
    ax.yaxis.set_minor_locator(ticker.MultipleLocator(10))
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(100, decimals=0))
    ax.grid(True, which="major", axis="both", color=COLORS["grid"], linewidth=1)
    ax.grid(True, which="minor", axis="y", color=COLORS["grid"], linewidth=0.5)
    ax.set_axisbelow(True)
    ax.set_ylabel("IPv6 share (percent)", fontsize=fs["label"], color=COLORS["text"])

    first, last = report["time"]["first"], report["time"]["last"]
    if bins:
        x0, x1 = bins[0]["start"], bins[-1]["start"] + interval
    elif first is not None:
        x0, x1 = first, max(last, first + interval)
    else:
        x0 = x1 = None
    pad = (x1 - x0) * 0.01 if x0 is not None else 0.0
    # matplotlib dates end at year 9999; a capture with a broken clock
    # (pcapng-example.pcapng says year 586524) is drawn on epoch seconds.
    use_dates = x0 is not None and _utc(x0 - pad) is not None and _utc(x1 + pad) is not None
    if use_dates:
        def xconv(xs):
            return [mdates.date2num(_utc(x)) for x in xs]
        ax.set_xlabel("time (UTC)", fontsize=fs["label"], color=COLORS["text"])
    else:
        def xconv(xs):
            return list(xs)
        ax.set_xlabel("time (epoch seconds: some timestamps lie past year 9999)",
                      fontsize=fs["label"], color=COLORS["text"])

    lw = fs["line"]
    if bins:
        xs, yp, yb = _series(bins, interval)
        ax.plot(xconv(xs), yp, drawstyle="steps-post", color=COLORS["payload"], linewidth=lw,
                label="payload view, packets (per bin)", solid_joinstyle="miter")
        ax.plot(xconv(xs), yb, drawstyle="steps-post", color=COLORS["payload"],
                linewidth=lw * 0.8, linestyle=(0, (4, 2)), alpha=0.75,
                label="payload view, bytes (per bin)")
        # A lone bin narrower than a few pixels would vanish as a step:
        # mark it with a dot (long captures with gaps, merged reports).
        if interval / (x1 - x0 + 2 * pad) * axis_px < 6:
            lone = _isolated(bins, interval)
            if lone:
                ax.plot(xconv([x for x, _ in lone]), [y for _, y in lone], linestyle="none",
                        marker="o", markersize=lw * 2.6, color=COLORS["payload"])
    per_bin_carrier = bool(bins) and all("carrier" in b for b in bins)
    if per_bin_carrier:
        xs, cp, cb = _series(bins, interval, view="carrier")
        ax.plot(xconv(xs), cp, drawstyle="steps-post", color=COLORS["carrier"], linewidth=lw,
                label="carrier view, packets (per bin)")
        ax.plot(xconv(xs), cb, drawstyle="steps-post", color=COLORS["carrier"],
                linewidth=lw * 0.8, linestyle=(0, (4, 2)), alpha=0.75,
                label="carrier view, bytes (per bin)")
    elif share["carrier_ipv6_packets"] is not None:
        ax.axhline(100 * share["carrier_ipv6_packets"], color=COLORS["carrier"],
                   linewidth=lw * 0.8,
                   label=f"carrier view, packets: whole capture "
                         f"({100 * share['carrier_ipv6_packets']:.1f}%)")
        ax.axhline(100 * share["carrier_ipv6_bytes"], color=COLORS["carrier"],
                   linewidth=lw * 0.7, linestyle=(0, (1, 1.5)),
                   label=f"carrier view, bytes: whole capture "
                         f"({100 * share['carrier_ipv6_bytes']:.1f}%)")
    if use_dates:
        ax.set_xlim(_utc(x0 - pad), _utc(x1 + pad))
        _date_axis(ax, mdates, fs)
    elif x0 is not None:
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0), useOffset=False)
    else:
        ax.set_xticks([])

    note = None
    if share["ipv6_packets"] is None:
        note = "No IP traffic in this report"
    elif report["payload"]["ipv6"]["packets"] == 0:
        note = "No IPv6 traffic in this report (0%)"
    elif len(bins) == 1:
        note = "One time bin: use a smaller --interval for a curve"
    if note:
        ax.text(0.5, 0.55, note, transform=ax.transAxes, ha="center", va="center",
                fontsize=fs["label"], color=COLORS["muted"], parse_math=False,
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "white",
                      "edgecolor": COLORS["grid"]})
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(-0.01, legend_y), ncol=2, frameon=False,
                  fontsize=fs["legend"], handlelength=2.6, columnspacing=1.4)
    return per_bin_carrier


def _translation_series(report):
    """{mechanism: [(bin start, bytes)]} summed over the mechanism's gateways."""
    tr = report.get("translation") or {}
    out = {}
    for g in tr.get("gateways", ()):
        d = out.setdefault(g["mechanism"], {})
        for b in g["bins"]:
            d[b["start"]] = d.get(b["start"], 0) + b["bytes"]
    return {m: sorted(d.items()) for m, d in out.items()}


def _translation_panel(ax, report, fs, mdates, ticker, xlim):
    """Bytes per time bin carried by each IPv4-as-a-service mechanism
    (translated or encapsulated IPv4), one step line per mechanism."""
    series = _translation_series(report)
    interval = report["timeseries"]["interval_s"]
    _style_axes(ax, fs)
    ax.set_title(f"IPv4 as a service: bytes per {_width(interval)} bin by mechanism",
                 loc="left", fontsize=fs["panel"], fontweight="bold", color=COLORS["text"],
                 pad=fs["panel"] * 0.6)
    ax.grid(True, which="major", axis="both", color=COLORS["grid"], linewidth=1)
    ax.set_axisbelow(True)
    ax.set_ylabel("bytes per bin", fontsize=fs["label"], color=COLORS["text"])
    ax.yaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    use_dates = xlim is not None and all(_utc(x) is not None for x in xlim)

    def xconv(xs):
        return [mdates.date2num(_utc(x)) for x in xs] if use_dates else list(xs)

    order = ("nat64", "ds-lite", "lw4o6", "map-e", "map-t")
    for mech in sorted(series, key=order.index):
        pts = series[mech]
        xs, ys = [], []
        for start, nb in pts:
            # a step per bin, down to zero where the next bin is not adjacent
            if xs and xs[-1] < start:
                xs.extend([xs[-1], start])
                ys.extend([0, 0])
            xs.extend([start, start + interval])
            ys.extend([nb, nb])
        ax.plot(xconv(xs), ys, color=MECH_COLORS[mech], linewidth=fs["line"] * 0.9,
                label=f"{MECH_LABELS[mech]} ({_n(sum(nb for _, nb in pts))} bytes)")
    ax.set_ylim(bottom=0)
    if xlim is not None:
        ax.set_xlim(*(xconv(xlim)))
        if use_dates:
            _date_axis(ax, mdates, fs)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False,
              fontsize=fs["legend"], handlelength=2.0)


def _headline(report) -> str:
    sh = report["share"]
    if sh["ipv6_packets"] is None:
        return "No IP traffic"
    return (f"IPv6: {100 * sh['ipv6_packets']:.1f}% of packets, "
            f"{100 * sh['ipv6_bytes']:.1f}% of bytes (payload view)   ·   "
            f"on the wire: {100 * sh['carrier_ipv6_packets']:.1f}% / "
            f"{100 * sh['carrier_ipv6_bytes']:.1f}% (carrier view)")


def _clients(report) -> str:
    c = report.get("clients")
    if not c or not c["total"]:
        return ""
    return (f"  ·  IPv6-capable clients: {_n(c['ipv6_capable'])} of {_n(c['total'])} "
            f"({_pct(c['ipv6_capable'], c['total'])})")


def render(report: dict, path: str, width_px: int = 1600, height_px: int = 900) -> None:
    """Draw the report to a PNG of exactly ``width_px`` x ``height_px`` at ``path``."""
    if not (isinstance(width_px, int) and isinstance(height_px, int)
            and 320 <= width_px <= 10000 and 240 <= height_px <= 10000):
        raise ValueError("the PNG size must be 320..10000 x 240..10000 pixels")
    Figure, FigureCanvasAgg, mdates, ticker = _matplotlib()

    # Font sizes in points scale with the image, so a smaller PNG keeps its layout.
    # Every size is the 16-inch-wide slide at another dpi, so fonts, lines
    # and gaps keep their proportions; a taller or flatter image than 16:9
    # scales the fonts with its height.
    dpi = width_px / FIG_WIDTH_IN
    fig_h = height_px / dpi
    k = min(1.0, fig_h / 9.0)
    fs = {name: size * k for name, size in (
        ("title", 24), ("subtitle", 15), ("panel", 16), ("label", 14), ("tick", 13),
        ("legend", 13), ("bar", 13), ("note", 11.5), ("line", 2.6))}

    fig = Figure(figsize=(FIG_WIDTH_IN, fig_h), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    r = report
    t = r["totals"]
    fig.text(0.035, 0.955, f"IPv6 share — {_names(r['inputs'], int(62 / k))}", ha="left", va="top",
             fontsize=fs["title"], fontweight="bold", color=COLORS["text"], parse_math=False)
    fig.text(0.035, 0.895, f"{_span(r['time']['first'], r['time']['last'])}  ·  "
                           f"{_n(t['packets'])} frame{'' if t['packets'] == 1 else 's'}  ·  "
                           f"{_n(t['bytes'])} bytes{_clients(r)}",
             ha="left", va="top", fontsize=fs["subtitle"], color=COLORS["muted"],
             parse_math=False)
    fig.text(0.035, 0.853, _headline(r), ha="left", va="top", fontsize=fs["subtitle"],
             color=COLORS["text"], parse_math=False)

    tunnels = [(TUNNEL_LABELS.get(k, k), e["packets"]) for k, e in r["tunnels"].items()
               if k != "none"]
    eh = r["extension_headers"]
    ext = [(EXT_LABELS.get(k, k), v) for k, v in eh["by_type"].items()]
    # The two bar panels share the column by their number of bars, so bars
    # have one thickness in both.
    slots = [max(sum(1 for _, v in items if v), 4) + 2.5 for items in (tunnels, ext)]
    # The legend and notes sit under the share panel only; the bars use
    # the height down to the footer.
    # With IPv4 as a service in the report, its panel takes the lower part
    # of the left column (reports without it keep the layout they had).
    xlat = bool(_translation_series(r))
    ax_share = fig.add_subplot(fig.add_gridspec(1, 1, left=0.065, right=0.56, top=0.76,
                                                bottom=0.53 if xlat else 0.25)[0, 0])
    gs = fig.add_gridspec(2, 1, left=0.66, right=0.975, top=0.76, bottom=0.14,
                          height_ratios=slots, hspace=0.42)
    # (the legend under the shorter share panel keeps its distance in pixels)
    per_bin_carrier = _share_panel(ax_share, r, fs, mdates, ticker,
                                   -0.115 * (0.76 - 0.25) / (0.76 - 0.53) if xlat else -0.115)
    if xlat:
        ax_x = fig.add_subplot(fig.add_gridspec(1, 1, left=0.065, right=0.40, top=0.33,
                                                bottom=0.12)[0, 0])
        bins = r["timeseries"]["bins"]
        span = ((bins[0]["start"], bins[-1]["start"] + r["timeseries"]["interval_s"])
                if bins else None)
        _translation_panel(ax_x, r, fs, mdates, ticker, span)

    tunnelled = sum(v for _, v in tunnels)
    _bars(fig.add_subplot(gs[0, 0]), "Tunnel mix (frames)", tunnels,
          f"{_n(tunnelled)} of {_n(t['packets'])} frames tunnelled "
          f"({_pct(tunnelled, t['packets'])}); % of all frames",
          t["packets"], COLORS["tunnel"], fs, "No tunnelled frames")

    v6frames = sum(eh["chain_length"].values())
    _bars(fig.add_subplot(gs[1, 0]), "IPv6 extension headers (frames)", ext,
          f"{_n(eh['frames_with_any'])} of {_n(v6frames)} IPv6 frames carry any "
          f"({_pct(eh['frames_with_any'], v6frames)}); % of IPv6 frames",
          v6frames, COLORS["ext"], fs,
          "No extension headers" if v6frames else "No IPv6 frames")

    foot = ("Payload view: innermost IP header (what end hosts speak).  Carrier view: "
            "outermost IP header (6in4, Teredo ... are IPv4 on the wire).")
    if not per_bin_carrier:
        foot += "\nThe report keeps the carrier view for the whole capture only, not per bin."
    fig.text(0.035, 0.025, foot, ha="left", va="bottom", fontsize=fs["note"],
             color=COLORS["muted"], parse_math=False)
    fig.text(0.975, 0.025, f"ipv6flow {r['tool']['version']}", ha="right", va="bottom",
             fontsize=fs["note"], color=COLORS["muted"], parse_math=False)

    with atomic_file(path, binary=True, suffix=".png") as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white",
                    metadata={"Software": f"ipv6flow {r['tool']['version']}"})
