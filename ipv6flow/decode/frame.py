"""What the decoder says about one frame (``Frame``, and its ``FrameKey``:
what the report counts of it), and the options it decodes with."""

from dataclasses import dataclass
from typing import NamedTuple

from .addresses import address_class
from .registry import TRANSPORT


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding choices a user makes on the command line.

    ``sixrd_prefixes`` are ``addresses.Prefix`` (value, length) over
    128-bit addresses (see ``addresses.parse_prefix``). ``client_key`` and
    ``client_prefixes`` are not decoding choices but travel with them to
    every worker. The caps bound the work per
    frame (STYLE habit 6); hitting one is counted, never fatal.
    """

    sixrd_prefixes: tuple = ()
    max_tunnel_depth: int = 8      # encapsulations followed per frame
    max_chain: int = 64            # extension headers walked per IPv6 header
    max_layers: int = 64           # link/IP layers of any kind per frame
    # Who is a client (analysis/population.py): the key clients are
    # counted by, and the networks they live in (canonical CIDR strings).
    client_key: str = "auto"
    client_prefixes: tuple = ()
    # Read the inputs as captures of sFlow datagrams sent to this UDP port
    # (capture/sflow.py); 0: the inputs are the traffic itself.
    sflow_port: int = 0
    # The organisations of ``--org-map`` (analysis/orgmap.OrgMap), or None.
    org_map: object = None
    # What is known of IPv4-as-a-service gateways (analysis/translation.py):
    # AFTR/BR IPv6 addresses (16 bytes each) and MAP rules (parse_map_rule).
    aftr: tuple = ()
    map_rules: tuple = ()


class Frame:
    """Per-frame result of the reference decoder.

    carrier / payload: 'ipv4' | 'ipv6' | 'non_ip' (REPORT.md section 3).
    tunnels: encapsulation kinds, outermost first; ``tunnel`` the first.
    ext_types: by_type names found anywhere in the frame.
    chain_len: extension headers in the outermost IPv6 header's chain.
    proto: upper-layer protocol number of the innermost IP header.
    src6 / dst6: the innermost IPv6 header's addresses (16 bytes each);
    src4 / dst4 the same for IPv4.
    l4_off / l4_end: where the innermost IP header's upper-layer header
    starts and where that packet ends (None when there is none to read:
    non-first fragment, ESP, a cut chain).
    problem: None | 'malformed' | 'truncated' | 'unsupported_linktype' |
    'depth_exceeded' -- the first thing that stopped the decode early.
    """

    __slots__ = ("carrier", "payload", "tunnels", "ext_types", "routing_types",
                 "chain_len", "anomalies", "proto", "src6", "dst6", "src4", "dst4",
                 "problem", "l4_off", "l4_end")

    def __init__(self):
        self.carrier = "non_ip"
        self.payload = "non_ip"
        self.tunnels = []
        self.ext_types = set()
        self.routing_types = set()
        self.chain_len = None
        self.anomalies = set()
        self.proto = None
        self.src6 = self.dst6 = None
        self.src4 = self.dst4 = None
        self.problem = None
        self.l4_off = self.l4_end = None

    @property
    def tunnel(self) -> str:
        return self.tunnels[0] if self.tunnels else "none"

    def fail(self, problem: str) -> None:
        """Record why decoding stopped; the first reason is kept."""
        if self.problem is None:
            self.problem = problem

    def __repr__(self):
        return (f"Frame(carrier={self.carrier}, payload={self.payload}, tunnel={self.tunnel},"
                f" ext={sorted(self.ext_types)}, anomalies={sorted(self.anomalies)},"
                f" proto={self.proto}, problem={self.problem})")


class FrameKey(NamedTuple):
    """Everything the report counts about one decoded frame, hashable: a
    Summary folds frames into a table keyed by it, and the numpy kernel
    packs the same fields into one int64 per row (fast/kernel.py ``pack``)."""

    carrier: str                 # registry.FAMILY_NAMES
    payload: str
    tunnel: str                  # registry.TUNNEL_KINDS
    transport: str | None        # registry.TRANSPORT_KEYS[payload]; None for non-IP
    ext: tuple                   # by_type names, sorted
    routing_types: tuple         # sorted
    chain_len: int | None
    anomalies: tuple             # sorted
    classes: tuple               # (source, destination) address classes, or ()
    problem: str | None


def frame_key(f: Frame) -> FrameKey:
    """The ``FrameKey`` of a reference-decoded frame."""
    fam = f.payload
    transport = None
    if fam != "non_ip":
        transport = TRANSPORT[fam].get(f.proto, "other")
    if fam == "ipv6" and f.src6 is not None:
        classes = (address_class(f.src6), address_class(f.dst6))
    else:
        classes = ()
    return FrameKey(f.carrier, fam, f.tunnel, transport,
                    tuple(sorted(f.ext_types)), tuple(sorted(f.routing_types)), f.chain_len,
                    tuple(sorted(f.anomalies)), classes, f.problem)
