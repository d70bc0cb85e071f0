"""ipv6flow collect --sflow: a UDP listener that reports as analyze --sflow.

* fed live by a real agent (pmacctd over the loopback), its report equals
  `analyze --sflow` of the datagrams it kept with --write, under both
  decoders (NAT64 aside: a socket cannot be read twice, so a prefix that
  evidence discovers counts from its discovery on, as in `live`);
* datagrams the kernel drops with the socket buffer full are counted
  (SO_RXQ_OVFL): sent minus received;
* the command ends on --count, --duration and SIGTERM with a complete
  report, written atomically with -o.
"""
from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, need_tool
from ipv6flow.options import Options
from ipv6flow.decode import DecodeOptions
from ipv6flow.engine.collect import UdpListener, collect_sflow, parse_listen
from ipv6flow.errors import UsageError
from ipv6flow.engine.local import analyze_paths
from ipv6flow.cli import sampled_options

TESTS = Path(__file__).resolve().parent


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load("hostile_generate_collect", TESTS / "hostile" / "generate.py")
agent = _load("sflow_agent_collect", TESTS / "sflow_agent.py")
OPTS = sampled_options(DecodeOptions(), 6343)


def start(decoder="fast", **kw):
    """collect_sflow in a thread on a free loopback port; returns
    (port, stop event, result holder, thread)."""
    ready = threading.Event()
    stop = threading.Event()
    out = {}

    def on_ready(port):
        out["port"] = port
        ready.set()

    def run():
        out["result"] = collect_sflow("127.0.0.1:0", Options(OPTS, decoder=decoder, **kw),
                                      stop=stop, handle_signals=False, on_ready=on_ready)
    t = threading.Thread(target=run)
    t.start()
    assert ready.wait(10)
    return out["port"], stop, out, t


def send(port, datagrams, pause=0.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))
            if pause:
                time.sleep(pause)


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_collect_from_pmacctd_equals_analyze_of_its_write_file(tmp_path, decoder):
    need_tool("pmacctd", "Debian package pmacct")
    kept = tmp_path / "kept.pcap"
    port, stop, out, t = start(decoder, write=str(kept), interval=60.0)
    conf = tmp_path / "pm.conf"
    conf.write_text(f"daemonize: false\npcap_savefile: {SAMPLES / 'mixed.pcap'}\n"
                    "pcap_savefile_wait: false\nplugins: sfprobe\n"
                    f"sfprobe_receiver: 127.0.0.1:{port}\nsfprobe_agentip: 127.0.0.1\n"
                    f"pidfile: {tmp_path}/pm.pid\n")
    subprocess.run(["pmacctd", "-f", str(conf)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    time.sleep(1.0)
    stop.set()
    t.join(30)
    res = out["result"]
    live, stats = res.report(), res.capture
    assert res.stopped_by == "stop" and stats["dropped"] == 0
    assert stats["datagrams"] > 300 and stats["samples"] > 2700
    again = analyze_paths([str(kept)], Options(sampled_options(DecodeOptions(), port),
                                               decoder=decoder)).report()
    for key in live:
        if key not in ("inputs", "nat64"):
            assert live[key] == again[key], key
    assert live["sampling"]["samples"] == stats["samples"]
    assert live["inputs"][0]["capture"]["socket"]["dropped"] == 0
    assert live["inputs"][0]["capture"]["stopped_by"] == "stop"


def test_kernel_drops_are_counted(tmp_path):
    """A small buffer that nobody reads: what did not fit is dropped, and
    SO_RXQ_OVFL says how many (sent - received)."""
    lst = UdpListener("127.0.0.1", 0, 4096)
    try:
        if not lst.counts_drops:
            pytest.skip("the kernel has no SO_RXQ_OVFL")
        sent = 300
        send(lst.port, [b"\x00" * 1000] * sent)
        time.sleep(0.2)
        got = 0
        while True:
            n = len(lst.receive(1000))
            if not n:
                break
            got += n
        assert 0 < got < sent
        assert lst.drops() == sent - got                  # /proc/net/udp
        send(lst.port, [b"\x00"])                          # its SO_RXQ_OVFL count
        assert len(lst.receive(10)) == 1 and lst.dropped == sent - got
    finally:
        lst.close()


def test_listen_addresses():
    assert parse_listen(":6343") == ("", 6343)
    assert parse_listen("6343") == ("", 6343)
    assert parse_listen("[::1]:6343") == ("::1", 6343)
    assert parse_listen("127.0.0.1:9") == ("127.0.0.1", 9)
    for bad in ("x:1", "1.2.3.4:-1", "1.2.3.4:70000", "[::1]"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def run_cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT),
                            text=True, **kw)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc):
    line = proc.stderr.readline()
    assert "listening for sFlow" in line, line


def datagrams(n, rate=8):
    return [gen.sflow_datagram([gen.sflow_flow_sample([gen.sflow_header_record(gen.SAMPLED)],
                                                      seq=i, rate=rate)], seq=i)
            for i in range(1, n + 1)]


def test_cli_count_and_atomic_output(tmp_path):
    port = free_port()
    out = tmp_path / "r.json"
    proc = run_cli("collect", "--sflow", f"127.0.0.1:{port}", "--count", "5", "--format",
                   "json", "-o", out)
    wait_listening(proc)
    send(port, datagrams(5), pause=0.01)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    r = json.loads(out.read_text())
    assert r["totals"]["packets"] == 40 and r["sampling"]["samples"] == 5
    assert r["inputs"][0]["capture"]["stopped_by"] == "count"
    assert "5 datagrams, 5 samples" in err
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]       # no temp file left


@pytest.mark.parametrize("fmt", ["text", "csv", "prometheus"])
def test_cli_sigterm_gives_a_complete_report(tmp_path, fmt):
    port = free_port()
    kept = tmp_path / "k.pcap"
    proc = run_cli("collect", "--sflow", f"127.0.0.1:{port}", "--format", fmt, "--write", kept,
                   "--status-every", "600")
    wait_listening(proc)
    send(port, datagrams(3, rate=100), pause=0.01)
    time.sleep(0.6)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    if fmt == "text":
        assert stdout.splitlines()[1].startswith("estimated from 3 samples (1 in 100)")
    elif fmt == "prometheus":
        assert "ipv6flow_" in stdout
    again = analyze_paths([str(kept)], Options(sampled_options(DecodeOptions(), port))).report()
    assert again["totals"]["packets"] == 300


def test_cli_duration_and_dual_stack(tmp_path):
    port = free_port()
    proc = run_cli("collect", "--sflow", f":{port}", "--duration", "1.5", "--format", "json")
    wait_listening(proc)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendto(datagrams(1)[0], ("::1", port))
    send(port, datagrams(2)[1:])
    stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    r = json.loads(stdout)
    assert r["sampling"]["samples"] == 2 and r["inputs"][0]["capture"]["stopped_by"] == "duration"


def test_cli_bad_listen_address():
    proc = run_cli("collect", "--sflow", "nowhere:6343")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err and "[ADDRESS]:PORT" in err
