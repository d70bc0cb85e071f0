"""The benchmark scripts' own checks: the stage profile that RESULTS.md
quotes (benchmarks/stages.py, read back by run.py) names functions that
exist and accounts for the whole run, with and without the compiled
helpers."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import run  # noqa: E402

SAMPLE = [str(ROOT / "samples" / "mixed.pcap"), "--6rd-prefix", "2a01:e30::/28"]


def _stages(env=None):
    # stages.py patches every function it names: a stale name (a function
    # renamed or moved) fails the script before the run
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stages.py"), *SAMPLE],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=None if env is None else {**os.environ, **env})
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("env", [None, {"IPV6FLOW_PURE_PYTHON": "1"}],
                         ids=["compiled", "no-compiled-code"])
def test_stage_table_covers_the_run_with_live_function_names(env):
    out = _stages(env)
    rows = run.stage_rows(out)
    total = run.stages_total(out)
    assert total is not None and total > 0
    # the sample's 3,000 frames fit one batch: one call of each batch stage
    assert rows["decoder pass (compiled single pass, or numpy kernel)"][1] == "1 call"
    assert rows["clients, flows, interface ids"][1] == "1 call"
    assert rows["DNS and RA: finding the messages"][1] == "3 calls"
    assert rows["start-up: imports, options, opening the file"][0] > 0
    # the rows (each rounded to a millisecond) add up to the run
    assert abs(sum(s for s, _ in rows.values()) - total) <= 0.0005 * len(rows) + 1e-9
    assert "CPU of the run: user" in out


def test_side_by_side_table_pairs_the_stages():
    a = ("| stage | s | share | |\n| --- | ---: | ---: | --- |\n"
         "| start-up: imports | 0.080 | 40.0% |  |\n"
         "| decoder pass (compiled) | 0.020 | 10.0% | 2 calls |\n"
         "| reading | 0.100 | 50.0% |  |\n"
         "| **the run** (this script's start to exit) | **0.200** | 100% | |\n\nCPU of the run: ...")
    b = a.replace("0.020 | 10.0%", "0.120 | 40.0%").replace("**0.200**", "**0.300**")
    assert run.stages_total(a) == 0.2 and run.stages_total(b) == 0.3
    assert run.stage_rows(a)["decoder pass (compiled)"] == (0.02, "2 calls")
    assert run.stages_total("no table") is None
    table = run.stages_side_by_side(a, b)
    assert table[3] == "| decoder pass (compiled); 2 calls | 0.020 | 10.0% | 0.120 | +0.100 |"
    assert table[2] == "| start-up: imports | 0.080 | 40.0% | 0.080 | +0.000 |"
    assert table[-1] == "| **the run** | **0.200** | 100% | **0.300** | **+0.100** |"
    assert len(table) == 2 + 3 + 1


def test_hash_and_warm_drops_the_file_from_the_cache_then_hashes_it(tmp_path):
    import hashlib
    data = bytes(range(256)) * 5000
    f = tmp_path / "x.pcap"
    f.write_bytes(data)
    assert run.hash_and_warm(str(f)) == hashlib.sha256(data).hexdigest()
