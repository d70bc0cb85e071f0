"""Machine-readable outputs and the plot: CSV time series, OpenMetrics text
for the node-exporter textfile collector, and the PNG.

Each renderer is a pure function of the JSON report, so the tests take a
real report (samples/mixed.pcap through the real CLI) and edge cases made
from it, and check every figure against the report it came from.
"""

import copy
import csv
import datetime as dt
import io
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ipv6flow.report import csvout, prometheus

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "mixed.pcap"

from conftest import need_module


@pytest.fixture
def mpl():
    return need_module("matplotlib", "pip install 'ipv6flow[plot]'")


@pytest.fixture
def prom():
    return need_module("prometheus_client", "pip install 'ipv6flow[test]'")


# Skip outside CI, fail under CI (tests/conftest.py).
needs_mpl = pytest.mark.usefixtures("mpl")
needs_prom = pytest.mark.usefixtures("prom")


@pytest.fixture(scope="module")
def report():
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                        "--interval", "1", str(SAMPLE)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert len(rep["timeseries"]["bins"]) > 3
    return rep


def _bin(start, v4p, v4b, v6p, v6b):
    return {"start": start, "ipv4": {"packets": v4p, "bytes": v4b},
            "ipv6": {"packets": v6p, "bytes": v6b}}


def edge_reports(report):
    """Reports a plot or a renderer must survive: one bin, no IPv6, no IP,
    no frames at all, a broken clock past year 9999, a long series with a
    gap and many inputs."""
    out = {}
    r = copy.deepcopy(report)
    r["timeseries"]["bins"] = [_bin(1700000000.0, 10, 1000, 5, 700)]
    out["single-bin"] = r

    r = copy.deepcopy(report)
    for b in r["timeseries"]["bins"]:
        b["ipv6"] = {"packets": 0, "bytes": 0}
    r["payload"]["ipv6"] = r["carrier"]["ipv6"] = {"packets": 0, "bytes": 0}
    r["share"] = {k: 0.0 for k in r["share"]}
    for k in r["tunnels"]:
        if k != "none":
            r["tunnels"][k] = {"packets": 0, "bytes": 0}
    r["extension_headers"]["by_type"] = {k: 0 for k in r["extension_headers"]["by_type"]}
    r["extension_headers"]["chain_length"] = {}
    r["extension_headers"]["frames_with_any"] = 0
    out["no-ipv6"] = r

    r = copy.deepcopy(out["no-ipv6"])
    r["timeseries"]["bins"] = []
    r["share"] = {k: None for k in r["share"]}
    r["nat64"]["suspects"] = []
    out["no-ip"] = r

    r = copy.deepcopy(out["no-ip"])
    r["time"] = {"first": None, "last": None}
    r["inputs"] = []
    out["empty"] = r

    r = copy.deepcopy(report)
    r["timeseries"]["bins"] = [_bin(1422527940.0, 20, 2000, 0, 0),
                               _bin(18446744073180.0, 96, 9000, 4, 500)]
    r["time"] = {"first": 1422527998.5, "last": 18446744073204.2}
    out["clock-past-9999"] = r

    r = copy.deepcopy(report)
    r["timeseries"] = {"interval_s": 60.0, "bins": [
        _bin(1709251200.0 + 60 * i, 6000, 6000 * 700, 3000 + 10 * (i % 97), 3000 * 720)
        for i in range(1440) if not 600 <= i < 660]}
    r["time"] = {"first": 1709251200.0, "last": 1709251200.0 + 86399}
    r["inputs"] = [dict(report["inputs"][0], path=f"/cap/rtr-{h:02d}$a.pcap") for h in range(24)]
    out["day-with-gap"] = r
    return out


# -- CSV -------------------------------------------------------------------------

def _csv(report):
    text = csvout.render(report)
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def test_csv_one_row_per_bin_and_sums_equal_the_totals(report):
    header, rows = _csv(report)
    assert tuple(header) == csvout.COLUMNS == (
        "start", "start_utc", "interval_s", "ipv4_packets", "ipv4_bytes", "ipv6_packets",
        "ipv6_bytes", "ipv6_share_packets", "ipv6_share_bytes", "ipv4_flows", "ipv6_flows",
        "ipv6_share_flows")
    bins = report["timeseries"]["bins"]
    assert len(rows) == len(bins)
    col = {name: i for i, name in enumerate(header)}
    for row, b in zip(rows, bins):
        assert float(row[col["start"]]) == b["start"]
        assert dt.datetime.fromisoformat(row[col["start_utc"]].replace("Z", "+00:00")) \
            == dt.datetime.fromtimestamp(b["start"], dt.timezone.utc)
        assert float(row[col["interval_s"]]) == report["timeseries"]["interval_s"] == 1.0
        for fam in ("ipv4", "ipv6"):
            for unit in ("packets", "bytes"):
                assert int(row[col[f"{fam}_{unit}"]]) == b[fam][unit]
        for unit in ("packets", "bytes"):
            whole = b["ipv4"][unit] + b["ipv6"][unit]
            assert float(row[col[f"ipv6_share_{unit}"]]) == b["ipv6"][unit] / whole
        f4, f6 = int(row[col["ipv4_flows"]]), int(row[col["ipv6_flows"]])
        assert (f4, f6) == (b["flows"]["ipv4"], b["flows"]["ipv6"])
        assert float(row[col["ipv6_share_flows"]]) == f6 / (f4 + f6)
    # one-second bins of a short capture: every bin's flows are exact, and
    # a flow lives in at least one bin
    assert sum(int(r[col["ipv4_flows"]]) for r in rows) >= report["flows"]["ipv4"] > 0
    for fam in ("ipv4", "ipv6"):
        for unit in ("packets", "bytes"):
            assert sum(int(r[col[f"{fam}_{unit}"]]) for r in rows) \
                == report["payload"][fam][unit]
    # Bins hold IP traffic only: with non-IP the sums are the totals.
    for unit in ("packets", "bytes"):
        assert sum(int(r[col[f"ipv4_{unit}"]]) + int(r[col[f"ipv6_{unit}"]]) for r in rows) \
            + report["payload"]["non_ip"][unit] == report["totals"][unit]


def test_csv_edge_cases(report):
    edges = edge_reports(report)
    header, rows = _csv(edges["empty"])
    assert tuple(header) == csvout.COLUMNS and rows == []
    header, rows = _csv(edges["clock-past-9999"])
    assert [r[1] for r in rows] == ["2015-01-29T10:39:00.000Z", ""]
    assert float(rows[1][0]) == 18446744073180.0
    # An empty bin (possible when merged reports carry one) has empty shares.
    r = copy.deepcopy(report)
    r["timeseries"]["bins"] = [_bin(-60.0, 0, 0, 0, 0)]
    header, rows = _csv(r)
    assert rows == [["-60.0", "1969-12-31T23:59:00.000Z", "1.0", "0", "0", "0", "0", "", "", "", "",
                    ""]]


def test_csv_text_cells_are_guarded_against_formulas(report, monkeypatch):
    # The time series has no text from packets; a text column added later
    # gets the guard, numbers (even negative ones) are left as numbers.
    monkeypatch.setattr(csvout, "rows", lambda rep: iter([
        ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", -5, 0.25, None, "ok"]]))
    _, rows = _csv(report)
    assert rows == [["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "-5", "0.25", "", "ok"]]


# -- Prometheus / OpenMetrics ----------------------------------------------------------

NOW = 1750000000.5


def _families(text):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in fams.values():
        for s in f.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, key
            samples[key] = s.value
    return fams, samples


def _get(samples, name, **labels):
    return samples[("ipv6flow_" + name, frozenset(labels.items()))]


@needs_prom
def test_prometheus_parses_and_equals_the_report(report):
    text = prometheus.render(report, now=NOW)
    assert text.endswith("\n# EOF\n") and "\n\n" not in text
    fams, s = _families(text)
    r = report
    assert all(name.startswith("ipv6flow_") for name in fams)

    # Types, units and the _total suffix.
    for name, f in fams.items():
        if f.type == "counter":
            assert all(x.name == name + "_total" for x in f.samples), name
        if name.endswith("_bytes"):
            assert f.unit == "bytes", name
        assert f.documentation, name
    assert fams["ipv6flow_ipv6_share_ratio"].type == "gauge"
    assert fams["ipv6flow_ipv6_share_ratio"].unit == "ratio"
    assert fams["ipv6flow_last_run_timestamp_seconds"].unit == "seconds"

    assert _get(s, "packets_total") == r["totals"]["packets"]
    assert _get(s, "bytes_total") == r["totals"]["bytes"]
    for view in ("carrier", "payload"):
        for fam in ("ipv4", "ipv6", "non_ip"):
            for unit in ("packets", "bytes"):
                assert _get(s, f"view_{unit}_total", view=view, family=fam) \
                    == r[view][fam][unit]
    for mode in ("native", "tunnelled"):
        for unit in ("packets", "bytes"):
            assert _get(s, f"ipv6_{unit}_total", mode=mode) == r["ipv6"][mode][unit]
    share = r["share"]
    for (view, unit), key in {("payload", "packets"): "ipv6_packets",
                              ("payload", "bytes"): "ipv6_bytes",
                              ("carrier", "packets"): "carrier_ipv6_packets",
                              ("carrier", "bytes"): "carrier_ipv6_bytes"}.items():
        assert _get(s, "ipv6_share_ratio", view=view, measure=unit) == share[key]
    for kind, pb in r["tunnels"].items():
        for unit in ("packets", "bytes"):
            assert _get(s, f"tunnel_{unit}_total", tunnel=kind) == pb[unit]
    assert sum(_get(s, "tunnel_packets_total", tunnel=k) for k in r["tunnels"]) \
        == r["totals"]["packets"]
    eh = r["extension_headers"]
    for k, v in eh["by_type"].items():
        assert _get(s, "extension_header_frames_total", type=k) == v
    assert _get(s, "extension_header_any_frames_total") == eh["frames_with_any"]
    for k, v in eh["anomalies"].items():
        assert _get(s, "extension_header_anomalies_total", anomaly=k) == v
    for k, v in r["decode"].items():
        assert _get(s, "decode_problems_total", problem=k) == v
    c = r["clients"]
    assert c["total"] > 0
    for k in ("ipv4_only", "ipv6_only", "dual_stack", "link_local_only"):
        assert _get(s, "clients", family=k) == c[k]
    assert _get(s, "clients_ipv6_capable_ratio") == c["share_ipv6_capable"]
    assert _get(s, "clients_info", key=c["key"]) == 1
    for k in ("ipv4", "ipv6"):
        assert _get(s, "flows", family=k) == r["flows"][k]
    for k, v in r["flows"]["by_tunnel"].items():
        assert _get(s, "flows_by_tunnel", tunnel=k) == v
    assert r["nat64"]["suspects"]
    for sp in r["nat64"]["suspects"]:
        lb = {"prefix": sp["prefix"], "kind": sp["kind"]}
        assert _get(s, "nat64_suspect_packets_total", **lb) == sp["packets"]
        assert _get(s, "nat64_suspect_bytes_total", **lb) == sp["bytes"]
        assert _get(s, "nat64_suspect_ipv6_clients", **lb) == sp["ipv6_clients"]
        assert _get(s, "nat64_suspect_ipv4_destinations", **lb) == sp["ipv4_destinations"]
        assert _get(s, "nat64_suspect_info", evidence=",".join(sp["evidence"]), **lb) == 1
    assert _get(s, "dns64_synthesized_answers_total") \
        == r["nat64"]["dns64"]["synthesized_answers"]
    inp = r["inputs"][0]
    assert _get(s, "input_info", path=inp["path"], format="pcap", compression="none") == 1
    assert _get(s, "input_packets_total", path=inp["path"]) == inp["packets"]
    assert _get(s, "input_bytes_total", path=inp["path"]) == inp["bytes"]
    assert _get(s, "input_errors", path=inp["path"]) == 0
    assert _get(s, "input_truncated", path=inp["path"]) == 0
    assert _get(s, "capture_first_timestamp_seconds") == r["time"]["first"]
    assert _get(s, "capture_last_timestamp_seconds") == r["time"]["last"]
    assert _get(s, "last_run_timestamp_seconds") == NOW
    assert _get(s, "build_info", version=r["tool"]["version"]) == 1
    assert _get(s, "report_partial") == 0
    _, s = _families(prometheus.render(dict(r, partial=True), now=NOW))
    assert _get(s, "report_partial") == 1


@needs_prom
def test_prometheus_reads_in_the_textfile_collectors_format_too(report):
    """node_exporter reads textfiles with the older Prometheus text parser:
    no `info` type (it refuses the whole file), no sample timestamps."""
    from prometheus_client.parser import text_string_to_metric_families
    text = prometheus.render(report, now=NOW)
    assert " info\n" not in text
    values = {}
    for f in text_string_to_metric_families(text):
        for smp in f.samples:
            assert smp.timestamp is None
            values[(smp.name, frozenset(smp.labels.items()))] = smp.value
    assert values[("ipv6flow_packets_total", frozenset())] == report["totals"]["packets"]


@needs_prom
def test_prometheus_label_values_are_escaped(report):
    r = copy.deepcopy(report)
    odd = 'cap "a"\\b\nc\udcff.pcap'        # quote, backslash, newline, non-UTF-8 byte
    base = r["inputs"][0]
    r["inputs"] = [dict(base, path=odd), dict(base, path=odd, errors=["boom"], truncated=True),
                   dict(base, path="-", format="pcapng", compression="zstd")]
    text = prometheus.render(r, now=NOW)
    text.encode("utf-8")                        # valid UTF-8 whatever the path held
    assert 'path="cap \\"a\\"\\\\b\\nc\\\\udcff.pcap"' in text
    _, s = _families(text)
    shown = 'cap "a"\\b\nc\\udcff.pcap'
    # The same path twice is one series, its figures added.
    assert _get(s, "input_packets_total", path=shown) == 2 * base["packets"]
    assert _get(s, "input_errors", path=shown) == 1
    assert _get(s, "input_truncated", path=shown) == 1
    assert _get(s, "input_info", path="-", format="pcapng", compression="zstd") == 1


@needs_prom
@pytest.mark.parametrize("case", ["no-ipv6", "no-ip", "empty", "clock-past-9999", "day-with-gap"])
def test_prometheus_edge_cases_parse(report, case):
    r = edge_reports(report)[case]
    fams, s = _families(prometheus.render(r, now=NOW))
    share = [x for x in fams["ipv6flow_ipv6_share_ratio"].samples]
    if r["share"]["ipv6_packets"] is None:
        assert share == []                       # absent, not NaN, without IP traffic
    else:
        assert len(share) == 4
    if r["time"]["first"] is None:
        assert fams["ipv6flow_capture_first_timestamp_seconds"].samples == []


def test_prometheus_default_time_is_now(report):
    text = prometheus.render(report)
    line = [x for x in text.splitlines() if x.startswith("ipv6flow_last_run_timestamp_seconds ")]
    import time
    assert abs(float(line[0].split()[1]) - time.time()) < 60


# -- plot ----------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", "PNG not complete"
    return width, height


def _panels(fig):
    """{panel title: axes} of a rendered figure."""
    return {ax.get_title(loc="left"): ax for ax in fig.axes}


def _bars_of(ax):
    """{bar label: bar length} of a horizontal bar panel."""
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return dict(zip(labels, (round(p.get_width()) for p in ax.patches)))


def _png_pixels(path):
    import matplotlib.image as mimage
    return mimage.imread(str(path))


@needs_mpl
@pytest.mark.parametrize("size", [None, (800, 450), (1921, 1081), (1000, 1000)])
def test_plot_is_a_png_of_the_asked_size(report, tmp_path, size):
    from ipv6flow.report import plot
    out = tmp_path / "share.png"
    if size is None:
        plot.render(report, str(out))
        assert png_size(out) == (1600, 900)
    else:
        plot.render(report, str(out), width_px=size[0], height_px=size[1])
        assert png_size(out) == size
    assert os.listdir(tmp_path) == ["share.png"]           # no temp file left behind
    # something is drawn: a blank or nearly blank image is a broken plot
    px = _png_pixels(out)
    assert px.shape[:2] == (png_size(out)[1], png_size(out)[0])
    assert (px[..., :3] < 0.9).any(axis=2).mean() > 0.02


@needs_mpl
def test_plot_draws_the_reports_figures(report, tmp_path, drawn):
    # what the PNG shows, read back from the figure it was drawn from: the
    # headline shares, every bin's IPv6 share, and every tunnel and
    # extension-header bar with its count
    from ipv6flow.report import plot
    plot.render(report, str(tmp_path / "share.png"))
    fig, = drawn
    texts = [t.get_text() for t in fig.texts]
    sh = report["share"]
    assert (f"IPv6: {100 * sh['ipv6_packets']:.1f}% of packets, "
            f"{100 * sh['ipv6_bytes']:.1f}% of bytes (payload view)") in texts[2]
    assert f"{report['totals']['packets']:,} frames" in texts[1]
    panels = _panels(fig)
    share_ax = next(ax for t, ax in panels.items() if t.startswith("IPv6 share of IP traffic"))
    line = next(ln for ln in share_ax.get_lines()
                if ln.get_label() == "payload view, packets (per bin)")
    bins = report["timeseries"]["bins"]
    want = [100 * b["ipv6"]["packets"] / (b["ipv4"]["packets"] + b["ipv6"]["packets"])
            for b in bins if b["ipv4"]["packets"] + b["ipv6"]["packets"]]
    got = [y for y in line.get_ydata() if y == y]           # NaN marks a gap
    assert got[:len(want)] == pytest.approx(want)
    tunnels = {plot.TUNNEL_LABELS[k]: v["packets"] for k, v in report["tunnels"].items()
               if k != "none" and v["packets"]}
    assert _bars_of(panels["Tunnel mix (frames)"]) == tunnels and len(tunnels) >= 10
    ext = {plot.EXT_LABELS[k]: v for k, v in report["extension_headers"]["by_type"].items() if v}
    assert _bars_of(panels["IPv6 extension headers (frames)"]) == ext and ext


NOTES = {"single-bin": "One time bin: use a smaller --interval for a curve",
         "no-ipv6": "No IPv6 traffic in this report (0%)",
         "no-ip": "No IP traffic in this report", "empty": "No IP traffic in this report",
         "clock-past-9999": None, "day-with-gap": None}


@needs_mpl
@pytest.mark.parametrize("case", sorted(NOTES))
def test_plot_edge_cases(report, tmp_path, case, drawn):
    from ipv6flow.report import plot
    out = tmp_path / f"{case}.png"
    rep = edge_reports(report)[case]
    plot.render(rep, str(out))
    assert png_size(out) == (1600, 900)
    fig, = drawn
    share_ax = next(ax for t, ax in _panels(fig).items()
                    if t.startswith("IPv6 share of IP traffic"))
    notes = [t.get_text() for t in share_ax.texts]
    assert notes == ([NOTES[case]] if NOTES[case] else [])
    xlabel = share_ax.get_xlabel()
    if case == "clock-past-9999":
        assert xlabel.startswith("time (epoch seconds")
    elif case != "empty":
        assert xlabel == "time (UTC)"
    if case == "day-with-gap":
        # a day of one-minute bins is regrouped, and the hour of gap is a
        # break in the line (NaN), not a slope across it
        assert "1 min bins drawn as" in share_ax.get_title(loc="left")
        ys = next(ln for ln in share_ax.get_lines()
                  if ln.get_label() == "payload view, packets (per bin)").get_ydata()
        assert any(y != y for y in ys)
    if case in ("no-ip", "empty", "no-ipv6"):
        bars = _panels(fig)["Tunnel mix (frames)"]
        assert bars.patches == [] or len(bars.patches) == 0
        assert [t.get_text() for t in bars.texts] == ["No tunnelled frames"]


@needs_mpl
def test_plot_replaces_a_file_whole_with_usual_permissions(report, tmp_path):
    from ipv6flow.report import plot
    out = tmp_path / "share.png"
    out.write_bytes(b"old")
    old = os.umask(0o022)
    try:
        plot.render(report, str(out))
    finally:
        os.umask(old)
    assert png_size(out) == (1600, 900)
    assert out.stat().st_mode & 0o777 == 0o644


@needs_mpl
def test_plot_rejects_silly_sizes(report, tmp_path):
    from ipv6flow.report import plot
    with pytest.raises(ValueError):
        plot.render(report, str(tmp_path / "x.png"), width_px=10, height_px=10)


def test_regrouping_keeps_the_counts():
    from ipv6flow.report import plot
    bins = [_bin(60.0 * i, i, 10 * i, 2 * i, 20 * i) for i in range(1000) if i % 7]
    grouped, width = plot._regroup(bins, 60.0, 200)
    assert width == 300.0 and len(grouped) <= 200
    for fam in ("ipv4", "ipv6"):
        for unit in ("packets", "bytes"):
            assert sum(b[fam][unit] for b in grouped) == sum(b[fam][unit] for b in bins)
    assert plot._regroup(bins[:10], 60.0, 200) == (bins[:10], 60.0)


def test_plot_without_matplotlib_names_the_extra(report, tmp_path, monkeypatch):
    from ipv6flow.errors import Ipv6flowError
    from ipv6flow.report import plot
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import fails
    with pytest.raises(plot.MissingExtra) as e:
        plot.render(report, str(tmp_path / "x.png"))
    assert isinstance(e.value, Ipv6flowError)
    msg = str(e.value)
    assert "\n" not in msg and "pip install 'ipv6flow[plot]'" in msg
    assert not (tmp_path / "x.png").exists()


def test_load_report_errors_are_one_line(tmp_path, report):
    from ipv6flow.report import plot
    good = tmp_path / "r.json"
    good.write_text(json.dumps(report))
    assert plot.load_report(str(good)) == report
    cases = {"missing.json": (None, "no such file"),
             "notjson.json": ("{oops", "not a JSON report"),
             "other.json": ('{"schema": "x/1"}', "not an ipv6flow report (schema 'x/1'"),
             "part.json": ('{"schema": "ipv6flow/report/1", "tool": {}}',
                           "incomplete ipv6flow report (no inputs, time, "),
             "dir.json": (..., "cannot be read (IsADirectoryError: Is a directory)")}
    for name, (content, expected) in cases.items():
        p = tmp_path / name
        if content is ...:
            p.mkdir()
        elif content is not None:
            p.write_text(content)
        with pytest.raises(plot.ReportFileError) as e:
            plot.load_report(str(p))
        assert str(e.value).startswith(f"{p}: ") and expected in str(e.value)
        assert "\n" not in str(e.value)


def test_share_is_nan_free_in_csv_and_metrics(report):
    # Shares are fractions in [0, 1] everywhere; never NaN or inf text.
    assert "nan" not in csvout.render(report).lower()
    assert "inf" not in csvout.render(report).lower()
    for line in prometheus.render(report, now=NOW).splitlines():
        if not line.startswith("#"):
            assert math.isfinite(float(line.rsplit(" ", 1)[1])), line
    header, *rows = list(csv.reader(io.StringIO(csvout.render(report))))
    shares = [i for i, name in enumerate(header) if "share" in name]
    assert len(shares) == 3
    for row in rows:
        for cell in (row[i] for i in shares):
            assert 0.0 <= float(cell) <= 1.0 and math.isfinite(float(cell))
