"""The whole text report of every bundled sample, pinned.

Each golden file in tests/golden/ was read once by eye (headline, tables,
alignment, percentages) and then pinned: any change to the text report,
a figure, a percentage's rounding or a column, shows here as a diff. After a
change that is meant, regenerate with ``IPV6FLOW_UPDATE_GOLDEN=1 python -m
pytest tests/test_golden.py`` and read the diff before committing it.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"
SIXRD = ("--6rd-prefix", "2a01:e30::/28")
SAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "samples").rglob("*.pcap*"))


def _options(path):
    """The options a sample is meant to be read with: the 6rd prefix of the
    mixed sample, the configured NAT64 prefixes of a NAT64 scenario."""
    if path.startswith("samples/mixed."):
        return SIXRD
    if path.startswith("samples/programme/"):
        return ("--org-map", "samples/programme/orgs.csv")      # the scorecard
    truth = ROOT / path.replace(".pcap", ".truth.json")
    if path.startswith("samples/nat64/") and truth.exists():
        prefixes = json.loads(truth.read_text())["options"]["nat64_prefix"]
        return tuple(a for p in prefixes for a in ("--nat64-prefix", p))
    return ()


CASES = {p: _options(p) for p in SAMPLES}
CASES["samples/mixed.pcap --dns-report"] = SIXRD + ("--dns-report",)


def golden_name(case):
    return case.replace("samples/", "").replace("/", "__").replace(" --", "__") + ".txt"


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_report_is_the_golden_one(case):
    path = case.split()[0]
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--no-progress",
                        *CASES[case], path], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    golden = GOLDEN / golden_name(case)
    if os.environ.get("IPV6FLOW_UPDATE_GOLDEN"):
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text()


def test_every_sample_has_a_golden_report():
    assert {golden_name(c) for c in CASES} == {p.name for p in GOLDEN.glob("*.txt")}
    assert len(SAMPLES) >= 21
