"""What the two atheris harnesses share: the properties of issue 7, as
plain functions that raise AssertionError (atheris then saves the input).

* no exception escapes ``analyze_paths`` (a whole-file failure is an
  ``errors`` entry, never a raise);
* every frame is counted once: ``totals.packets == inputs[0].packets``,
  and the carrier, payload and tunnel partitions add up to the totals;
* the fast decoder (with the compiled pass and with the numpy kernel) and
  the reference decoder give the same report;
* the text report, the DNS service report (text) carry no control
  character but newline; CSV cells never start like a formula; JSON is
  ASCII (hence UTF-8) and parses.
"""

import csv
import io
import json
import os
import re
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

# C0 controls but newline, DEL and the C1 block (0x9b is a one-byte CSI).
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Findings already reported (see README.md): tolerated unless
# IPV6FLOW_FUZZ_STRICT=1, so that a long run keeps hunting for new ones.
STRICT = os.environ.get("IPV6FLOW_FUZZ_STRICT", "") == "1"


def check_partitions(rep: dict) -> None:
    t = rep["totals"]
    assert rep["inputs"][0]["packets"] == t["packets"], (rep["inputs"][0], t)
    for view in ("carrier", "payload", "tunnels"):
        for unit in ("packets", "bytes"):
            got = sum(v[unit] for v in rep[view].values())
            assert got == t[unit], (view, unit, got, t[unit])
    for unit in ("packets", "bytes"):
        assert rep["ipv6"]["native"][unit] + rep["ipv6"]["tunnelled"][unit] \
            == rep["payload"]["ipv6"][unit], unit
        bins = sum(b["ipv4"][unit] + b["ipv6"][unit] for b in rep["timeseries"]["bins"])
        bins += rep["timeseries"].get("overflow", {unit: 0})[unit]      # past MAX_BINS
        assert bins == rep["payload"]["ipv4"][unit] + rep["payload"]["ipv6"][unit], unit
    assert sum(rep["decode"].values()) <= t["packets"]


def check_safe_output(rep: dict) -> None:
    """Render every output of the report and check it is safe to show."""
    from ipv6flow.report import jsonout, text
    from ipv6flow.report import services as services_report

    shown = text.render(rep)
    assert not CONTROL.search(shown), repr(CONTROL.search(shown).group())
    from ipv6flow.report import csvout, prometheus
    csvout.render(rep)
    metrics = prometheus.render(rep)
    assert not CONTROL.search(metrics), repr(CONTROL.search(metrics).group())
    blob = jsonout.dumps(rep)
    assert blob.isascii()
    json.loads(blob.encode("utf-8"))
    svc = rep.get("services")
    if svc is not None:
        shown = services_report.to_text(svc)
        assert not CONTROL.search(shown), repr(CONTROL.search(shown).group())
        for cell in csv_cells(services_report.to_csv(svc)):
            assert not cell.startswith(FORMULA_START), repr(cell)


def csv_cells(text: str):
    """The cells of a CSV text as a spreadsheet reads them: outside quotes,
    a bare CR ends a row as LF does (Excel, LibreOffice), so a CR written
    unquoted would start a new row whose first cell escapes the formula
    guard (found by this suite, fixed in f6cb4a7)."""
    for row in csv.reader(io.StringIO(text.replace("\r", "\n"), newline="")):
        yield from row




def known_difference(fast: dict, ref: dict):
    """The name of a known fast/reference difference that explains
    ``fast != ref``, or None."""
    if STRICT or len(fast["inputs"]) != len(ref["inputs"]):
        return None
    rest = [k for k in set(fast) | set(ref) if k != "inputs" and fast.get(k) != ref.get(k)]
    if rest:
        return None
    for a, b in zip(fast["inputs"], ref["inputs"]):
        # finding 1: the batch reader reads ahead (4 MiB) and meets a
        # decompression failure beyond the record that stops both readers
        # with an error; the record reader never gets there.
        same = {k: v for k, v in a.items() if k not in ("truncated", "warnings")} == \
            {k: v for k, v in b.items() if k not in ("truncated", "warnings")}
        if not (same and a["errors"] and a["compression"]):
            if a != b:
                return None
    return "read-ahead meets a decompression failure past an error"


def analyze_all_paths(path: str, opts, interval=60.0, services=None) -> dict:
    """The report of ``path`` from every decoder path: "reference", the
    fast decoder with the compiled pass ("fast", where it is built) and with
    the numpy kernel ("numpy"). Where one of the two is not built or left
    out (``conftest.fast_paths``), both names hold the other's report."""
    from conftest import fast_path, fast_paths
    from ipv6flow.engine.local import analyze_paths
    from ipv6flow.options import Options

    def report(decoder):
        return analyze_paths([path], Options(opts, interval, decoder,
                                             dns_suffixes=services)).report()

    reports = {}
    for name in fast_paths():
        with fast_path(name):
            reports["fast" if name == "compiled" else "numpy"] = report("fast")
    reports.setdefault("fast", reports.get("numpy"))
    reports.setdefault("numpy", reports["fast"])
    reports["reference"] = report("reference")
    return reports


def differential(path: str, services=()) -> dict:
    """Every decoder path over ``path`` (``analyze_all_paths``); returns the
    (identical) report."""
    from ipv6flow.decode import DecodeOptions

    reports = analyze_all_paths(path, DecodeOptions(), services=services)
    ref = reports["reference"]
    for name in ("fast", "numpy"):
        fast = reports[name]
        if fast != ref and not known_difference(fast, ref):
            diff = {k: (fast.get(k), ref.get(k)) for k in set(fast) | set(ref)
                    if fast.get(k) != ref.get(k)}
            raise AssertionError(f"{name} and reference reports differ: {diff!r}"[:4000])
    return ref
