"""The ``ipv6flow`` command line: parse options, call the library, print.

Library errors become one-line messages here and nowhere else (STYLE habit
5): ``Error: PATH: what is wrong`` on stderr, exit code 1, no traceback.
Reports go to stdout or, with ``-o``, to a file written atomically (a temp
file in the same folder, then rename), so a scheduled job never reads a
half-written report.

Every command gathers its options into one ``options.Options``, checked
once when it is made (``_options``: a value no command may run with is a
usage error, exit code 2), and hands it to the engine, which returns a
``RunResult``: the Summary and, beside it, how the run went.

Start-up: this module imports Click and options.py only; numpy, the
decoders, the engines and the report writers are imported by the command
that uses them, so ``--version`` and the help pages start in Click's time
(tests/test_cli.py checks that ``--version`` imports no numpy).
"""

import math
import os
import sys
import time

import click

from . import __version__
from .errors import Ipv6flowError, UsageError
from .options import (CLIENT_KEYS, DECODERS, ENGINES, MIN_INTERVAL, MIN_PART_BYTES, OFF,
                      POLL_SECONDS, SETTLE_SECONDS, STATUS_EVERY, Options, default_workers)

FORMATS = ("text", "json", "csv", "prometheus", "html", "translation-csv")
FORMAT_HELP = ("Report format. json: the full report (REPORT.md section 7); csv: one row per "
               "time bin (start, start_utc, interval_s, IPv4 and IPv6 packets and bytes, "
               "IPv6 share; payload view); prometheus: OpenMetrics text for node_exporter's "
               "textfile collector (-o DIR/ipv6flow.prom); html: one self-contained page to "
               "share (headline figures, charts, and the scorecard with --org-map); "
               "translation-csv: one row per time bin and NAT64/DS-Lite/lw4o6/MAP gateway "
               "(start, mechanism, gateway, packets, bytes, flows, clients, IPv4 "
               "destinations, peak).")


def safe(text) -> str:
    """``report.text.safe``: a string from a capture or a user, made
    printable (imported when an error is shown)."""
    from .report.text import safe as printable
    return printable(text)


def render(report: dict, fmt: str, by: str = "time") -> str:
    """The report in one of FORMATS (``by``: the CSV's rows). Each writer
    is imported when its format is asked for."""
    if fmt == "json":
        from .report import jsonout
        return jsonout.dumps(report)
    if fmt == "csv":
        if by == "organisation":
            from .report import scorecard as scorecard_report
            return scorecard_report.to_csv(report)
        from .report import csvout
        return csvout.render(report)
    if fmt == "translation-csv":
        from .report import csvout
        return csvout.render_translation(report)
    if fmt == "prometheus":
        from .report import prometheus
        return prometheus.render(report)
    if fmt == "html":
        from .report import html
        return html.render(report)
    from .report import text
    content = text.render(report)
    if "services" in report:
        from .report import services as services_report
        content += "\n" + services_report.to_text(report["services"])
    if "organisations" in report:
        from .report import scorecard as scorecard_report
        content += "\n" + scorecard_report.to_text(report)
    return content


def by_option(command):
    return click.option(
        "--by", type=click.Choice(("time", "organisation")), default="time", show_default=True,
        help="CSV rows: one per time bin, or one per organisation (needs the scorecard "
             "of --org-map).")(command)


def _check_by(by, fmt, org_map, have=None):
    if by == "organisation" and org_map is None and not have:
        raise click.BadParameter("needs --org-map (the organisations)", param_hint="--by")


def write_output(content: str, output: str | None) -> None:
    if output is None or output == "-":
        click.echo(content, nl=False)
        return
    from .atomic import atomic_file
    try:
        with atomic_file(output) as fh:
            fh.write(content)
    except OSError as e:
        raise click.ClickException(f"{safe(output)}: cannot write ({e.strerror or e})")

def _prefixes(values, option):
    from .decode import parse_prefix
    out = []
    for v in values:
        try:
            out.append(parse_prefix(v))
        except ValueError:
            raise click.BadParameter(f"{v!r} is not an IPv6 prefix such as 2001:db8::/32",
                                     param_hint=option)
    return tuple(out)


def _nat64_prefixes(values):
    from .analysis.rfc6052 import parse_nat64_prefix
    out = []
    for v in values:
        try:
            out.append(parse_nat64_prefix(v))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--nat64-prefix")
    return tuple(out)


def load_org_map(path):
    """The --org-map file, or a one-line error naming it and the line."""
    if path is None:
        return None
    from .analysis import orgmap
    try:
        return orgmap.load(path)
    except OSError as e:
        raise click.ClickException(f"{safe(path)}: cannot read ({e.strerror or e})")
    except ValueError as e:
        raise click.ClickException(f"{safe(path)}: {safe(str(e))}")


def org_map_option(command):
    return click.option(
        "--org-map", "org_map", type=click.Path(dir_okay=False), default=None,
        metavar="FILE.csv",
        help="Organisations by prefix: CSV rows prefix,organisation[,group][,domain] "
             "(longest prefix wins). Adds the scorecard: organisations, adoption by the "
             "public definitions, and what blocks IPv6.")(command)


def client_options(command):
    """--client-key, --client-prefix, --no-clients and --org-map, shared by
    analyze, live and watch."""
    command = org_map_option(command)
    command = click.option(
        "--no-clients", is_flag=True,
        help="Leave out clients, flows and interface identifiers (the fast decoder "
             "spends about a third of its time on them).")(command)
    command = click.option(
        "--client-prefix", "client_prefixes", multiple=True, metavar="PREFIX",
        help="A network of clients (IPv4 or IPv6 CIDR, e.g. 100.64.0.0/10): the side "
             "inside it is the client, frames with no side inside are not counted as a "
             "client's. Repeatable. Without it the side with the ephemeral port is.")(command)
    return click.option(
        "--client-key", type=click.Choice(CLIENT_KEYS), default="auto", show_default=True,
        help="What identifies a client: its Ethernet address, its IPv4 address or its "
             "IPv6 /64 (privacy addresses change within it). auto: mac on Ethernet "
             "links, else ipv6-64 for IPv6 and ipv4 for IPv4.")(command)


def translation_options(command):
    """--aftr and --map-rule: what is known of IPv4-as-a-service gateways."""
    command = click.option(
        "--map-rule", "map_rules", multiple=True, metavar="IPV6PREFIX,IPV4PREFIX,EA,OFFSET",
        help="A MAP rule (RFC 7597): the rule's IPv6 prefix, IPv4 prefix, EA-bit length "
             "and PSID offset, e.g. 2001:db8::/40,192.0.2.0/24,16,6. MAP-E/MAP-T CEs "
             "inside it get their port set checked by it. Repeatable.")(command)
    return click.option(
        "--aftr", multiple=True, metavar="ADDR",
        help="An AFTR's (or lwAFTR's) IPv6 address: 4in6 to or from it is DS-Lite "
             "(private inner IPv4) or lightweight 4over6 (public). Repeatable.")(command)


def _translation(aftr, map_rules):
    from .analysis.translation import parse_aftr, parse_map_rule
    out_a, out_r = [], []
    for v in aftr:
        try:
            out_a.append(parse_aftr(v))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--aftr")
    for v in map_rules:
        try:
            out_r.append(parse_map_rule(v))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--map-rule")
    return tuple(sorted(set(out_a))), tuple(sorted(set(out_r)))


def decode_options(sixrd, client_key="auto", client_prefixes=(), no_clients=False,
                   org_map=None, aftr=(), map_rules=()):
    """The decode.DecodeOptions of the command line's values."""
    import ipaddress
    from .decode import DecodeOptions
    aftr, map_rules = _translation(aftr, map_rules)
    out = []
    for v in client_prefixes:
        try:
            out.append(str(ipaddress.ip_network(v, strict=False)))    # canonical form
        except ValueError:
            raise click.BadParameter(f"{v!r} is not an IPv4 or IPv6 prefix such as "
                                     "100.64.0.0/10", param_hint="--client-prefix")
    if no_clients:
        client_key, out = OFF, []
    return DecodeOptions(sixrd_prefixes=_prefixes(sixrd, "--6rd-prefix"), client_key=client_key,
                         client_prefixes=tuple(dict.fromkeys(out)),
                         org_map=load_org_map(org_map), aftr=aftr, map_rules=map_rules)


def sampled_options(opts, port):
    """Options for sFlow input: clients and flows are left out (samples
    are not a population; docs/DECISIONS.md, "Sampled traffic")."""
    import dataclasses
    return dataclasses.replace(opts, sflow_port=port, client_key=OFF, client_prefixes=())


def _options(**fields) -> Options:
    """The run's Options, or the usage error (exit code 2) that says which
    value cannot be used: the one place where options are checked."""
    try:
        return Options(**fields)
    except UsageError as e:
        raise click.UsageError(str(e)) from None


# Without --workers, one input file under SERIAL_BYTES / workers is read by
# one process: the parts' fixed costs (forking, each part's end and
# pickle, the merges, the NAT64 second pass per part) eat the second core
# below it. Measured on the 2-core VM (2026-12-08 00:10, one part per
# worker below BALANCED_PARTS, engine/parallel.py; one worker against two,
# best of 3): 132 MB 0.18 s against 0.18 s, the real corpus mix (262 MB)
# 0.39 against 0.33 s, the generated mix (1.32 GB) 0.73 against 0.50 s.
# Divided by the workers on the presumption (not measured here) that more
# cores repay the fixed costs on smaller files. A file that cannot be cut
# (compressed, pcapng) is read by one process too unless it is streamed
# (3 workers or more): with fewer, a worker would read it whole anyway.
SERIAL_BYTES = 256 << 20


COLLECT_EVERY = (100_000, 20, 20)     # gc.set_threshold: see _fewer_collections


def _fewer_collections():
    """A file run's objects are few and long-lived (tables, caches, sketches)
    and its per-batch ones are freed by reference counting: the cyclic
    collector's 60-80 collections a run found a few hundred cycles and cost
    11-17 ms on the benchmark captures. The objects of the imports are
    frozen out of its view, and it runs every 100,000 net container
    allocations rather than 700: 3-4 ms. Cycles are still collected."""
    import gc
    gc.freeze()
    gc.set_threshold(*COLLECT_EVERY)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipv6flow")
def main():
    """How much of a capture is IPv6, how it travels, where it is translated."""


class Interval(click.ParamType):
    """A time-bin width in seconds: one rule and one message for every
    command (the Summary refuses bins narrower than MIN_INTERVAL)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not (math.isfinite(v) and v >= MIN_INTERVAL):
            self.fail(f"{value} is not a number of seconds of at least {MIN_INTERVAL:g}",
                      param, ctx)
        return v


INTERVAL = Interval()


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help=FORMAT_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE (atomically) instead of stdout.")
@click.option("--interval", type=INTERVAL, default=60.0, show_default=True,
              help="Time-series bin width in seconds (JSON time series, CSV rows, plot).")
@click.option("--6rd-prefix", "sixrd", multiple=True, metavar="PREFIX",
              help="A 6rd prefix (e.g. 2a01:e30::/28): protocol-41 traffic to or from it "
                   "counts as 6rd. Repeatable.")
@click.option("--nat64-prefix", "nat64", multiple=True, metavar="PREFIX",
              help="A NAT64 prefix in use (RFC 6052 length /32, /40, /48, /56, /64 or /96); "
                   "its traffic is counted as NAT64 even without evidence. Repeatable.")
@click.option("--dns-report", is_flag=True,
              help="Add the DNS service-readiness report: per asked name, its answers, a "
                   "verdict (ipv6-ready, dns64-only, ipv4-only, no-answer) and its traffic.")
@click.option("--domain-suffix", "suffixes", multiple=True, metavar="SUFFIX",
              help="Limit the DNS report to names under SUFFIX (e.g. gov.vn). Repeatable; "
                   "implies --dns-report.")
@click.option("--decoder", type=click.Choice(DECODERS), default="fast",
              show_default=True,
              help="fast: numpy over batches of frames; reference: one frame at a time. "
                   "Both give the same report.")
@click.option("--sflow", is_flag=True,
              help="The captures hold sFlow v5 datagrams (UDP port 6343): report on the "
                   "traffic they sample, each count scaled by the sampling rate, with 95% "
                   "intervals (the report's sampling section). Clients and flows are left out.")
@click.option("--sflow-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="UDP port the sFlow datagrams were sent to (default 6343); implies --sflow.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the machine's cores; one for a single file "
                   "under 256 MiB / cores, or that cannot be cut). Files, and parts of "
                   "large pcap files, are spread over them; the report is the same.")
@click.option("--engine", type=click.Choice(ENGINES), default="local",
              show_default=True,
              help="local: processes on this machine; dask: a Dask cluster "
                   "(pip install 'ipv6flow[dask]').")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Dask scheduler address (tcp://host:8786); without it --engine dask "
                   "starts a LocalCluster.")
@click.option("--no-progress", is_flag=True,
              help="No progress line on stderr (it is shown only on a terminal anyway).")
@click.option("--stats", is_flag=True,
              help="Print decoder statistics (frames, fallback to the reference decoder, "
                   "time) on stderr.")
@by_option
@client_options
@translation_options
def analyze(paths, fmt, output, interval, sixrd, nat64, dns_report, suffixes, decoder, sflow,
            sflow_port, workers, engine, scheduler, no_progress, stats, client_key,
            client_prefixes, no_clients, org_map, by, aftr, map_rules):
    """Analyse pcap/pcapng captures (gzip, bzip2, xz, zstd; '-' for stdin).

    Several PATHS give one combined report with one `inputs` entry each.
    Exit code 0 when every path was read, 1 when any could not be.
    """
    opts = decode_options(sixrd, client_key, client_prefixes, no_clients, org_map, aftr,
                          map_rules)
    _check_by(by, fmt, opts.org_map)
    if sflow or sflow_port:
        from .decode.sflow import SFLOW_PORT
        opts = sampled_options(opts, sflow_port or SFLOW_PORT)
    options = _options(decode=opts, interval=interval, decoder=decoder,
                       nat64_prefixes=_nat64_prefixes(nat64),
                       dns_suffixes=_suffixes(suffixes) if (dns_report or suffixes) else None,
                       workers=workers, engine=engine, scheduler=scheduler)
    from .engine.progress import Progress
    _fewer_collections()
    _QUICK_EXIT.append(True)
    started = time.perf_counter()
    progress = Progress(sum(_size_of(p) for p in paths),
                        sys.stderr.isatty() and not no_progress)
    try:
        result = run_engine(paths, options, progress)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    finally:
        progress.close()
    if stats:
        took = time.perf_counter() - started
        n, fb = result.frames, result.fallback
        if decoder == "fast":
            from .fast.core import path_name
            decoder = f"fast ({path_name()})"
        click.echo(f"decoder {decoder}: {n:,} frames in {took:.2f} s "
                   f"({n / took if took else 0:,.0f} frames/s); {fb:,} "
                   f"({100.0 * fb / n if n else 0:.2f}%) decoded by the reference decoder",
                   err=True)
        from .capture.source import Source
        click.echo(f"reading: {Source.reading()}", err=True)
    try:
        report = result.report()
        failed = _print_problems(report)
        if report.get("partial"):
            click.echo("Warning: interrupted: the report covers only what was read", err=True)
        if report.get("partial") or any(inp["format"] for inp in report["inputs"]):
            write_output(render(report, fmt, by), output)
    except KeyboardInterrupt:        # Ctrl-C after the reading was done
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    sys.exit(130 if report.get("partial") else 1 if failed else 0)


def _size_of(path):
    try:
        return 0 if path == "-" else os.path.getsize(path)
    except OSError:
        return 0


def _read_whole(path, workers) -> bool:
    """A file that the workers would not share: one that cannot be cut
    (compressed, pcapng), too few workers to stream it."""
    from .engine.parallel import STREAM_MIN_WORKERS, uncuttable
    return workers < STREAM_MIN_WORKERS and uncuttable(path)


def run_engine(paths, options: Options, progress=None):
    """Pick the engine (one process, local worker processes, or Dask) and
    run it; returns its RunResult."""
    if options.engine == "dask":
        from .engine.daskengine import analyze_dask
        try:
            return analyze_dask(paths, options)
        except Ipv6flowError as e:
            raise click.ClickException(str(e))
    workers = options.workers or default_workers()
    size = _size_of(paths[0]) if len(paths) == 1 and paths[0] != "-" else None
    if workers == 1 or (size is not None and (
            size < MIN_PART_BYTES or (options.workers is None and (
                size < SERIAL_BYTES // workers or _read_whole(paths[0], workers))))):
        # one part only (a file is cut from MIN_PART_BYTES on), or, without
        # --workers, one file too small to repay the parts: no worker
        # processes to start, the same report (tests/test_engines.py)
        from .engine.local import analyze_paths
        return analyze_paths(paths, options, progress)
    from .engine.parallel import analyze_parallel
    return analyze_parallel(paths, options, progress)


def _suffixes(values):
    return tuple(v.strip(".").lower() for v in values)


def _print_problems(report) -> bool:
    """Warnings and errors of every input on stderr; True when any failed."""
    failed = False
    for inp in report["inputs"]:
        shown = "<stdin>" if inp["path"] == "-" else safe(inp["path"])
        for w in inp["warnings"]:
            click.echo(f"Warning: {shown}: {safe(w)}", err=True)
        for e in inp["errors"]:
            click.echo(f"Error: {shown}: {safe(e)}", err=True)
            failed = True
    return failed


@main.command()
@click.argument("reports", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True,
              help=FORMAT_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the merged report to FILE (atomically) instead of stdout.")
@by_option
@org_map_option
def merge(reports, fmt, output, by, org_map):
    """Merge JSON reports of earlier runs (e.g. one per rotated capture).

    Counts add, NAT64 suspects unite with their counts added and their
    distinct counts merged (exact, or HyperLogLog past a threshold), time
    bins add. The reports must share one time-series interval.
    """
    import json
    from .analysis.scorecard import Scorecard
    from .summary import Summary
    _QUICK_EXIT.append(True)
    omap = load_org_map(org_map)
    total = None
    partial = False
    if omap is not None:
        # every organisation of the map is listed, with its group and domains
        total = Summary()
        total.scorecard = Scorecard(omap)
    for path in reports:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            part = Summary.from_report(data)
            partial = partial or bool(data.get("partial"))
        except OSError as e:
            raise click.ClickException(f"{safe(path)}: {e.strerror or e}")
        except (ValueError, KeyError, TypeError, AttributeError, IndexError,
                RecursionError) as e:
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise click.ClickException(f"{safe(path)}: not an ipv6flow report ({safe(detail)})")
        try:
            total = part if total is None else total.merge(part)
        except ValueError as e:
            raise click.ClickException(f"{safe(path)}: {e}")
    report = total.to_report(partial=partial)
    _check_by(by, fmt, omap, "organisations" in report)
    write_output(render(report, fmt, by), output)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(("text", "json", "csv")), default="text",
              show_default=True, help="Report format (csv: one row per name, for spreadsheets).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE (atomically) instead of stdout.")
@click.option("--domain-suffix", "suffixes", multiple=True, metavar="SUFFIX",
              help="Only names under SUFFIX (e.g. gov.vn); prints the share of IPv6-ready "
                   "names as a programme's scorecard would. Repeatable.")
@click.option("--nat64-prefix", "nat64", multiple=True, metavar="PREFIX",
              help="A NAT64 prefix in use (see analyze). Repeatable.")
@click.option("--decoder", type=click.Choice(DECODERS), default="fast",
              show_default=True, help="As for analyze.")
def dns(paths, fmt, output, suffixes, nat64, decoder):
    """Which services DNS shows as IPv6-ready, DNS64-only or IPv4-only.

    For every name asked in the captures: its A answers, native AAAA
    answers, AAAA answers a DNS64 synthesized, a verdict, and the traffic
    seen to its addresses over IPv4, native IPv6 and NAT64.
    """
    options = _options(decoder=decoder, nat64_prefixes=_nat64_prefixes(nat64),
                       dns_suffixes=_suffixes(suffixes))
    report = run_engine(paths, options).report()
    failed = _print_problems(report)
    if any(inp["format"] for inp in report["inputs"]):
        from .report import jsonout
        from .report import services as services_report
        svc = report["services"]
        if fmt == "json":
            content = jsonout.dumps({"schema": "ipv6flow/services/1", "inputs": report["inputs"],
                                     "services": svc})
        elif fmt == "csv":
            content = services_report.to_csv(svc)
        else:
            content = services_report.to_text(svc)
        write_output(content, output)
    sys.exit(1 if failed else 0)


@main.command("plot")
@click.argument("report_path", metavar="REPORT.json")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The PNG to write (atomically), e.g. share.png.")
@click.option("--width", type=click.IntRange(320, 10000), default=1600, show_default=True,
              help="Image width in pixels.")
@click.option("--height", type=click.IntRange(240, 10000), default=900, show_default=True,
              help="Image height in pixels.")
def plot_cmd(report_path, output, width, height):
    """Draw a JSON report as a PNG for a slide.

    The IPv6 share over time (payload view per bin, carrier view for the
    whole capture) and the tunnel and extension-header mix. REPORT.json
    comes from `ipv6flow analyze --format json` ('-' for stdin). Needs the
    plot extra: pip install 'ipv6flow[plot]'.
    """
    from .report import plot    # imports matplotlib only when drawing
    try:
        plot.render(plot.load_report(report_path), output, width, height)
    except Ipv6flowError as e:
        raise click.ClickException(safe(str(e)))
    except OSError as e:
        raise click.ClickException(f"{safe(output)}: cannot write ({e.strerror or e})")


def running_options(count, write, status):
    """The options live and collect share (how long to run, what to write,
    what to decode), with the help texts that differ."""
    options = (
        click.option("--duration", type=click.FloatRange(min=0), default=None, metavar="S",
                     help="Stop after S seconds."),
        click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
                     help=count),
        click.option("--report-every", type=click.FloatRange(min=0, min_open=True),
                     default=None, metavar="S",
                     help="Also write the report so far every S seconds (to -o, atomically)."),
        click.option("--write", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE.pcap", help=write),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
                     show_default=True, help="Report format."),
        click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                     help="Write the report to FILE (atomically) instead of stdout."),
        click.option("--interval", type=INTERVAL, default=60.0, show_default=True,
                     help="Time-series bin width in seconds."),
        click.option("--6rd-prefix", "sixrd", multiple=True, metavar="PREFIX",
                     help="As for analyze."),
        click.option("--nat64-prefix", "nat64", multiple=True, metavar="PREFIX",
                     help="As for analyze."),
        click.option("--decoder", type=click.Choice(DECODERS), default="fast",
                     show_default=True, help="As for analyze."),
        click.option("--status-every", type=click.FloatRange(min=0), default=STATUS_EVERY,
                     show_default=True, metavar="S", help=status),
    )

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


@main.command()
@click.option("-i", "--interface", "iface", required=True, metavar="IFACE",
              help="Interface to capture on ('any': every interface, Linux cooked headers).")
@click.option("--bpf", metavar="EXPR", default=None,
              help="Capture filter in pcap-filter syntax (as tcpdump's), run in the kernel.")
@running_options(count="Stop after N frames (of those --bpf lets through).",
                 write="Save every captured frame to a pcap file; complete after Ctrl-C or "
                       "SIGTERM.",
                 status="Seconds between status lines on stderr (IPv6 share so far, rates, "
                        "kernel drops); 0: none.")
@click.option("--snaplen", type=click.IntRange(64, 262144), default=262144, show_default=True,
              help="Bytes kept of each frame.")
@click.option("--no-promisc", is_flag=True, help="Do not put the interface in promiscuous mode.")
@click.option("--buffer-size", type=click.IntRange(min=1), default=32, show_default=True,
              metavar="MIB", help="Kernel capture buffer in MiB (tcpdump -B); raise it when "
                                  "drops are reported.")
@client_options
@translation_options
def live(iface, bpf, duration, count, report_every, write, fmt, output, interval, sixrd, nat64,
         decoder, status_every, snaplen, no_promisc, buffer_size, client_key, client_prefixes,
         no_clients, org_map, aftr, map_rules):
    """Capture on a network interface and report as analyze does.

    Needs the CAP_NET_RAW capability (root). Ends at --duration, --count,
    Ctrl-C or SIGTERM; the final report is written in every case. Kernel
    drop counts are in the report (inputs[0].capture.kernel) and on stderr.
    """
    opts = decode_options(sixrd, client_key, client_prefixes, no_clients, org_map, aftr,
                          map_rules)
    options = _options(decode=opts, interval=interval, decoder=decoder,
                       nat64_prefixes=_nat64_prefixes(nat64), duration=duration, count=count,
                       report_every=report_every, write=write, status_every=status_every,
                       bpf=bpf, snaplen=snaplen, promisc=not no_promisc,
                       buffer_bytes=buffer_size << 20)
    from .engine.live import capture_live

    def footer(result):
        k = result.capture
        return (f"{result.frames:,} frames captured; kernel: {k['received']} received, "
                f"{k['dropped']} dropped, {k['interface_dropped']} dropped by the interface")
    _run_until_stopped(capture_live, iface, options, fmt, output, footer)


@main.command()
@click.option("--sflow", "listen", required=True, metavar="[ADDR]:PORT",
              help="Receive sFlow v5 datagrams on this UDP address and port (:6343: every "
                   "address, IPv4 and IPv6).")
@running_options(count="Stop after N datagrams.",
                 write="Keep every datagram in a pcap (raw IP frames; complete after Ctrl-C "
                       "or SIGTERM): `analyze --sflow-port PORT FILE.pcap` reads it back.",
                 status="Seconds between status lines on stderr (datagrams, samples, IPv6 "
                        "share so far, kernel drops); 0: none.")
@click.option("--buffer-size", type=click.IntRange(min=1), default=32, show_default=True,
              metavar="MIB", help="Socket receive buffer in MiB (for bursts); raise it when "
                                  "drops are reported.")
def collect(listen, duration, count, report_every, write, fmt, output, interval, sixrd, nat64,
            decoder, status_every, buffer_size):
    """Receive sFlow from agents and report as analyze --sflow does.

    Every count is estimated from the samples (the report's sampling
    section says how). Ends at --duration, --count, Ctrl-C or SIGTERM; the
    final report is written in every case. Datagrams the kernel dropped
    with the socket buffer full are in the report
    (inputs[0].capture.socket.dropped) and on stderr.
    """
    from .decode.sflow import SFLOW_PORT
    opts = sampled_options(decode_options(sixrd), SFLOW_PORT)
    options = _options(decode=opts, interval=interval, decoder=decoder,
                       nat64_prefixes=_nat64_prefixes(nat64), duration=duration, count=count,
                       report_every=report_every, write=write, status_every=status_every,
                       buffer_bytes=buffer_size << 20)
    from .engine.collect import collect_sflow

    def footer(result):
        st = result.capture
        return (f"{st['datagrams']:,} datagrams, {st['samples']:,} samples; socket: "
                f"{st['buffer']:,} bytes of buffer, {st['dropped']:,} datagrams dropped")
    _run_until_stopped(collect_sflow, listen, options, fmt, output, footer)


def _run_until_stopped(run, source, options, fmt, output, footer) -> None:
    """``live`` and ``collect``: ``run(source, options, ...)`` until it
    stops (its status lines and --report-every reports written as they
    come), then the final report, the problems and ``footer(result)`` on
    stderr; exit 1 when a problem was found."""
    try:
        result = run(source, options,
                     on_status=lambda line: click.echo(line, err=True)
                     if options.status_every else None,
                     on_report=lambda rep: write_output(render(rep, fmt), output))
    except Ipv6flowError as e:
        raise click.ClickException(str(e))
    report = result.report()
    failed = _print_problems(report)
    click.echo(footer(result), err=True)
    write_output(render(report, fmt), output)
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--pattern", default="*.pcap*", show_default=True,
              help="Shell-style pattern of the capture file names.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False), default=None,
              help="Which files are done (default: ipv6flow-watch.state.json in the output folder).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the per-file reports (NAME.ipv6flow.json), the merged report "
                   "and the state (default: DIRECTORY).")
@click.option("--merged", "merged_file", type=click.Path(dir_okay=False), default=None,
              help="The running merged report (default: merged.ipv6flow.json in the output folder).")
@click.option("--prometheus", "prom", type=click.Path(dir_okay=False), default=None,
              help="Also write the merged report as OpenMetrics to FILE (atomically), for the "
                   "node-exporter textfile collector.")
@click.option("--interval", type=INTERVAL, default=60.0,
              show_default=True, help="Time-series bin width in seconds (fixed per state file).")
@click.option("--settle", type=click.FloatRange(min=0), default=SETTLE_SECONDS,
              show_default=True, metavar="S",
              help="A file is complete once unchanged S seconds and no longer the newest.")
@click.option("--newest-settle", type=click.FloatRange(min=0), default=None, metavar="S",
              help="Take the newest file too once unchanged S seconds (the capture has ended); "
                   "by default it waits for the next rotation.")
@click.option("--poll", type=click.FloatRange(min=0, min_open=True), default=POLL_SECONDS,
              show_default=True, metavar="S", help="Seconds between looks at DIRECTORY.")
@click.option("--once", is_flag=True, help="Process the files complete now, then exit (cron).")
@click.option("--6rd-prefix", "sixrd", multiple=True, metavar="PREFIX", help="As for analyze.")
@click.option("--nat64-prefix", "nat64", multiple=True, metavar="PREFIX", help="As for analyze.")
@click.option("--decoder", type=click.Choice(DECODERS), default="fast",
              show_default=True, help="As for analyze.")
@client_options
@translation_options
def watch(directory, pattern, state_file, out_dir, merged_file, prom, interval, settle,
          newest_settle, poll, once, sixrd, nat64, decoder, client_key, client_prefixes, no_clients,
          org_map, aftr, map_rules):
    """Analyse rotated captures (tcpdump -G, -C, -W) in DIRECTORY, each once.

    A file is complete when it is not the newest and has not changed for
    --settle seconds. Which files are done is kept in --state, so a
    restart neither skips nor repeats one. Writes a report per file and a
    running merged report; Ctrl-C or SIGTERM stop after the current file.
    """
    opts = decode_options(sixrd, client_key, client_prefixes, no_clients, org_map, aftr,
                          map_rules)
    options = _options(decode=opts, interval=interval, decoder=decoder,
                       nat64_prefixes=_nat64_prefixes(nat64), pattern=pattern,
                       state_file=state_file, out_dir=out_dir, merged_file=merged_file,
                       settle=settle, newest_settle=newest_settle, poll=poll, once=once)
    from .engine.watch import watch as watch_folder
    from .report import prometheus

    def on_report(path, report):
        _print_problems(report)
        click.echo(f"{path}: {report['totals']['packets']:,} frames", err=True)

    def on_merged(report):
        if prom:
            write_output(prometheus.render(report), prom)

    try:
        res = watch_folder(directory, options, on_report, on_merged,
                           on_warning=lambda w: click.echo(f"Warning: {w}", err=True))
    except Ipv6flowError as e:
        raise click.ClickException(str(e))
    click.echo(f"{len(res.processed)} file(s) analysed", err=True)


# Set by the commands (analyze, merge) that end with nothing to tear down.
_QUICK_EXIT = []


def run():
    """The console script (and ``python -m ipv6flow.cli``): ``main()``; after
    analyze and merge, once stdout and stderr are flushed, out by
    ``os._exit`` without the interpreter's teardown, which frees every
    object and module one by one (15 ms of a 0.7 s run). By then output
    files are closed (atomic.py), worker pools shut down (engine/parallel.py,
    engine/daskengine.py), and ipv6flow registers no atexit handler. Any
    other way out, a failed flush, and a run under a profiler or tracer
    (``python -m cProfile``, coverage: they write their results at exit)
    take the ordinary exit."""
    import gc
    gc.set_threshold(*COLLECT_EVERY)      # before the commands' imports: see _fewer_collections
    try:
        main()
    except SystemExit as e:
        code = e.code
        if not _QUICK_EXIT or not (code is None or isinstance(code, int)) \
                or sys.getprofile() is not None or sys.gettrace() is not None:
            raise               # a profiler or tracer writes its results at exit
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            raise e from None
        os._exit(code or 0)


if __name__ == "__main__":
    run()
