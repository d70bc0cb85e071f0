"""One distinct-count implementation (analysis/sketch.py), and the reports
of the earlier NAT64 form (hex items, BLAKE2b registers) still merging.

The fixtures in tests/fixtures/earlier are reports ipv6flow made at commit
98f43c7 of captures tests/fixtures/earlier/make.py writes (see its note).
"""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from ipv6flow.analysis.nat64 import THRESHOLD, Traffic
from ipv6flow.analysis.sketch import HashSketch, hash_rows, hash_words
from ipv6flow.cli import main

EARLIER = Path(__file__).parent / "fixtures" / "earlier"
SCHEMA = json.loads((Path(__file__).parents[1] / "ipv6flow" / "schema"
                     / "report.schema.json").read_text())
sys.path.insert(0, str(EARLIER))
import make  # noqa: E402


def _run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def _json(*args):
    return json.loads(_run(*args, "--format", "json"))


def _suspect(rep):
    (sp,) = rep["nat64"]["suspects"]
    return sp


def test_hash_rows_is_hash_words_of_the_address_words():
    six = [bytes(range(16)), bytes(16), b"\xff" * 16]
    four = [bytes([192, 0, 2, 1]), bytes(4), b"\xff" * 4]
    h6 = hash_rows(np.frombuffer(b"".join(six), np.uint8).reshape(-1, 16))
    h4 = hash_rows(np.frombuffer(b"".join(four), np.uint8).reshape(-1, 4))
    for a, h in zip(six, h6.tolist()):
        v = int.from_bytes(a, "big")
        assert h == int(hash_words(np.array([v >> 64], np.uint64),
                                   np.array([v & (2**64 - 1)], np.uint64))[0])
    for a, h in zip(four, h4.tolist()):
        assert h == int(hash_words(np.array([int.from_bytes(a, "big")]))[0])
    with pytest.raises(ValueError):
        hash_rows(np.zeros((1, 5), np.uint8))


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_earlier_report_merges_with_a_new_one(decoder, tmp_path, monkeypatch):
    # first.json (the earlier form) + a report of second.pcap made now ==
    # one run over both halves: NAT64 sets united, not counted twice
    monkeypatch.chdir(EARLIER)
    earlier = json.loads(Path("first.json").read_text())
    assert isinstance(_suspect(earlier)["distinct"]["ipv6_clients"]["exact"], list)
    second = tmp_path / "second.json"
    _run("analyze", "second.pcap", "--decoder", decoder, "--format", "json", "-o", str(second))
    merged = _json("merge", "first.json", str(second))
    whole = _json("analyze", "first.pcap", "second.pcap", "--decoder", decoder)
    sp = _suspect(merged)
    # truth by construction: every client and destination of the capture
    assert (sp["ipv6_clients"], sp["ipv4_destinations"]) == (make.CLIENTS, make.DESTINATIONS)
    assert sp["packets"] == 60
    # each half has part of them, and both halves some of the same: the
    # earlier form's items and the new hashes are one set (2 + 3 shared)
    halves = [_suspect(earlier), _suspect(json.loads(second.read_text()))]
    assert [(h["ipv6_clients"], h["ipv4_destinations"]) for h in halves] == [(4, 7), (4, 6)]
    assert sp["distinct"]["hash"] == "splitmix64"
    jsonschema.validate(merged, SCHEMA)
    for rep in (merged, whole):
        rep.pop("inputs")
    assert merged == whole
    # and once more through a merge of the merged report (the new form read back)
    (tmp_path / "merged.json").write_text(json.dumps(merged | {"inputs": []}))
    again = _json("merge", str(tmp_path / "merged.json"), str(tmp_path / "merged.json"))
    assert _suspect(again)["ipv6_clients"] == make.CLIENTS
    assert _suspect(again)["packets"] == 120


def test_earlier_text_figures_unchanged(monkeypatch):
    # below the threshold an earlier report's figures read back as they were
    monkeypatch.chdir(EARLIER)
    earlier = json.loads(Path("first.json").read_text())
    again = _json("merge", "first.json")
    for key in ("packets", "bytes", "ipv6_clients", "ipv4_destinations"):
        assert _suspect(again)[key] == _suspect(earlier)[key]
    assert again["clients"] == earlier["clients"] and again["flows"] == earlier["flows"]


def test_earlier_sketch_past_the_threshold_is_refused_in_one_line(tmp_path):
    many = EARLIER / "many-clients.json"
    assert "hll" in _suspect(json.loads(many.read_text()))["distinct"]["ipv6_clients"]
    make.main(tmp_path)
    new = tmp_path / "many.json"
    _run("analyze", str(tmp_path / "many-clients.pcap"), "--no-clients",
         "--format", "json", "-o", str(new))
    sp = _suspect(json.loads(new.read_text()))
    assert sp["distinct"]["ipv6_clients"].keys() == {"hll", "p"}
    jsonschema.validate(json.loads(new.read_text()), SCHEMA)
    assert abs(sp["ipv6_clients"] - make.MANY) < 0.05 * make.MANY
    for args in ([str(many), str(new)], [str(new), str(many)], [str(many)]):
        r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "merge", *args],
                           capture_output=True, text=True)
        assert r.returncode == 1, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(many) in lines[0] and "64:ff9b::/96" in lines[0]
        assert "earlier ipv6flow's BLAKE2b" in lines[0]
    # the new form past the threshold merges: same registers, same estimate
    merged = _json("merge", str(new), str(new))
    assert _suspect(merged)["ipv6_clients"] == sp["ipv6_clients"]
    assert _suspect(merged)["distinct"] == sp["distinct"]


def test_nat64_sets_are_hash_sketches_with_the_same_rules():
    # one implementation: the NAT64 sets are HashSketches of address hashes,
    # exact up to THRESHOLD, HyperLogLog of the same precision past it
    t = Traffic()
    assert isinstance(t.clients, HashSketch) and isinstance(t.v4, HashSketch)
    rows = np.arange(THRESHOLD + 1, dtype=">u8").view(np.uint8).reshape(-1, 8)
    six = np.concatenate([np.zeros_like(rows), rows], axis=1)
    t.add(six[:THRESHOLD], np.zeros((0, 4), np.uint8))
    assert t.clients.exact and len(t.clients) == THRESHOLD
    t.add(six[THRESHOLD:], np.zeros((0, 4), np.uint8))
    assert not t.clients.exact
    ref = HashSketch(THRESHOLD, t.clients.p)
    ref.add(hash_words(np.zeros(THRESHOLD + 1, np.uint64), np.arange(THRESHOLD + 1, dtype=np.uint64)))
    assert np.array_equal(ref.registers, t.clients.registers)


@pytest.mark.parametrize("change,says", [
    (lambda d: d.update(hash="blake2b"), "hash 'blake2b', not splitmix64"),
    (lambda d: d.pop("hash"), "neither hashes nor a list of addresses"),
    (lambda d: d.update(hash=None, ipv6_clients={"exact": ["00" * 15]}), "not 16-byte addresses"),
])
def test_a_distinct_object_of_no_known_form_is_one_line(change, says, tmp_path):
    rep = _json("analyze", str(EARLIER / "first.pcap"))
    change(_suspect(rep)["distinct"])
    if _suspect(rep)["distinct"].get("hash", 0) is None:
        _suspect(rep)["distinct"].pop("hash")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rep))
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "merge", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and says in r.stderr, r.stderr
