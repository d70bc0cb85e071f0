"""The time series as CSV: one row per time bin, for spreadsheets and jobs.

Reads only ``report["timeseries"]`` (REPORT.md section 7), so its rows are
exactly the report's bins, in the report's order (oldest first). A bin
holds the **payload** view (innermost IP header: what end hosts speak) of
IP traffic; non-IP frames are in no bin. Bins without IP traffic are absent
from the report and so from the CSV: a gap in ``start`` is a time with no
IP traffic, not a lost row.

Columns (``COLUMNS``; a header row comes first):

==================== =========================================================
start                bin start, epoch seconds (UTC), as in the JSON
start_utc            the same as ISO 8601, UTC, milliseconds: 2024-03-01T12:00:00.500Z
                     (empty for a time past year 9999: broken capture clocks)
interval_s           bin width in seconds (``--interval``)
ipv4_packets         frames whose payload is IPv4
ipv4_bytes           their bytes on the wire (original length)
ipv6_packets         frames whose payload is IPv6 (native and tunnelled)
ipv6_bytes           their bytes on the wire
ipv6_share_packets   ipv6_packets / (ipv4_packets + ipv6_packets), 0..1; empty
                     when the bin holds no IP packet
ipv6_share_bytes     the same for bytes
ipv4_flows           distinct IPv4 flows (bidirectional 5-tuples) with a frame in
                     the bin; empty for bins past the first 4096 (see the JSON's
                     ``flows.bins``)
ipv6_flows           the same for IPv6
ipv6_share_flows     ipv6_flows / (ipv4_flows + ipv6_flows), 0..1
==================== =========================================================

Summed over the rows, the packet and byte columns equal the report's
``payload.ipv4`` and ``payload.ipv6``. Numbers are written plainly (floats
with Python's shortest round-tripping repr) so that a reader gets back the
JSON's values exactly. Text cells get the same guard against formula
injection as the DNS CSV (a leading apostrophe before = + - @ tab CR): the
time series holds no text from packets today, but a column added later
might. Numbers are not guarded: ``-1.5`` is a number to every spreadsheet.
"""

import csv
import datetime as _dt
import io

from .services import cell

COLUMNS = ("start", "start_utc", "interval_s",
           "ipv4_packets", "ipv4_bytes", "ipv6_packets", "ipv6_bytes",
           "ipv6_share_packets", "ipv6_share_bytes", "ipv4_flows", "ipv6_flows",
           "ipv6_share_flows")


def _utc(ts: float) -> str:
    try:
        t = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""       # a clock past year 9999 (seen in real pcapng files)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):          # bool is an int; never a count here
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def _share(part: int, whole: int):
    return part / whole if whole else None


def rows(report: dict):
    """The CSV rows as lists of Python values (the header not included)."""
    ts = report["timeseries"]
    interval = ts["interval_s"]
    for b in ts["bins"]:
        v4, v6 = b["ipv4"], b["ipv6"]
        fl = b.get("flows")
        f4, f6 = (fl["ipv4"], fl["ipv6"]) if fl else (None, None)
        yield [b["start"], _utc(b["start"]), interval,
               v4["packets"], v4["bytes"], v6["packets"], v6["bytes"],
               _share(v6["packets"], v4["packets"] + v6["packets"]),
               _share(v6["bytes"], v4["bytes"] + v6["bytes"]),
               f4, f6, _share(f6, f4 + f6) if fl else None]


def _table(columns, table_rows) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for row in table_rows:
        w.writerow([cell(v) if isinstance(v, str) else _num(v) for v in row])
    return out.getvalue()


def render(report: dict) -> str:
    """The report's time series as CSV text (header row, then one row per bin)."""
    return _table(COLUMNS, rows(report))


# -- IPv4 as a service ------------------------------------------------------

TRANSLATION_COLUMNS = ("start", "start_utc", "interval_s", "mechanism", "gateway", "packets",
                       "bytes", "flows", "clients", "ipv4_destinations", "peak")


def translation_rows(report: dict):
    """One row per time bin and gateway of the ``translation`` section
    (gateways in the report's order, bins oldest first); ``peak`` is 1 on
    the gateway's peak bin (most bytes), else 0."""
    tr = report.get("translation") or {"gateways": []}
    interval = report["timeseries"]["interval_s"]
    for g in tr["gateways"]:
        peak = g["peak"]["start"] if g["peak"] else None
        for b in g["bins"]:
            yield [b["start"], _utc(b["start"]), interval, g["mechanism"], g["gateway"],
                   b["packets"], b["bytes"], b["flows"], b["clients"], b["ipv4_destinations"],
                   int(b["start"] == peak)]


def render_translation(report: dict) -> str:
    """The translation bins as CSV text (header row, then the rows)."""
    return _table(TRANSLATION_COLUMNS, translation_rows(report))
