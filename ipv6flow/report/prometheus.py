"""The report as OpenMetrics text, for the node-exporter textfile collector.

A scheduled job writes this to ``DIR/ipv6flow.prom`` (through the CLI's
atomic temp-file-and-rename, so the collector never reads half a file) and
node_exporter's ``--collector.textfile.directory=DIR`` serves it.

Format: OpenMetrics 1.0 text: per family ``# TYPE``, ``# UNIT`` where the
family has one (``bytes``, ``seconds``, ``ratio``; the family name then ends
with it), ``# HELP``; counter samples end in ``_total``; label values escape
backslash, double quote and newline; no blank lines; ``# EOF`` last. No
sample carries a timestamp (node_exporter refuses textfiles that do).

node_exporter parses textfiles with the older Prometheus text parser
(0.0.4), which reads this file too: ``# UNIT`` and ``# EOF`` are comments
to it, and a counter's ``_total`` samples arrive as untyped series of the
same name and value. For the same reason the info-style metrics are gauges
with value 1 and an ``_info`` name (node_uname_info style), not the
OpenMetrics ``info`` type, which that parser rejects.

Metrics (``ipv6flow_`` prefix; a label value is as in the JSON report):

- ``build_info{version}``
- ``packets_total``, ``bytes_total``: all frames (REPORT ``totals``)
- ``view_packets_total{view,family}``, ``view_bytes_total{view,family}``:
  view ``carrier`` or ``payload``, family ``ipv4``, ``ipv6``, ``non_ip``
  (each view adds up to the totals: select one view before summing)
- ``ipv6_packets_total{mode}``, ``ipv6_bytes_total{mode}``: payload-IPv6
  frames, mode ``native`` or ``tunnelled`` (REPORT ``ipv6``)
- ``ipv6_share_ratio{view,measure}``: IPv6 share of IP traffic, 0..1, view
  ``payload`` or ``carrier``, measure ``packets`` or ``bytes``; no sample
  when there is no IP traffic
- ``tunnel_packets_total{tunnel}``, ``tunnel_bytes_total{tunnel}``: every
  tunnel kind, ``none`` included (they add up to the totals)
- ``extension_header_frames_total{type}``: frames with that IPv6 extension
  header; ``extension_header_any_frames_total``: frames with any
- ``extension_header_anomalies_total{anomaly}``: frames with the anomaly
- ``decode_problems_total{problem}``: frames with a decode problem
- ``nat64_suspect_packets_total{prefix,kind}``, ``..._bytes_total``,
  ``nat64_suspect_ipv6_clients{prefix,kind}``,
  ``nat64_suspect_ipv4_destinations{prefix,kind}``,
  ``nat64_suspect_info{prefix,kind,evidence}`` (evidence comma-joined)
- ``dns64_synthesized_answers_total``
- only when the report found IPv4 as a service (its ``translation``
  section has gateways): ``translation_packets_total{mechanism,gateway}``,
  ``translation_bytes_total{...}``, ``translation_flows{...}``,
  ``translation_clients{...}``, ``translation_ipv4_destinations{...}``,
  ``translation_peak_bytes{...}`` and ``translation_peak_packets{...}``
  (the peak time bin's figures, the one a gateway is sized by),
  ``translation_gateway_info{mechanism,gateway,confidence,evidence}``,
  ``translation_clat_suspects{gateway}`` (464XLAT client /64s per NAT64
  prefix)
- ``clients{family}``: distinct clients by the families they were seen
  with (``ipv4_only``, ``ipv6_only``, ``dual_stack``, ``link_local_only``);
  ``clients_ipv6_capable_ratio``: IPv6-capable share of clients (no sample
  without clients); ``clients_info{key}``: the client key (value 1)
- ``flows{family}``: distinct bidirectional 5-tuples, ``ipv4`` / ``ipv6``;
  ``flows_by_tunnel{tunnel}`` (gauges: distinct counts do not add up over
  runs; past the exact threshold they are estimates, see the JSON)
- with ``--org-map``: ``org_packets_total{organisation,group,family}``,
  ``org_bytes_total{...}``, ``org_nat64_packets_total{organisation,group}``,
  ``org_clients{...}``, ``org_adoption_ratio{organisation,group,definition,view}``
  and ``org_blocking_ratio{organisation,group}`` (organisation ``""``: the
  frames of no organisation)
- ``input_info{path,format,compression}``, ``input_packets_total{path}``,
  ``input_bytes_total{path}``, ``input_errors{path}``,
  ``input_truncated{path}``: per input; inputs with the same path are
  added together (label sets must be unique)
- ``capture_first_timestamp_seconds``, ``capture_last_timestamp_seconds``:
  the time span of the frames (no sample for an empty capture)
- sampled input only (``analyze --sflow``, ``collect``):
  ``sflow_datagrams_total``, ``sflow_samples_total``,
  ``sflow_lost_datagrams_total``, ``sflow_bad_datagrams_total``,
  ``sflow_samples_by_rate_total{rate}``, and
  ``ipv6_share_interval_ratio{view,measure,bound}``: ``low`` and ``high``
  of the 95% interval of each IPv6 share (every count is then an estimate)
- ``report_partial``: 1 when the run was interrupted (Ctrl-C, SIGTERM)
- ``last_run_timestamp_seconds``: when this text was made; alert on it
  going stale to catch a cron job that stopped running
"""

import time

PREFIX = "ipv6flow_"
_WHAT = {"packets": "Frames", "bytes": "Bytes on the wire of frames"}


def escape_label_value(value) -> str:
    """A label value as OpenMetrics writes it between double quotes.

    The format escapes only backslash, double quote and newline. A path
    that is not valid UTF-8 (lone surrogates from the file system) gets
    backslash escapes first, so the file stays valid UTF-8 (a label value
    must be), and those backslashes are then escaped like any other.
    """
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class _Writer:
    def __init__(self):
        self.lines = []

    def family(self, name, mtype, help_text, samples, unit=None):
        """One metric family; ``samples`` is a list of (labels dict, value).

        Counter sample names get ``_total``; the family name must not."""
        full = PREFIX + name
        self.lines.append(f"# TYPE {full} {mtype}")
        if unit:
            assert full.endswith("_" + unit), full
            self.lines.append(f"# UNIT {full} {unit}")
        self.lines.append(f"# HELP {full} {help_text}")
        sample_name = full + "_total" if mtype == "counter" else full
        for labels, v in samples:
            if v is None:
                continue
            if labels:
                inner = ",".join(f'{k}="{escape_label_value(lv)}"' for k, lv in labels.items())
                self.lines.append(f"{sample_name}{{{inner}}} {_value(v)}")
            else:
                self.lines.append(f"{sample_name} {_value(v)}")

    def text(self):
        return "\n".join(self.lines + ["# EOF"]) + "\n"


def _inputs(report):
    """Per-path input figures; the same path twice is added up."""
    by_path = {}
    for inp in report["inputs"]:
        e = by_path.setdefault(inp["path"], {"packets": 0, "bytes": 0, "errors": 0,
                                             "truncated": False, "info": []})
        e["packets"] += inp.get("packets", 0)
        e["bytes"] += inp.get("bytes", 0)
        e["errors"] += len(inp.get("errors") or ())
        e["truncated"] = e["truncated"] or bool(inp.get("truncated"))
        info = {"path": inp["path"], "format": inp.get("format") or "unknown",
                "compression": inp.get("compression") or "none"}
        if info not in e["info"]:
            e["info"].append(info)
    return by_path


def _sampling(fam, s):
    """Sampled input (sFlow): what was read, what was lost, and the 95%
    interval of the IPv6 shares (every count above is an estimate)."""
    fam("sflow_datagrams", "counter", "sFlow datagrams read.", [({}, s["datagrams"])])
    fam("sflow_samples", "counter", "Sampled packet headers read; every count is estimated "
        "from them.", [({}, s["samples"])])
    fam("sflow_lost_datagrams", "counter", "sFlow datagrams lost, from gaps in the agents' "
        "sequence numbers.", [({}, s["lost_datagrams"])])
    fam("sflow_bad_datagrams", "counter", "sFlow datagrams that could not be read whole.",
        [({}, s["bad_datagrams"])])
    fam("sflow_samples_by_rate", "counter", "Samples by sampling rate (1 in rate).",
        [({"rate": k}, v) for k, v in s["rates"].items()])
    iv = s["intervals"]
    bounds = []
    for view, prefix in (("payload", "ipv6"), ("carrier", "carrier_ipv6")):
        for measure in ("packets", "bytes"):
            e = iv[f"{prefix}_{measure}"]
            if e is not None:
                for bound in ("low", "high"):
                    bounds.append(({"view": view, "measure": measure, "bound": bound},
                                   e[bound]))
    fam("ipv6_share_interval_ratio", "gauge", "Bounds of the 95% interval of the IPv6 share "
        "(sampled input).", bounds, unit="ratio")


def render(report: dict, now: float | None = None) -> str:
    """The report as OpenMetrics text ending in ``# EOF``.

    ``now`` (epoch seconds) is the value of ``last_run_timestamp_seconds``;
    the current time when not given.
    """
    r = report
    w = _Writer()
    fam = w.family
    fam("build_info", "gauge", "The ipv6flow version that wrote these metrics (value 1).",
        [({"version": r["tool"]["version"]}, 1)])

    # -- totals and views ---------------------------------------------------
    t = r["totals"]
    fam("packets", "counter", "Frames in all inputs.", [({}, t["packets"])])
    fam("bytes", "counter", "Bytes on the wire (original frame length) of all frames.",
        [({}, t["bytes"])], unit="bytes")
    views = ("carrier", "payload")
    families = ("ipv4", "ipv6", "non_ip")
    for measure, unit in (("packets", None), ("bytes", "bytes")):
        fam(f"view_{measure}", "counter",
            f"{_WHAT[measure]} by IP family of the outermost IP header (view carrier) "
            f"or the innermost one (view payload); each view adds up to the totals.",
            [({"view": v, "family": f}, r[v][f][measure]) for v in views for f in families],
            unit=unit)
    for measure, unit in (("packets", None), ("bytes", "bytes")):
        fam(f"ipv6_{measure}", "counter",
            f"{_WHAT[measure]} whose payload is IPv6: mode native "
            f"(carrier IPv6) or tunnelled (carrier IPv4).",
            [({"mode": m}, r["ipv6"][m][measure]) for m in ("native", "tunnelled")],
            unit=unit)
    sh = r["share"]
    fam("ipv6_share_ratio", "gauge",
        "IPv6 share of IP traffic (non-IP excluded), 0..1, in the payload or carrier view; "
        "absent when there is no IP traffic.",
        [({"view": "payload", "measure": "packets"}, sh["ipv6_packets"]),
         ({"view": "payload", "measure": "bytes"}, sh["ipv6_bytes"]),
         ({"view": "carrier", "measure": "packets"}, sh["carrier_ipv6_packets"]),
         ({"view": "carrier", "measure": "bytes"}, sh["carrier_ipv6_bytes"])],
        unit="ratio")

    # -- tunnels ------------------------------------------------------------
    for measure, unit in (("packets", None), ("bytes", "bytes")):
        fam(f"tunnel_{measure}", "counter",
            f"{_WHAT[measure]} by outermost encapsulation (tunnel none: not tunnelled).",
            [({"tunnel": k}, e[measure]) for k, e in r["tunnels"].items()], unit=unit)

    # -- extension headers --------------------------------------------------
    eh = r["extension_headers"]
    fam("extension_header_frames", "counter",
        "Frames with this IPv6 extension header type anywhere in them.",
        [({"type": k}, v) for k, v in eh["by_type"].items()])
    fam("extension_header_any_frames", "counter",
        "Frames with any IPv6 extension header.", [({}, eh["frames_with_any"])])
    fam("extension_header_anomalies", "counter",
        "Frames with this IPv6 extension-header anomaly.",
        [({"anomaly": k}, v) for k, v in eh["anomalies"].items()])

    # -- decode problems ------------------------------------------------------
    fam("decode_problems", "counter",
        "Frames that could not be decoded in full, by problem.",
        [({"problem": k}, v) for k, v in r["decode"].items()])

    # -- NAT64 ----------------------------------------------------------------
    suspects = r["nat64"]["suspects"]
    sp_labels = [{"prefix": s["prefix"], "kind": s["kind"]} for s in suspects]
    for measure, unit in (("packets", None), ("bytes", "bytes")):
        fam(f"nat64_suspect_{measure}", "counter",
            f"{_WHAT[measure]} whose innermost IPv6 source or destination "
            f"is in a NAT64 prefix in use or announced.",
            [(lb, s[measure]) for lb, s in zip(sp_labels, suspects)], unit=unit)
    fam("nat64_suspect_ipv6_clients", "gauge",
        "Distinct IPv6 addresses talking to a NAT64 prefix.",
        [(lb, s["ipv6_clients"]) for lb, s in zip(sp_labels, suspects)])
    fam("nat64_suspect_ipv4_destinations", "gauge",
        "Distinct IPv4 addresses embedded in a NAT64 prefix's addresses seen.",
        [(lb, s["ipv4_destinations"]) for lb, s in zip(sp_labels, suspects)])
    fam("nat64_suspect_info", "gauge",
        "A NAT64 prefix in use or announced, with its evidence (value 1).",
        [(dict(lb, evidence=",".join(s["evidence"])), 1) for lb, s in zip(sp_labels, suspects)])
    fam("dns64_synthesized_answers", "counter",
        "AAAA answers that embed an address an A record for the same name gave.",
        [({}, r["nat64"]["dns64"]["synthesized_answers"])])

    _translation(fam, r.get("translation"))

    if "clients" in r:
        c, fl = r["clients"], r["flows"]
        fam("clients", "gauge", "Distinct clients by the IP families they were seen with.",
            [({"family": k}, c[k]) for k in ("ipv4_only", "ipv6_only", "dual_stack",
                                             "link_local_only")])
        fam("clients_ipv6_capable_ratio", "gauge",
            "Share of clients seen with a global IPv6 address (0..1).",
            [({}, c["share_ipv6_capable"])] if c["share_ipv6_capable"] is not None else [],
            unit="ratio")
        fam("clients_info", "gauge", "What identifies a client (value 1).",
            [({"key": c["key"]}, 1)])
        fam("flows", "gauge", "Distinct bidirectional 5-tuples by payload family.",
            [({"family": k}, fl[k]) for k in ("ipv4", "ipv6")])
        fam("flows_by_tunnel", "gauge", "Distinct flows seen in each tunnel kind.",
            [({"tunnel": k}, v) for k, v in fl["by_tunnel"].items()])

    if "sampling" in r:
        _sampling(fam, r["sampling"])
    if "organisations" in r:
        # the scorecard (--org-map): the organisation null is "" here
        rows = r["organisations"]["rows"]
        lab = [{"organisation": "" if x["organisation"] is None else x["organisation"],
                "group": x["group"]} for x in rows]
        for measure, unit in (("packets", None), ("bytes", "bytes")):
            fam(f"org_{measure}", "counter",
                f"{_WHAT[measure]} of an organisation's clients by payload family "
                f"(organisation \"\": no organisation).",
                [(dict(lb, family=f), x["payload"][f][measure]) for lb, x in zip(lab, rows)
                 for f in ("ipv4", "ipv6")], unit=unit)
        fam("org_nat64_packets", "counter", "Frames of an organisation through NAT64.",
            [(lb, x["nat64"]["packets"]) for lb, x in zip(lab, rows)])
        fam("org_clients", "gauge", "Distinct clients of an organisation.",
            [(lb, x["clients"]["total"]) for lb, x in zip(lab, rows)])
        adoption = r["adoption"]["by_organisation"]
        fam("org_adoption_ratio", "gauge",
            "IPv6 adoption of an organisation by a public definition (traffic_packets, "
            "traffic_bytes, flows, clients, ipv6_preferred), on the wire or end to end "
            "(NAT64: IPv6 on the wire, IPv4 end to end); absent when undefined.",
            [(dict(lb, definition=k, view=v), a[k][v]) for lb, a in zip(lab, adoption)
             for k in ("traffic_packets", "traffic_bytes", "flows", "clients",
                       "ipv6_preferred") for v in ("on_the_wire", "end_to_end")],
            unit="ratio")
        fam("org_blocking_ratio", "gauge",
            "Share of an organisation's IPv4 bytes that go to names with no native AAAA.",
            [(lb, b["share_of_ipv4_bytes"]) for lb, b in zip(lab, r["blocking"]["by_organisation"])],
            unit="ratio")

    fam("report_partial", "gauge",
        "1 when the run was interrupted and the figures cover only what was read.",
        [({}, bool(r.get("partial")))])

    # -- inputs and time --------------------------------------------------------
    inputs = _inputs(r)
    fam("input_info", "gauge", "An input read for this report (value 1).",
        [(info, 1) for e in inputs.values() for info in e["info"]])
    fam("input_packets", "counter", "Frames read from an input.",
        [({"path": p}, e["packets"]) for p, e in inputs.items()])
    fam("input_bytes", "counter", "Bytes on the wire of the frames read from an input.",
        [({"path": p}, e["bytes"]) for p, e in inputs.items()], unit="bytes")
    fam("input_errors", "gauge", "Errors that stopped reading an input (0 when it was read).",
        [({"path": p}, e["errors"]) for p, e in inputs.items()])
    fam("input_truncated", "gauge", "1 when an input ended in the middle of a record.",
        [({"path": p}, e["truncated"]) for p, e in inputs.items()])
    fam("capture_first_timestamp_seconds", "gauge", "Time of the first frame, epoch seconds.",
        [({}, r["time"]["first"])], unit="seconds")
    fam("capture_last_timestamp_seconds", "gauge", "Time of the last frame, epoch seconds.",
        [({}, r["time"]["last"])], unit="seconds")
    fam("last_run_timestamp_seconds", "gauge",
        "When ipv6flow wrote these metrics, epoch seconds.",
        [({}, time.time() if now is None else now)], unit="seconds")
    return w.text()


def _translation(fam, tr):
    """Series per mechanism and gateway; no family at all without any."""
    if not tr or not tr["gateways"]:
        return
    gws = tr["gateways"]
    labels = [{"mechanism": g["mechanism"], "gateway": g["gateway"]} for g in gws]
    for measure, unit in (("packets", None), ("bytes", "bytes")):
        fam(f"translation_{measure}", "counter",
            f"{_WHAT[measure]} through an IPv4-as-a-service gateway (NAT64 prefix, AFTR, "
            f"MAP BR), by mechanism.", [(lb, g[measure]) for lb, g in zip(labels, gws)],
            unit=unit)
    for key, what in (("flows", "Distinct flows"), ("clients", "Distinct clients"),
                      ("ipv4_destinations", "Distinct IPv4 destinations")):
        fam(f"translation_{key}", "gauge", f"{what} through a gateway.",
            [(lb, g[key]) for lb, g in zip(labels, gws)])
    fam("translation_peak_bytes", "gauge",
        "Bytes in the gateway's busiest time bin (the figure it is sized by).",
        [(lb, g["peak"]["bytes"]) for lb, g in zip(labels, gws) if g["peak"]], unit="bytes")
    fam("translation_peak_packets", "gauge", "Frames in the gateway's busiest time bin.",
        [(lb, g["peak"]["packets"]) for lb, g in zip(labels, gws) if g["peak"]])
    fam("translation_gateway_info", "gauge",
        "A gateway found, with its confidence and evidence (value 1).",
        [(dict(lb, confidence=g["confidence"], evidence=",".join(g["evidence"])), 1)
         for lb, g in zip(labels, gws)])
    fam("translation_clat_suspects", "gauge",
        "464XLAT CLAT suspects (client /64s) per NAT64 prefix.",
        [({"gateway": g["gateway"]}, g["clat_suspects"]) for g in gws
         if g["mechanism"] == "nat64"])
