"""tshark as an independent oracle for ipv6flow's per-frame decoding.

Strategy
--------
tshark (Wireshark's dissectors) is run once per capture with ``-T json``
and a protocol filter (``-j``), so that only the protocols whose fields we
read are expanded; every other protocol still appears, as a marker, in
document order.  Reassembly is switched off (``ip.defragment``,
``ipv6.defragment``) so that each frame is judged alone, exactly like
ipv6flow's per-frame decoder, and the Teredo heuristic is enabled.

The JSON tree is flattened into an ordered list of protocol *nodes* (a
pre-order walk, so IPv6 extension headers and AH, which tshark nests inside
the ``ipv6`` node, come right after their IPv6 header).  Everything tshark
nests under an ``icmp`` / ``icmpv6`` node is an error message's *quote* of
the packet that caused it (REPORT.md section 2: never an encapsulation) and
is marked ``quoted``; the classifier never looks at it.

:func:`classify` then maps that node list onto REPORT.md sections 2-4:

* ``carrier``   family of the outermost valid IP header (else ``non_ip``);
* ``payload``   family of the innermost IP header reached by following only
  the encapsulations of the REPORT.md tunnel table;
* ``tunnel``    the outermost such encapsulation (``none`` when none);
* ``ext_types`` the REPORT.md ``by_type`` names of every IPv6 extension
  header *named by the previous header* in the chains walked;

and, for the innermost IP header the walk reaches (the payload view):

* ``transport`` REPORT.md section 7's transport key of its upper-layer
  protocol (the IPv4 protocol field, or the IPv6 next header after the
  extension chain; the walk ending inside the chain -- at ESP, or in a
  header that runs past the captured bytes (its ``_pos``, see
  :func:`_add_ext_positions`) or past the payload length -- gives
  ``other``, a non-first
  fragment the Fragment header's next header); None for a non-IP payload;
* ``ports``     (source, destination) of its TCP or UDP header as tshark
  dissects it, None where tshark shows no ports (non-first fragment,
  fewer than 4 bytes, not TCP/UDP);
* ``classes``   REPORT.md section 5 classes of its source and destination
  when it is IPv6, computed here from tshark's ``ipv6.src`` / ``ipv6.dst``
  with :mod:`ipaddress` and :data:`ADDRESS_CLASSES` (written out from
  REPORT.md, not imported from ipv6flow); ``()`` otherwise.

What "tshark says" here is tshark's dissection read through REPORT.md's
definitions (tunnel table, quotes, header chain rules).  Where tshark's own
heuristics decide something REPORT.md decides differently (tshark's Teredo
heuristic, port-based dissectors, link layers REPORT.md does not decode,
MPLS pseudowire guessing, the IPv4 dissector handing a version-6 header to
IPv6 ...), the oracle does *not* silently override tshark: it keeps tshark's
answer and attaches a ``notes`` entry that names the disagreement.  The test
module then requires every such note to be covered by an entry of its table
of known differences, which states what REPORT.md requires and why.

Results are cached per capture, keyed by the capture's sha256, the tshark
version and :data:`EXTRACT_VERSION`, as gzip'd JSON of the (small) extracted
node lists; the classification is recomputed from the cache on every call,
so changing the rules below never needs tshark to run again.

Usage (also ``python tests/tshark_oracle.py CAPTURE...`` for a summary)::

    from tshark_oracle import tshark_frames
    for fr in tshark_frames(path):
        fr["frame"], fr["carrier"], fr["payload"], fr["tunnel"], fr["ext_types"]
        fr["transport"], fr["ports"], fr["classes"]
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Iterable, Iterator

#: bump when the extraction (fields kept, tshark options) changes
EXTRACT_VERSION = 10

TSHARK = os.environ.get("TSHARK", "tshark")

#: tshark options: judge each frame alone, look for Teredo heuristically
TSHARK_OPTIONS = (
    "-n",
    "-o", "ip.defragment:FALSE",
    "-o", "ipv6.defragment:FALSE",
    "--enable-heuristic", "teredo_udp",
)

#: GRE beyond REPORT.md's three protocol types.  REPORT.md's ``gre`` row
#: names 0x86DD, 0x0800 and 0x6558 only; docs/DECISIONS.md (the lead's
#: reading) also follows PPP inside enhanced GRE (PPTP, 0x880B) and ERSPAN
#: type II/III mirror copies (0x88BE / 0x22EB, inner Ethernet), because an
#: engineer reads those inner packets as the traffic.  The oracle follows
#: DECISIONS.md; frames where it matters carry the informational notes
#: ``gre-pptp`` / ``gre-erspan``.  Set these to False for the letter of
#: REPORT.md (then those frames are tunnel ``none``, payload the outer
#: family).
GRE_FOLLOW_PPTP = True
ERSPAN_IS_GRE = True

#: protocols whose fields we read; every other protocol is a marker only
WANTED = (
    "frame", "ip", "ip.flags", "ipv6", "ipv6.hopopts", "ipv6.routing",
    "ipv6.fraghdr", "ipv6.dstopts", "ah", "esp", "mipv6", "hip", "shim6",
    "udp", "tcp", "teredo", "teredo.auth", "teredo.orig", "gre",
    "gre.flags_and_version", "gtp", "gtp.flags",
    "l2tp", "l2tp.flags", "ppp", "vxlan", "geneve", "ayiya", "erspan",
    "icmp", "icmpv6", "_ws.malformed", "_ws.expert",
)

#: fields kept per protocol node (everything else is dropped at extraction)
KEEP = {
    "frame": ("frame.number", "frame.protocols", "frame.len", "frame.cap_len",
              "frame.encap_type"),
    "ip": ("ip.version", "ip.hdr_len", "ip.len", "ip.proto", "ip.src", "ip.dst",
           "ip.frag_offset", "ip.flags.mf"),
    "ipv6": ("ipv6.version", "ipv6.plen", "ipv6.nxt", "ipv6.src", "ipv6.dst"),
    "ipv6.hopopts": ("ipv6.hopopts.nxt", "ipv6.hopopts.len"),
    "ipv6.dstopts": ("ipv6.dstopts.nxt", "ipv6.dstopts.len"),
    "ipv6.routing": ("ipv6.routing.nxt", "ipv6.routing.type", "ipv6.routing.len"),
    "ipv6.fraghdr": ("ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more"),
    "ah": ("ah.next_header", "ah.length"),
    "mipv6": ("mip6.proto", "mip6.mhtype", "mip6.hlen"),
    "hip": ("hip.proto", "hip.hdr_len"),
    "shim6": ("shim6.nxt", "shim6.p", "shim6.len"),
    "udp": ("udp.srcport", "udp.dstport", "udp.length", "udp.payload"),
    "tcp": ("tcp.srcport", "tcp.dstport"),
    "teredo": ("teredo.auth.idlen", "teredo.auth.aulen", "teredo.orig.port"),
    "gre": ("gre.proto", "gre.flags.version", "gre.flags.routing"),
    "gtp": ("gtp.message", "gtp.flags.version", "gtp.flags.payload"),
    "l2tp": ("l2tp.version", "l2tp.type"),
    "ppp": ("ppp.protocol",),
    "geneve": ("geneve.proto_type",),
    "ayiya": ("ayiya.nextheader",),
    "erspan": ("erspan.version",),
    "icmp": ("icmp.type", "icmp.code"),
    "icmpv6": ("icmpv6.type", "icmpv6.code"),
    "_ws.expert": ("_ws.expert.message", "_ws.expert.severity"),
    "_ws.malformed": ("_ws.malformed.expert",),
}
#: udp.payload is kept only this long (hex chars): enough for a Teredo test
UDP_PAYLOAD_KEEP = 2 * 96

#: link layers REPORT.md section 2 decodes (tshark protocol names).  An IP
#: header that tshark finds behind anything else is one REPORT.md never
#: reaches (noted as ``link-unsupported:<proto>``).
LINK_LAYERS = frozenset({
    "eth", "vlan", "ieee8021ad", "mpls", "pppoes", "ppp", "raw", "sll",
    "null", "chdlc", "fr", "radiotap", "wlan_radio", "wlan", "llc",
    "eth.trailer", "ethertype",
})

#: REPORT.md section 4: next-header value -> by_type name
EXT_TYPES = {
    0: "hop_by_hop", 43: "routing", 44: "fragment", 60: "destination_options",
    51: "ah", 50: "esp", 135: "mobility", 139: "hip", 140: "shim6",
    253: "experimental", 254: "experimental",
}
#: next-header value -> tshark node carrying that header, and its "next" field
EXT_NODE = {
    0: ("ipv6.hopopts", "ipv6.hopopts.nxt"),
    43: ("ipv6.routing", "ipv6.routing.nxt"),
    44: ("ipv6.fraghdr", "ipv6.fraghdr.nxt"),
    60: ("ipv6.dstopts", "ipv6.dstopts.nxt"),
    51: ("ah", "ah.next_header"),
    50: ("esp", None),                  # the walk ends at ESP
    135: ("mipv6", "mip6.proto"),
    139: ("hip", "hip.proto"),
    140: ("shim6", "shim6.nxt"),
}
#: next-header value -> (length field, unit, added): the header's size in
#: bytes is (field + added) * unit (the Fragment header is always 8)
EXT_LEN = {
    0: ("ipv6.hopopts.len", 8, 1),
    43: ("ipv6.routing.len", 8, 1),
    60: ("ipv6.dstopts.len", 8, 1),
    51: ("ah.length", 4, 2),
    135: ("mip6.hlen", 8, 1),
    139: ("hip.hdr_len", 8, 1),
    140: ("shim6.len", 8, 1),
}
ALL_EXT_NAMES = frozenset(EXT_TYPES.values())

TUNNEL_KINDS = ("6in4", "6to4", "isatap", "6rd", "teredo", "ayiya", "gre",
                "gtpu", "l2tp", "vxlan", "geneve", "4in6", "6in6", "ipip")

GRE_FOLLOWED = {0x86DD: "ipv6", 0x0800: "ip", 0x6558: "eth"}
GRE_ERSPAN = (0x88BE, 0x22EB)

#: REPORT.md section 7 ``transport`` keys by upper-layer protocol number of
#: the innermost IP header (anything else is ``other``)
TRANSPORT_KEYS = {
    "ipv4": {6: "tcp", 17: "udp", 1: "icmp"},
    "ipv6": {6: "tcp", 17: "udp", 58: "icmpv6", 59: "no_next_header"},
}

#: REPORT.md section 5, in its order (first match wins; no match: ``other``).
#: Written out again from REPORT.md on purpose: ipv6flow's own table
#: (ipv6flow/decode/addresses.py) is what this checks.
ADDRESS_CLASSES = tuple((name, ipaddress.IPv6Network(net)) for name, net in (
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("ipv4_mapped", "::ffff:0:0/96"),
    ("nat64_wkp", "64:ff9b::/96"),
    ("nat64_local", "64:ff9b:1::/48"),
    ("teredo", "2001::/32"),
    ("documentation", "2001:db8::/32"),
    ("documentation", "3fff::/20"),
    ("6to4", "2002::/16"),
    ("link_local", "fe80::/10"),
    ("unique_local", "fc00::/7"),
    ("multicast", "ff00::/8"),
    ("global_unicast", "2000::/3"),
))
ADDRESS_CLASS_NAMES = tuple(dict.fromkeys(
    [n for n, _ in ADDRESS_CLASSES] + ["other"]))


def address_class(addr: str) -> str:
    """REPORT.md section 5 class of an IPv6 address in text form."""
    a = ipaddress.IPv6Address(addr)
    return next((name for name, net in ADDRESS_CLASSES if a in net), "other")


_NET_6TO4 = ipaddress.ip_network("2002::/16")
_NET_TEREDO = ipaddress.ip_network("2001::/32")


class TsharkUnavailable(RuntimeError):
    """tshark is not installed (or not runnable)."""


# --------------------------------------------------------------------------
# running tshark


def have_tshark() -> bool:
    return shutil.which(TSHARK) is not None


@lru_cache(maxsize=1)
def tshark_version() -> str:
    if not have_tshark():
        raise TsharkUnavailable(f"{TSHARK} not found on PATH")
    out = subprocess.run([TSHARK, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


@lru_cache(maxsize=1)
def _protocol_names() -> frozenset:
    """Filter names of every protocol this tshark knows (to tell protocol
    nodes from field subtrees such as ``ip.flags_tree`` or ``Timestamps``)."""
    out = subprocess.run([TSHARK, "-G", "protocols"], capture_output=True,
                         text=True).stdout
    names = {line.split("\t")[2] for line in out.splitlines()
             if line.count("\t") >= 2}
    return frozenset(names)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> str:
    return os.environ.get("IPV6FLOW_TSHARK_CACHE") or os.path.join(
        tempfile.gettempdir(), "ipv6flow-tshark-oracle")


def _iter_packets(stream) -> Iterator[list]:
    """Stream tshark's ``-T json`` output packet by packet.

    tshark pretty-prints one packet object per top-level array element, which
    opens with a line ``  {`` and closes with ``  }`` / ``  },``; parsing one
    packet at a time keeps memory flat on the 40 000-frame captures.  Objects
    are parsed to lists of pairs: tshark repeats keys (two ``ipv6`` layers,
    two ``udp.port``), and their order is the layer order.
    """
    buf: list[str] = []
    inside = False
    for line in stream:
        if not inside:
            if line.rstrip("\n") == "  {":
                inside = True
                buf = [line]
            continue
        buf.append(line)
        if line.rstrip("\n").rstrip(",") == "  }":
            inside = False
            text = "".join(buf).rstrip().rstrip(",")
            yield json.loads(text, object_pairs_hook=lambda pairs: pairs)


def _node_fields(pairs: list, name: str, protos: frozenset, out: dict,
                 children: list) -> None:
    """Collect the scalar fields of one protocol node (descending into field
    subtrees, not into nested protocols, which go to ``children``)."""
    keep = KEEP.get(name, ())
    for key, val in pairs:
        if _is_protocol(key, protos):
            children.append((key, val))
        elif isinstance(val, list):
            _node_fields(val, name, protos, out, children)
        elif key in keep and key not in out:
            if key == "udp.payload":
                val = val.replace(":", "")[:UDP_PAYLOAD_KEEP]
            out[key] = val


def _is_protocol(key: str, protos: frozenset) -> bool:
    """A protocol node, as opposed to a field subtree (``ip.flags_tree``)
    or a text label (``Timestamps``).  A protocol without fields of its own
    (tshark's Teredo) is a plain string; a filtered-out one is
    ``{"filtered": name}``."""
    return key in protos


def _flatten(layers: list, protos: frozenset) -> list:
    """Pre-order list of [name, quoted, fields] protocol nodes."""
    nodes: list = []

    def visit(name: str, pairs: list, quoted: bool) -> None:
        fields: dict = {}
        children: list = []
        if isinstance(pairs, list):
            _node_fields(pairs, name, protos, fields, children)
        nodes.append([name, 1 if quoted else 0, fields])
        inner_quoted = quoted or name in ("icmp", "icmpv6")
        for cname, cval in children:
            visit(cname, cval, inner_quoted)

    for name, val in layers:
        # top-level entries that are not protocols (a stray expert text, a
        # field of a protocol tshark did not wrap) carry nothing we need
        if _is_protocol(name, protos):
            visit(name, val, False)
    return nodes


def _run_tshark(path: str) -> dict:
    protos = _protocol_names()
    cmd = [TSHARK, "-r", path, *TSHARK_OPTIONS, "-T", "json", "-j",
           " ".join(WANTED)]
    frames = []
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                text=True, encoding="utf-8", errors="replace")
        assert proc.stdout is not None
        for pkt in _iter_packets(proc.stdout):
            src = dict(pkt)["_source"]
            layer_pairs = dict(src)["layers"]
            nodes = _flatten(layer_pairs, protos)
            frame = next((n[2] for n in nodes if n[0] == "frame"), {})
            nodes = [n for n in nodes if n[0] not in ("frame", "pkt_comment")]
            frames.append({
                "n": int(frame.get("frame.number", len(frames) + 1)),
                "protocols": frame.get("frame.protocols", ""),
                "len": int(frame.get("frame.len", 0)),
                "caplen": int(frame.get("frame.cap_len", 0)),
                "encap": frame.get("frame.encap_type"),
                "nodes": nodes,
            })
        rc = proc.wait()
        err.seek(0)
        stderr = "\n".join(line for line in err.read().splitlines()
                           if "could be dangerous" not in line)
    _add_ext_positions(path, frames)
    return {"rc": rc, "stderr": stderr, "frames": frames}


#: tshark protocol names of the IPv6 extension headers with a length
EXT_PROTOCOLS = tuple(EXT_NODE[nh][0] for nh in EXT_LEN)


def _add_ext_positions(path: str, frames: list) -> None:
    """Byte offsets of the extension headers tshark was cut short after.

    tshark marks running out of captured bytes (``_ws.short``) after the
    protocol node it was in, but cannot say whether the extension header
    itself was cut or only an option inside it ran past its end (as in
    tcpdump/ipv6-next-header-oobr-1.pcap, a complete 8-byte Hop-by-Hop
    header whose option claims 48 bytes).  For those few frames only, tshark
    runs again with ``-x`` (which adds every field's position), and each
    extension-header node gets ``_pos``, its offset in the frame, so the
    walk can tell (see ``_step``).
    """
    wanted = {}
    for fr in frames:
        nodes = [n for n in fr["nodes"] if not n[0].startswith("_ws.")
                 or n[0] == "_ws.short"]
        if any(n[0] == "_ws.short" and i and nodes[i - 1][0] in EXT_PROTOCOLS
               for i, n in enumerate(nodes)):
            wanted[fr["n"]] = fr
    if not wanted:
        return
    numbers = " ".join(str(n) for n in sorted(wanted))
    cmd = [TSHARK, "-r", path, *TSHARK_OPTIONS, "-Y", f"frame.number in {{{numbers}}}",
           "-T", "json", "-x", "-j", " ".join(("frame", "ipv6") + EXT_PROTOCOLS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, encoding="utf-8", errors="replace")
    assert proc.stdout is not None
    raw_keys = {f"{name}_raw" for name in EXT_PROTOCOLS}
    for pkt in _iter_packets(proc.stdout):
        positions: list = []
        number = [None]

        def visit(pairs):
            for key, val in pairs:
                if key in raw_keys and isinstance(val, list) and len(val) > 1:
                    positions.append(val[1])
                elif key == "frame.number":
                    number[0] = int(val)
                elif isinstance(val, list) and val and isinstance(val[0], tuple):
                    visit(val)

        visit(pkt)
        fr = wanted.get(number[0])
        if fr is None:
            continue
        ext_nodes = [n for n in fr["nodes"] if n[0] in EXT_PROTOCOLS]
        for node, pos in zip(ext_nodes, positions):
            node[2]["_pos"] = pos
    proc.wait()


def extract(path: str, cache_dir: str | None = None) -> dict:
    """tshark's node lists for every frame of ``path`` (cached)."""
    cache_dir = cache_dir or default_cache_dir()
    key = hashlib.sha256(
        f"{_sha256(path)}|{tshark_version()}|{EXTRACT_VERSION}|"
        f"{' '.join(TSHARK_OPTIONS)}".encode()).hexdigest()[:32]
    cfile = os.path.join(cache_dir, key + ".json.gz")
    if os.path.exists(cfile):
        try:
            with gzip.open(cfile, "rt", encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
    data = _run_tshark(path)
    data["path"] = path
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{cfile}.{os.getpid()}.tmp"
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, cfile)
    return data


def prefetch(paths: Iterable[str], cache_dir: str | None = None,
             jobs: int | None = None) -> None:
    """Fill the cache for many captures in parallel (tshark is one process
    per capture, so threads are enough)."""
    paths = list(paths)
    jobs = jobs or min(8, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda p: extract(p, cache_dir), paths))


# --------------------------------------------------------------------------
# classification (REPORT.md sections 2-4)


def _int(v, default=None):
    if v is None:
        return default
    if isinstance(v, int):
        return v
    try:
        return int(v, 0)
    except ValueError:
        try:
            return int(v, 16)
        except ValueError:
            return default


def _valid_ip(node) -> bool:
    """An IP header is *reached* when its fixed header is fully captured
    and has the right version (DECISIONS.md): tshark adds ``ip.dst`` /
    ``ipv6.dst`` only when those bytes are there."""
    name, _q, f = node
    if name == "ip":
        return (f.get("ip.version") == "4" and _int(f.get("ip.hdr_len"), 0) >= 20
                and "ip.src" in f and "ip.dst" in f)
    if name == "ipv6":
        return f.get("ipv6.version") == "6" and "ipv6.src" in f and "ipv6.dst" in f
    return False


def _fam(name: str) -> str:
    return "ipv4" if name == "ip" else "ipv6"


def _is_isatap(addr: str) -> bool:
    b = ipaddress.IPv6Address(addr).packed
    return b[8:12] in (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe")


def proto41_kind(src: str, dst: str, sixrd_prefixes=()) -> str:
    """REPORT.md's sub-kind of an IPv4 protocol-41 tunnel, by inner addresses
    (table order: 6to4, isatap, 6rd, 6in4)."""
    a = [ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)]
    if any(x in _NET_6TO4 for x in a):
        return "6to4"
    if _is_isatap(src) or _is_isatap(dst):
        return "isatap"
    if any(x in ipaddress.ip_network(p) for p in sixrd_prefixes for x in a):
        return "6rd"
    return "6in4"


def teredo_rule(payload_hex: str, udp_length: int | None, sport: int,
                dport: int) -> tuple[bool, str]:
    """REPORT.md's Teredo test on a UDP-over-IPv4 payload.

    After optional authentication (indicator 0x0001) and origin-indication
    (0x0000) headers the payload must be an IPv6 header whose payload length
    fits the datagram, and either port is 3544 or the inner source or
    destination is in 2001::/32.  Returns (verdict, reason).

    "Fits" is read as "40 + payload length <= what the UDP datagram has
    left", not "==": RFC 6081 (Teredo extensions) appends trailers (nonce,
    alternate address, random port ...) after the IPv6 packet, as Windows
    clients do in zeek/gtp8_teredo.pcap.  tshark's heuristic (not its
    port-3544 dissector) wants an exact fill; the oracle notes where that
    makes tshark miss Teredo (``teredo-missed``).
    """
    try:
        p = bytes.fromhex(payload_hex or "")
    except ValueError:
        return False, "no payload"
    total = (udp_length - 8) if udp_length is not None else len(p)
    off = 0
    if p[:2] == b"\x00\x01":
        if len(p) < 4:
            return False, "short auth header"
        off = 4 + p[2] + p[3] + 8 + 1
    if p[off:off + 2] == b"\x00\x00":
        off += 8
    hdr = p[off:off + 40]
    if len(hdr) < 40:
        return False, "no room for an IPv6 header"
    if hdr[0] >> 4 != 6:
        return False, "not version 6"
    plen = int.from_bytes(hdr[4:6], "big")
    if off + 40 + plen > total:
        return False, f"payload length {plen} does not fit"
    src = ipaddress.IPv6Address(hdr[8:24])
    dst = ipaddress.IPv6Address(hdr[24:40])
    if 3544 in (sport, dport):
        return True, "port 3544"
    if src in _NET_TEREDO or dst in _NET_TEREDO:
        return True, "2001::/32"
    return False, "neither port 3544 nor 2001::/32"


#: notes that mean "tshark decided this differently from REPORT.md"; each
#: frame carrying one must be covered by the test's known-differences table
DISAGREEMENT_NOTES = (
    "link-unsupported",          # IP behind a layer REPORT.md does not decode
    "ipv4-link-holds-version-6", # tshark's IPv4 dissector hands v6 to IPv6
    "teredo-missed",             # REPORT.md rule matches, tshark no Teredo
    "teredo-rule-fails",         # tshark Teredo, REPORT.md rule fails
    "teredo-over-ipv6",          # tshark Teredo in UDP over IPv6
    "port:",                     # tunnel dissected on a non-REPORT.md port
    "gtp-not-tpdu",              # tshark follows a GTP message not a T-PDU
    "l2tp-not-v2-data",
)


def is_disagreement(note: str) -> bool:
    return note.startswith(DISAGREEMENT_NOTES)


class _Walk:
    """State of one frame's walk: the REPORT.md fields being filled in."""

    def __init__(self, nodes: list, caplen: int = 0):
        self.nodes = nodes
        self.caplen = caplen
        self.carrier = self.payload = "non_ip"
        self.tunnel = "none"
        self.ext: set[str] = set()
        self.notes: list[str] = []
        # the innermost IP header walked so far: its node index, upper-layer
        # protocol number, and (source, destination) ports
        self.ip: int | None = None
        self.proto: int | None = None
        self.ports: tuple[int, int] | None = None

    def at(self, k: int):
        return self.nodes[k] if 0 <= k < len(self.nodes) else (None, 0, {})

    def enter(self, kind: str, inner: int | None) -> int | None:
        """Record encapsulation ``kind``; ``inner`` indexes the inner header
        (an IP header, or Ethernet for GRE/VXLAN/Geneve/ERSPAN, whose IP
        header the walk reaches later)."""
        if self.tunnel == "none":
            self.tunnel = kind
        if inner is not None and self.at(inner)[0] in ("ip", "ipv6"):
            self.payload = _fam(self.at(inner)[0])
        return inner

    def reach(self, k: int, proto: int | None, upper: int | None) -> None:
        """The IP header at ``k`` is the innermost so far; ``proto`` names
        its upper layer, whose node is at ``upper`` (None: not reached)."""
        self.ip, self.proto, self.ports = k, proto, None
        name = {6: "tcp", 17: "udp"}.get(proto)
        if upper is not None and name and self.at(upper)[0] == name:
            f = self.at(upper)[2]
            sport = _int(f.get(f"{name}.srcport"))
            dport = _int(f.get(f"{name}.dstport"))
            if sport is not None and dport is not None:
                self.ports = (sport, dport)

    def enter_ip(self, kind: str, inner: int, what: str) -> int | None:
        """Follow into an inner IP header only when it is reached."""
        if _valid_ip(self.at(inner)):
            return self.enter(kind, inner)
        self.notes.append(f"{what}-inner-not-reached")
        return None


def classify(frame: dict, sixrd_prefixes=()) -> dict:
    """REPORT.md view of one extracted frame (see module docstring)."""
    # drop ICMP quotes and expert annotations
    w = _Walk([n for n in frame["nodes"]
               if not n[1] and not n[0].startswith("_ws.")], frame["caplen"])
    at = w.at

    # ---- link layers, up to the outermost IP header
    k = 0
    link_odd = []
    while k < len(w.nodes) and at(k)[0] not in ("ip", "ipv6"):
        if at(k)[0] not in LINK_LAYERS:
            link_odd.append(at(k)[0])
        k += 1
    if k == len(w.nodes):
        return _result(frame, w)
    if link_odd:
        w.notes.append("link-unsupported:" + "+".join(link_odd))
    protos = [p for p in frame["protocols"].split(":")]
    first_ip = next((p for p in protos if p in ("ip", "ipv6")), None)
    if at(k)[0] == "ip" and at(k)[2].get("ip.version") == "6" and at(k + 1)[0] == "ipv6":
        w.notes.append("ipv4-link-holds-version-6")   # tshark: ip node, v6
        k += 1
    elif at(k)[0] == "ipv6" and first_ip == "ip":
        w.notes.append("ipv4-link-holds-version-6")   # tshark: no ip node
    if not _valid_ip(at(k)):
        w.notes.append(f"outer-{at(k)[0]}-not-reached")
        return _result(frame, w)
    w.carrier = w.payload = _fam(at(k)[0])

    for _depth in range(32):
        k = _step(w, k, sixrd_prefixes)
        if k is None:
            break
    return _result(frame, w)


def _step(w: _Walk, k: int, sixrd_prefixes) -> int | None:
    """One header of the walk; returns the index of the next header to
    walk, or None where REPORT.md's walk ends."""
    at = w.at
    name, _q, f = at(k)
    if name == "ip":
        proto = _int(f.get("ip.proto"))
        if _int(f.get("ip.frag_offset"), 0):
            w.reach(k, proto, None)
            return None                       # non-first fragment
        w.reach(k, proto, k + 1)
        return _after_ip(w, k + 1, proto, "ipv4", sixrd_prefixes)
    if name == "ipv6":
        nh = _int(f.get("ipv6.nxt"))
        plen = _int(f.get("ipv6.plen"), 0)
        used = 0                              # bytes of the chain so far
        j = k + 1
        for _ in range(64):
            if nh not in EXT_TYPES:
                break
            w.ext.add(EXT_TYPES[nh])          # named by the previous header
            want = EXT_NODE.get(nh)
            if want is None or at(j)[0] != want[0] or want[1] is None:
                w.reach(k, nh, None)          # experimental, ESP, cut short
                return None
            hf = at(j)[2]
            size = 8
            if nh in EXT_LEN:
                field, unit, added = EXT_LEN[nh]
                size = (_int(hf.get(field), 0) + added) * unit
            used += size
            if ("_pos" in hf and hf["_pos"] + size > w.caplen) or (plen and used > plen):
                # the header runs past the captured bytes or the packet's
                # payload length: REPORT.md's walk ends inside it, so its
                # next-header field names nothing that is reached
                w.reach(k, nh, None)
                return None
            j += 1
            if want[0] == "ipv6.fraghdr" and _int(hf.get("ipv6.fraghdr.offset"), 0):
                # non-first fragment: the transport is the one the Fragment
                # header names, and no upper-layer header is there
                w.reach(k, _int(hf.get(want[1])), None)
                return None
            nh = _int(hf.get(want[1]))
        w.reach(k, nh, j)
        return _after_ip(w, j, nh, "ipv6", sixrd_prefixes)
    if name == "eth":
        # Ethernet inside GRE / VXLAN / Geneve / ERSPAN: its link layers
        j = k + 1
        while at(j)[0] in LINK_LAYERS:
            j += 1
        if at(j)[0] in ("ip", "ipv6") and _valid_ip(at(j)):
            w.payload = _fam(at(j)[0])
            return j
        return None
    return None


def _after_ip(w: _Walk, j: int, proto, fam: str, sixrd_prefixes) -> int | None:
    """The header an IPv4 protocol / IPv6 next header ``proto`` names."""
    at = w.at
    nb = at(j)[0]
    if proto == 41 and nb == "ipv6":
        if fam == "ipv4":
            if not _valid_ip(at(j)):
                w.notes.append("proto41-inner-not-reached")
                return None
            kind = proto41_kind(at(j)[2]["ipv6.src"], at(j)[2]["ipv6.dst"],
                                sixrd_prefixes)
            return w.enter(kind, j)
        return w.enter_ip("6in6", j, "6in6")
    if proto == 4 and nb == "ip":
        return w.enter_ip("ipip" if fam == "ipv4" else "4in6", j,
                          "ipip" if fam == "ipv4" else "4in6")
    if proto == 47 and nb == "gre":
        return _gre(w, j)
    if proto == 17 and nb == "udp":
        return _udp(w, j, fam)
    if proto == 51 and fam == "ipv4" and nb == "ah":
        w.notes.append("ipv4-ah")   # IPv4 AH is not in REPORT.md's walk
    return None


def _gre(w: _Walk, g: int) -> int | None:
    at = w.at
    gf = at(g)[2]
    proto = _int(gf.get("gre.proto"))
    if gf.get("gre.flags.routing") in ("1", "True"):
        w.notes.append("gre-source-routed")
        return None
    nb = at(g + 1)[0]
    if proto in GRE_FOLLOWED and nb == GRE_FOLLOWED[proto]:
        if nb == "eth":
            return w.enter("gre", g + 1)
        return w.enter_ip("gre", g + 1, "gre")
    if proto == 0x880B and nb == "ppp" and GRE_FOLLOW_PPTP:
        pp = _int(at(g + 1)[2].get("ppp.protocol"))
        if pp in (0x0021, 0x0057) and at(g + 2)[0] in ("ip", "ipv6"):
            w.notes.append("gre-pptp")
            return w.enter_ip("gre", g + 2, "gre")
        return None
    if proto in GRE_ERSPAN and ERSPAN_IS_GRE:
        e = g + 1 + (at(g + 1)[0] == "erspan")
        if at(e)[0] == "eth":
            w.notes.append("gre-erspan")
            return w.enter("gre", e)
    return None


def _udp(w: _Walk, u: int, fam: str) -> int | None:
    at = w.at
    uf = at(u)[2]
    sport = _int(uf.get("udp.srcport"), -1)
    dport = _int(uf.get("udp.dstport"), -1)
    ports = (sport, dport)
    nb = at(u + 1)[0]
    if fam == "ipv4" and nb != "teredo":
        ok, why = teredo_rule(uf.get("udp.payload", ""),
                              _int(uf.get("udp.length")), sport, dport)
        if ok and nb not in ("gtp", "l2tp", "vxlan", "geneve", "ayiya"):
            w.notes.append(f"teredo-missed:{why}")

    def port(kind, number):
        if number not in ports:
            w.notes.append(f"port:{kind}:{sport}>{dport}")

    if nb == "teredo":
        if at(u + 2)[0] != "ipv6" or not _valid_ip(at(u + 2)):
            return None
        if fam != "ipv4":
            w.notes.append("teredo-over-ipv6")
        else:
            ok, why = teredo_rule(uf.get("udp.payload", ""),
                                  _int(uf.get("udp.length")), sport, dport)
            if not ok:
                w.notes.append(f"teredo-rule-fails:{why}")
        return w.enter("teredo", u + 2)
    if nb == "ayiya":
        port("ayiya", 5072)
        if at(u + 2)[0] in ("ip", "ipv6"):
            return w.enter_ip("ayiya", u + 2, "ayiya")
        # AYIYA without a packet inside (heartbeat, next header 59): no
        # inner header is reached, so no tunnel (DECISIONS.md: a tunnel
        # counts only when its inner header is reached)
        w.notes.append("ayiya-no-inner")
        return None
    if nb == "gtp":
        gf = at(u + 1)[2]
        if at(u + 2)[0] not in ("ip", "ipv6"):
            return None
        port("gtpu", 2152)
        if _int(gf.get("gtp.message")) != 0xFF or gf.get("gtp.flags.version") != "1":
            w.notes.append("gtp-not-tpdu")
        return w.enter_ip("gtpu", u + 2, "gtpu")
    if nb == "l2tp":
        lf = at(u + 1)[2]
        pp = at(u + 2)
        if (pp[0] != "ppp" or _int(pp[2].get("ppp.protocol")) not in (0x21, 0x57)
                or at(u + 3)[0] not in ("ip", "ipv6")):
            return None
        port("l2tp", 1701)
        if lf.get("l2tp.version") != "2" or lf.get("l2tp.type") not in ("0", "False"):
            w.notes.append("l2tp-not-v2-data")
        return w.enter_ip("l2tp", u + 3, "l2tp")
    if nb == "vxlan":
        port("vxlan", 4789)
        if at(u + 2)[0] == "eth":
            return w.enter("vxlan", u + 2)
        if at(u + 2)[0] in ("ip", "ipv6"):       # VXLAN-GPE carrying IP
            w.notes.append("vxlan-without-ethernet")
            return w.enter_ip("vxlan", u + 2, "vxlan")
        return None
    if nb == "geneve":
        port("geneve", 6081)
        if at(u + 2)[0] == "eth":
            return w.enter("geneve", u + 2)
        if at(u + 2)[0] in ("ip", "ipv6"):
            return w.enter_ip("geneve", u + 2, "geneve")
        w.notes.append("geneve-no-inner")
        return None
    return None


def _result(frame, w: _Walk) -> dict:
    transport, ports, classes = None, None, ()
    if w.payload != "non_ip":
        name, _q, f = w.at(w.ip) if w.ip is not None else (None, 0, {})
        if w.ip is None or _fam(name) != w.payload:
            raise AssertionError(f"frame {frame['n']}: payload {w.payload} but "
                                 f"innermost header walked is {name}")
        transport = TRANSPORT_KEYS[w.payload].get(w.proto, "other")
        ports = w.ports
        if name == "ipv6":
            classes = (address_class(f["ipv6.src"]), address_class(f["ipv6.dst"]))
    return {
        "frame": frame["n"],
        "protocols": frame["protocols"],
        "len": frame["len"],
        "caplen": frame["caplen"],
        "carrier": w.carrier,
        "payload": w.payload,
        "tunnel": w.tunnel,
        "ext_types": frozenset(w.ext),
        "transport": transport,
        "ports": ports,
        "classes": classes,
        "notes": tuple(w.notes),
    }


def tshark_frames(path: str, cache_dir: str | None = None,
                  sixrd_prefixes=()) -> list[dict]:
    """One dict per packet record of ``path``: frame (1-based packet index),
    tshark_frame (tshark's frame number), protocols, len, caplen, carrier,
    payload, tunnel, ext_types (frozenset), transport, ports, classes and
    notes (tuple).

    tshark 4 also shows pcapng records that are not packets (Custom Blocks)
    as frames, with no encapsulation type; REPORT.md counts packet records
    only, so those are left out and the rest renumbered.
    """
    data = extract(path, cache_dir)
    out = []
    for fr in data["frames"]:
        if not fr.get("encap"):
            continue
        r = classify(fr, sixrd_prefixes)
        r["tshark_frame"] = r["frame"]
        r["frame"] = len(out) + 1
        out.append(r)
    return out


def tshark_errors(path: str, cache_dir: str | None = None) -> str:
    """tshark's stderr for ``path`` (e.g. "cut short in the middle of a
    packet"), without the running-as-root warning."""
    return extract(path, cache_dir).get("stderr", "")


# --------------------------------------------------------------------------


def summarize(path: str) -> str:
    frames = tshark_frames(path)
    c = Counter((f["carrier"], f["payload"], f["tunnel"]) for f in frames)
    e = Counter(x for f in frames for x in f["ext_types"])
    t = Counter(f"{f['payload']}/{f['transport']}" for f in frames if f["transport"])
    a = Counter(x for f in frames for x in f["classes"])
    n = Counter(x.split(":")[0] for f in frames for x in f["notes"])
    lines = [f"{path}: {len(frames)} frames"]
    for key, v in sorted(c.items()):
        lines.append(f"   {v:6d}  carrier={key[0]} payload={key[1]} tunnel={key[2]}")
    if e:
        lines.append("   ext: " + ", ".join(f"{k}={v}" for k, v in sorted(e.items())))
    if t:
        lines.append("   transport: " + ", ".join(f"{k}={v}" for k, v in sorted(t.items())))
    if a:
        lines.append("   addresses: " + ", ".join(f"{k}={v}" for k, v in sorted(a.items())))
    if n:
        lines.append("   notes: " + ", ".join(f"{k}={v}" for k, v in sorted(n.items())))
    return "\n".join(lines)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(summarize(p))
