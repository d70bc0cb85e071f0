"""The command line as a user meets it: reports, bad input, exit codes."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from ipv6flow.cli import main

from conftest import CAPTURES, SAMPLES  # noqa: E402  (../shared/captures)
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "ipv6flow" / "schema"
                     / "report.schema.json").read_text())


def run(*args, input=None):
    """Run the real console entry point in a subprocess (true exit codes, stderr)."""
    return subprocess.run([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                          capture_output=True, input=input, timeout=120)


def report_of(*args):
    r = run("analyze", "--format", "json", *args)
    return r, (json.loads(r.stdout) if r.stdout else None)


def check_partitions(rep):
    t = rep["totals"]
    for view in ("carrier", "payload", "tunnels"):
        for unit in ("packets", "bytes"):
            assert sum(v[unit] for v in rep[view].values()) == t[unit], (view, unit)
    for unit in ("packets", "bytes"):
        assert rep["ipv6"]["native"][unit] + rep["ipv6"]["tunnelled"][unit] \
            == rep["payload"]["ipv6"][unit]
        assert sum(b["ipv4"][unit] + b["ipv6"][unit] for b in rep["timeseries"]["bins"]) \
            == rep["payload"]["ipv4"][unit] + rep["payload"]["ipv6"][unit]
        for fam in ("ipv4", "ipv6"):
            assert sum(b["carrier"][fam][unit] for b in rep["timeseries"]["bins"]) \
                == rep["carrier"][fam][unit]


@pytest.mark.parametrize("name", ["zeek/6in4.pcap", "arkime/arkime_synthetic.pcap",
                                  "PcapPlusPlus/pcapng-example.pcapng.zst",
                                  "gopacket/test202.pcapng"])
def test_json_report_follows_schema_and_adds_up(name):
    r, rep = report_of(CAPTURES / name)
    assert r.returncode == 0, r.stderr
    jsonschema.validate(rep, SCHEMA)
    check_partitions(rep)
    assert rep["inputs"][0]["packets"] == rep["totals"]["packets"] > 0


def test_6in4_single_frame_figures():
    r, rep = report_of(CAPTURES / "zeek/6in4.pcap")
    assert rep["totals"] == {"packets": 1, "bytes": 86}
    assert rep["carrier"]["ipv4"]["packets"] == 1 and rep["payload"]["ipv6"]["packets"] == 1
    assert rep["tunnels"]["6in4"] == {"packets": 1, "bytes": 86}
    assert rep["ipv6"]["tunnelled"]["packets"] == 1
    assert rep["share"] == {"ipv6_packets": 1.0, "ipv6_bytes": 1.0,
                            "carrier_ipv6_packets": 0.0, "carrier_ipv6_bytes": 0.0}


def test_several_paths_one_report_and_errors_do_not_stop_the_others(tmp_path):
    notcap = tmp_path / "notes.json"
    notcap.write_text('{"a": 1}\n')
    r, rep = report_of(CAPTURES / "zeek/6in4.pcap", notcap, tmp_path / "missing.pcap",
                       CAPTURES / "zeek/4in6.pcap")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"Error: {notcap}: not a pcap or pcapng file (first bytes 7b 22 61" in err
    assert f"Error: {tmp_path / 'missing.pcap'}: no such file" in err
    assert "Traceback" not in err
    assert [i["packets"] for i in rep["inputs"]] == [1, 0, 0, 1]
    assert rep["totals"]["packets"] == 2
    assert rep["tunnels"]["4in6"]["packets"] == 1 and rep["tunnels"]["6in4"]["packets"] == 1


def test_cut_off_file_is_a_warning_and_keeps_frames():
    r, rep = report_of(CAPTURES / "dpkt/truncated_dns_2.pcap")
    assert r.returncode == 0
    assert "Warning:" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    assert rep["inputs"][0]["truncated"] is True and rep["totals"]["packets"] == 1


@pytest.mark.parametrize("name", ["libpcap/pcap-invalid-version-1.pcap",
                                  "libpcap/shb-option-too-long.pcapng"])
def test_unreadable_captures_give_one_line_error(name):
    r = run("analyze", CAPTURES / name)
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {CAPTURES / name}: ")


def test_lying_caplen_keeps_earlier_frames(tmp_path):
    src = (CAPTURES / "zeek/ping6-in-ipv4.pcap").read_bytes()
    # corrupt the 4th record's caplen to 0x7fffffff
    off = 24
    for _ in range(3):
        caplen = int.from_bytes(src[off + 8:off + 12], "little")
        off += 16 + caplen
    bad = src[:off + 8] + (0x7FFFFFFF).to_bytes(4, "little") + src[off + 12:]
    p = tmp_path / "lying.pcap"
    p.write_bytes(bad)
    r, rep = report_of(p)
    assert r.returncode == 1
    assert "record 4" in r.stderr.decode()
    assert rep["totals"]["packets"] == 3 and rep["inputs"][0]["errors"]


def test_stdin_and_gzip(tmp_path):
    raw = (CAPTURES / "zeek/Teredo.pcap").read_bytes()
    r = run("analyze", "--format", "json", "-", input=gzip.compress(raw))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["inputs"][0]["compression"] == "gzip"
    r2, rep2 = report_of(CAPTURES / "zeek/Teredo.pcap")
    for k in ("totals", "carrier", "payload", "tunnels", "extension_headers", "addresses"):
        assert rep[k] == rep2[k]


def test_output_file_is_written_atomically(tmp_path):
    out = tmp_path / "r.json"
    r = run("analyze", "--format", "json", "-o", out, CAPTURES / "zeek/6in6.pcap")
    assert r.returncode == 0 and r.stdout == b""
    assert json.loads(out.read_text())["tunnels"]["6in6"]["packets"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_text_report_headline_and_escaping(tmp_path):
    weird = tmp_path / "a\x1b[31mred.pcap"
    shutil.copy(CAPTURES / "zeek/6in4.pcap", weird)
    r = run("analyze", weird)
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "IPv6 share of IP traffic: 100.0% of packets" in out
    assert "\x1b" not in out and "\\x1b[31mred.pcap" in out


def test_bad_options():
    r = run("analyze", "--6rd-prefix", "nonsense", CAPTURES / "zeek/6in4.pcap")
    assert r.returncode == 2 and b"not an IPv6 prefix" in r.stderr
    r = run("analyze", "--interval", "0", CAPTURES / "zeek/6in4.pcap")
    assert r.returncode == 2


def test_every_command_has_help():
    runner = CliRunner()
    for cmd in main.commands:
        res = runner.invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and "Usage:" in res.output


def test_text_report_survives_a_clock_past_year_9999():
    r = run("analyze", CAPTURES / "PcapPlusPlus/pcapng-example.pcapng")
    assert r.returncode == 0 and b"Traceback" not in r.stderr
    assert b"IPv6 share of IP traffic" in r.stdout


def test_interval_is_checked_alike_by_every_command(tmp_path):
    # one rule and one message, never a traceback (watch used to end in
    # one for --interval 1e-9)
    want = "Error: Invalid value for '--interval': {} is not a number of seconds of at least 1e-06"
    for cmd, bad in ((["watch", str(tmp_path), "--once"], "1e-9"),
                     (["analyze", str(SAMPLES / "mixed.pcap")], "0"),
                     (["live", "-i", "lo", "--count", "1"], "-1"),
                     (["analyze", str(SAMPLES / "mixed.pcap")], "nan")):
        r = run(*cmd, "--interval", bad)
        err = r.stderr.decode().strip().splitlines()
        assert (r.returncode, err[-1]) == (2, want.format(bad)), err
        assert b"Traceback" not in r.stderr


def _modules_after(*argv):
    """The ipv6flow and numpy modules imported by running ``ipv6flow ARGV``
    in a fresh interpreter (nothing imported before the entry point)."""
    script = ("import sys\n"
              "from ipv6flow.cli import main\n"
              "try:\n"
              "    main(sys.argv[1:])\n"
              "except SystemExit:\n"
              "    pass\n"
              "print('MODULES', ' '.join(sorted(m for m in sys.modules\n"
              "      if m.split('.')[0] in ('ipv6flow', 'numpy', 'matplotlib', 'dask'))))\n")
    r = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True,
                       text=True, timeout=120)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("MODULES")]
    assert line, r.stdout + r.stderr
    return set(line[-1].split()[1:])


def test_version_and_help_import_no_numpy():
    # start-up (issue 14): --version and the help pages need Click and the
    # options only; numpy, the decoders, engines and report writers are
    # imported by the command that uses them
    for argv in (["--version"], ["--help"], ["analyze", "--help"], ["live", "--help"]):
        mods = _modules_after(*argv)
        assert "numpy" not in mods, (argv, sorted(mods))
        assert not any(m.startswith(("ipv6flow.engine", "ipv6flow.report", "ipv6flow.fast",
                                     "ipv6flow.summary", "matplotlib", "dask"))
                       for m in mods), (argv, sorted(mods))
    # ... and analyze imports the report writer it prints with, not the
    # others; one file too small to cut starts no worker processes
    mods = _modules_after("analyze", "--workers", "2", SAMPLES / "mixed.pcap")
    assert "numpy" in mods and "ipv6flow.report.text" in mods
    assert not mods & {"ipv6flow.report.html", "ipv6flow.report.prometheus",
                       "ipv6flow.report.plot", "ipv6flow.engine.parallel",
                       "ipv6flow.engine.live", "ipv6flow.engine.watch"}, sorted(mods)


def test_options_are_checked_in_one_place():
    # the library refuses what the command line refuses, with the same words
    from ipv6flow.decode import DecodeOptions
    from ipv6flow.errors import UsageError
    from ipv6flow.options import Options
    for fields, message in (({"interval": 1e-9}, "1e-09 is not a number of seconds of at least"),
                            ({"interval": float("nan")}, "not a number of seconds"),
                            ({"decoder": "slow"}, "unknown decoder 'slow'"),
                            ({"count": 0}, "count must be at least 1"),
                            ({"duration": -1.0}, "duration must be a number of seconds"),
                            ({"poll": 0.0}, "settle and poll times"),
                            ({"decode": DecodeOptions(sflow_port=6343), "dns_suffixes": ()},
                             "--dns-report and --domain-suffix do not work on sampled")):
        with pytest.raises(UsageError, match=message):
            Options(**fields)
    # the command line says it the same way, as a usage error (exit code 2)
    r = run("analyze", "--sflow", "--dns-report", SAMPLES / "mixed.pcap")
    err = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and err[-1] == (
        "Error: --dns-report and --domain-suffix do not work on sampled headers (--sflow): "
        "DNS answers are cut by the exporter"), err
    assert err[0].startswith("Usage: ") and b"Traceback" not in r.stderr
    # frozen: what a worker is handed cannot change under it
    with pytest.raises(AttributeError):
        Options().interval = 1.0


def test_quick_exit_keeps_output_and_leaves_profilers_their_exit(tmp_path):
    """analyze leaves by os._exit once its output is flushed (cli.run): the
    report file and stdout are whole, the exit code is the run's, and under
    `python -m cProfile` the ordinary exit runs, so the profile is written."""
    import pstats
    sample = SAMPLES / "mixed.pcap"
    out = tmp_path / "r.json"
    r = run("analyze", sample, "--format", "json", "-o", out)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["totals"]["packets"] == 2948
    r = run("analyze", sample, "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["totals"]["packets"] == 2948
    r = run("analyze", tmp_path / "missing.pcap")
    assert r.returncode == 1 and b"missing.pcap" in r.stderr
    prof = tmp_path / "p.out"
    r = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "ipv6flow.cli",
                        "analyze", str(sample), "--format", "json", "-o", str(tmp_path / "p.json")],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert pstats.Stats(str(prof)).total_calls > 1000
