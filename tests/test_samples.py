"""Every bundled sample against the truth its generator wrote by construction."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ipv6flow.capture import open_capture
from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix
from ipv6flow.decode.registry import TRANSPORT

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
TRUTH = json.loads((SAMPLES / "mixed.truth.json").read_text())
OPTS = DecodeOptions(sixrd_prefixes=tuple(parse_prefix(p) for p in TRUTH["options"]["6rd_prefix"]))
REPORT_KEYS = ("time", "totals", "carrier", "payload", "ipv6", "share", "tunnels",
               "extension_headers", "transport", "addresses", "decode")


def _subset_equal(truth, mine, where, problems):
    """truth's keys must match exactly; keys only in ours must be zero/empty."""
    if isinstance(truth, dict):
        for k in set(truth) | set(mine):
            if k not in truth:
                if mine[k] not in (0, {}, []):
                    problems.append(f"{where}.{k}: {mine[k]} where the truth has no such key")
            elif k not in mine:
                problems.append(f"{where}.{k}: missing")
            else:
                _subset_equal(truth[k], mine[k], f"{where}.{k}", problems)
    elif truth != mine:
        problems.append(f"{where}: truth {truth}, ipv6flow {mine}")


@pytest.mark.parametrize("name", ["mixed.pcap", "mixed.pcapng", "mixed.pcap.gz"])
def test_report_matches_truth_key_for_key(name):
    args = [sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
            str(SAMPLES / name)]
    for p in TRUTH["options"]["6rd_prefix"]:
        args += ["--6rd-prefix", p]
    r = subprocess.run(args, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    problems = []
    for k in REPORT_KEYS:
        _subset_equal(TRUTH[k], rep[k], k, problems)
    assert not problems, "\n".join(problems)
    assert rep["inputs"][0]["packets"] == len(TRUTH["frames"]) == 2948


def test_every_frame_matches_truth():
    problems = []
    with open_capture(str(SAMPLES / "mixed.pcap")) as cap:
        for i, (rec, tf) in enumerate(zip(cap, TRUTH["frames"]), start=1):
            f = decode_frame(rec.linktype, rec.data, rec.wirelen, OPTS)
            tr = None if f.payload == "non_ip" else TRANSPORT[f.payload].get(f.proto, "other")
            mine = {"carrier": f.carrier, "payload": f.payload, "tunnel": f.tunnel,
                    "ext": sorted(f.ext_types), "anomalies": sorted(f.anomalies),
                    "transport": tr, "decode": [f.problem] if f.problem else []}
            for k, v in mine.items():
                want = tf.get(k, [] if k == "decode" else None)
                if isinstance(want, list):
                    want = sorted(want)
                if v != want:
                    problems.append(f"frame {i} ({tf.get('desc', '')}): {k} truth {want}, got {v}")
    assert not problems, "\n".join(problems[:50])


def test_sample_truth_has_every_tunnel_kind():
    # checks the sample's own truth file (fixture data), not the analyzer:
    # the sample must exercise every tunnel kind and some non-IP frames
    assert all(TRUTH["tunnels"][k]["packets"] > 0 for k in TRUTH["tunnels"])
    assert TRUTH["carrier"]["non_ip"]["packets"] > 0


def test_generator_is_deterministic(tmp_path):
    """Regenerating the samples gives byte-identical files."""
    r = subprocess.run([sys.executable, str(SAMPLES / "generate.py"), "--out", str(tmp_path)],
                       capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    for name in ("mixed.pcap", "mixed.pcapng", "mixed.pcap.gz", "mixed.truth.json"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
