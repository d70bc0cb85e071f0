"""Which classifier runs: the compiled single pass or the numpy kernel.

``classify(batch, opts)`` gives what ``kernel.classify`` gives (keys,
fallback rows, row state), from the compiled pass of ``ipv6flow/_core.c``
where it is built, else from the numpy kernel (``kernel.py``), which stays
the no-compiler path and the specification the C follows step by step.

The C code types no table of its own: ``_config()`` hands it the kernel's
lookup tables (built from ``decode/registry.py``), bit shifts and codes,
and the registry's protocol numbers and ports, once at import.

Switches (tests run all three paths: compiled, numpy, reference):
``IPV6FLOW_PURE_PYTHON=1`` (no compiled code at all, as without a
compiler) or ``IPV6FLOW_NUMPY_KERNEL=1`` (only the classifier) at import;
in-process, set ``compiled`` to None (``BUILT`` keeps the compiled one). ``PATH`` names the one in use
(``--stats`` prints it).
"""

import numpy as np

from ..compiled import core_function, switched_off
from ..decode import registry as R
from ..decode.addresses import prefix_mask
from . import kernel as K

# Output columns of _core.classify, in its C_* order: the key, then the
# Rows attributes the rest of the fast path reads, then the innermost IPv6
# addresses' words (Rows.addr 0-3).
COLUMNS = ("key", "carrier", "payload", "tunnel", "ntun", "proto", "v6", "ip", "v4", "l4",
           "l4end", "addr0", "addr1", "addr2", "addr3", "sport", "dport", "icmp", "v4s", "v4d",
           "mac_s", "mac_d", "flags")
_SHIFT_ORDER = ("carrier", "payload", "tunnel", "transport", "ext", "rtype", "chain", "anom",
                "src", "dst")


# The kinds of first step a link type takes (_core.c L_*), as kernel.start:
# Ethernet, raw IP (family by version), raw IPv4, raw IPv6, cooked (SLL,
# SLL2: an ethertype at an offset of a fixed header, kernel.COOKED).
LINK_KINDS = ("eth", "raw", "raw_ipv4", "raw_ipv6", "cooked")
# The registry's header layouts whose fields _core.c reads by name.
LAYOUTS = (R.LLC_SNAP, R.PPPOE, R.MPLS, R.GRE, R.ERSPAN, R.GTPU, R.VXLAN, R.GENEVE, R.L2TP,
           R.AYIYA, R.TEREDO)


def _links():
    """(link type, kind, header length, ethertype offset) of each link type
    the kernel starts on (kernel.LINKTYPE_START, from the registry)."""
    out = []
    for token, codes in K.LINKTYPE_START.items():
        for code in codes:
            if token in K.COOKED:
                layout = K.COOKED[token]
                out.append((code, LINK_KINDS.index("cooked"), layout.LEN, layout.TYPE))
            else:
                out.append((code, LINK_KINDS.index(token), 0, 0))
    return sorted(out)


def table(a) -> np.ndarray:
    """A lookup table as ``_core.configure`` takes it without a list of
    Python ints: contiguous, 1-byte items as they are (bools as bytes),
    others as int64."""
    a = np.asarray(a)
    if a.dtype == bool:
        return np.ascontiguousarray(a).view(np.uint8)
    if a.dtype.itemsize == 1:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a, dtype=np.int64)


def _config():
    """Everything the C pass reads, from the kernel and the registry."""
    links = _links()
    assert tuple(name for name, _ in K._FIELDS) == _SHIFT_ORDER
    tokens = (K.T_DONE, K.T_FALLBACK, K.T_ETH, K.T_IPV4, K.T_IPV6, K.T_UDP, K.T_GRE, K.T_LLC)
    prefixes = [int(v) for k, vh, mh, vl, ml in K._CLASS_MASKS
                for v in (k, vh, mh, vl, ml)]
    cfg = {
        "TOKENS": tokens, "STEPS": [token for token, _ in K.STEPS], "NCOLS": len(COLUMNS),
        "ET_TOKEN": table(K.ET_TOKEN), "IS_VLAN": table(K.IS_VLAN),
        "IS_TUNNEL_PORT": table(K.IS_TUNNEL_PORT), "UNKNOWN_NH": table(K.UNKNOWN_NH),
        "EXT_BIT": table(K.EXT_BIT), "SEEN_BIT": table(K.SEEN_BIT),
        "UL_MIN": table(K.UL_MIN), "TRANSPORT_CODE": table(K.TRANSPORT_CODE),
        "PROTO_TOKEN": table(K.PROTO_TOKEN),
        "PROTO_KIND": table(np.concatenate((K.PROTO_KIND[False], K.PROTO_KIND[True]))),
        "CLASS16": table(K.CLASS16), "CLASS_OTHER": K.CLASS_OTHER,
        # 64-bit words as signed int64 (the C reads them back as unsigned)
        "CLASS_PREFIXES": [v - (1 << 64) if v >= 1 << 63 else v for v in prefixes],
        "N_CLASS_PREFIXES": len(K._CLASS_MASKS),
        "SHIFTS": [K._SHIFT[name][0] for name in _SHIFT_ORDER],
        "MAX_ROUNDS": K.MAX_ROUNDS,
        "A_REPEATED": K.A_BIT["repeated_header"], "A_HBH_NOT_FIRST": K.A_BIT["hbh_not_first"],
        "A_RH0": K.A_BIT["rh0"], "A_ATOMIC": K.A_BIT["atomic_fragment"],
        "A_UNKNOWN_NH": K.A_BIT["unknown_next_header"],
        "A_NOT_IN_FIRST": K.A_BIT["chain_not_in_first_fragment"],
        "FAM_NON_IP": K.FAM_NON_IP, "FAM_IPV4": K.FAM_IPV4, "FAM_IPV6": K.FAM_IPV6,
        "K_6IN4": K.K_6IN4, "K_6TO4": K.K_6TO4, "K_ISATAP": K.K_ISATAP, "K_6RD": K.K_6RD,
        "K_TEREDO": K.K_TEREDO, "K_GRE": K.K_GRE, "K_GTPU": K.K_GTPU, "K_VXLAN": K.K_VXLAN,
        "GRE_TOKEN": table(K.GRE_TOKEN), "N_LINKS": len(links),
        "GENEVE_TOKEN": table(K.GENEVE_TOKEN), "PPP_TOKEN": table(K.PPP_TOKEN),
        "UDP_TUNNEL_KIND": table(K.UDP_TUNNEL_KIND), "VERSION_TOKEN": table(K.VERSION_TOKEN),
        "AYIYA_TOKEN": table(K.AYIYA_TOKEN), "IS_MPLS": table(K.IS_MPLS),
        "MAX_MPLS_LABELS": K.MAX_MPLS_LABELS, "K_GENEVE": K.K_GENEVE, "K_L2TP": K.K_L2TP,
        "K_AYIYA": K.K_AYIYA, "T_PPP": K.T_PPP,
        "LINKS": [v for link in links for v in link],
    }
    cfg.update({"IPPROTO_ICMP": R.ICMP_OF[R.FAM_IPV4], "IPPROTO_ICMPV6": R.ICMP_OF[R.FAM_IPV6],
                "UDP_SPORT": R.UDP.SPORT, "UDP_DPORT": R.UDP.DPORT, "ICMP_TYPE": R.ICMP.TYPE,
                "IPV4_SRC": R.IPV4.SRC, "ETH_DST": R.ETH.DST, "ETH_SRC": R.ETH.SRC,
                "ETH_ADDR_LEN": R.ETH.ADDR_LEN, "TCP_FLAGS": R.TCP.FLAGS})
    # what _core.c spans reads (fast.dns_segments, fast.icmpv6_spans)
    cfg.update({"DNS_PORT": R.DNS_PORT, "UDP_LEN": R.UDP.LEN, "UDP_ULEN": R.UDP.ULEN,
                "TCP_LEN": R.TCP.LEN, "TCP_DOFF": R.TCP.DOFF, "IPV6_SRC": R.IPV6.SRC,
                "IPV6_ADDR_LEN": R.IPV6.ADDR_LEN, "IPV4_ADDR_LEN": R.IPV4.ADDR_LEN})
    # the header layouts the link-layer and tunnel steps read, by name
    # (registry.MPLS.LEN is "MPLS_LEN")
    for layout in LAYOUTS:
        for field, value in vars(layout).items():
            if not field.startswith("_") and isinstance(value, int):
                cfg[f"{layout.__name__}_{field}"] = value
    for name in ("PPP_COMPRESSED", "PPP_ADDRESS", "PPP_CONTROL", "ETHERTYPE_PPP",
                 "ETHERTYPE_ERSPAN2", "ETHERTYPE_ERSPAN3"):
        cfg[name] = getattr(R, name)
    for name in ("IPPROTO_TCP", "IPPROTO_UDP", "LINKTYPE_ETHERNET", "IPPROTO_HOPOPTS", "IPPROTO_ROUTING", "IPPROTO_FRAGMENT", "IPPROTO_ESP",
                 "IPPROTO_AH", "IPPROTO_NONE", "IPPROTO_DSTOPTS", "ETHERTYPE_PPPOE_SESS",
                 "ETHERTYPE_MAX_LENGTH",
                 "PPP_IPV4", "PPP_IPV6", "UDP_PORT_GTPU", "UDP_PORT_VXLAN", "UDP_PORT_TEREDO"):
        cfg[name] = getattr(R, name)
    return cfg


def _load():
    """The compiled pass, configured; else None and why not."""
    if switched_off():
        return None, "switched off (IPV6FLOW_PURE_PYTHON or IPV6FLOW_NUMPY_KERNEL)"
    try:
        from .. import _core
    except ImportError as e:
        return None, f"not built ({e})"
    try:
        _core.configure(_config())
    except (KeyError, ValueError) as e:
        # an extension built from other sources than these: the numpy
        # kernel is right whatever the build (tests/test_core.py fails CI)
        return None, f"built from other sources: {e}"
    return _core.classify, None


BUILT, UNAVAILABLE = _load()   # the compiled pass, if built and not switched off
compiled = BUILT       # the one classify uses (tests set it to None)


def path_name():
    """The classifier in use, for ``--stats``."""
    return "compiled core" if compiled is not None else "numpy kernel"


class CompiledRows(K.Rows):
    """``kernel.Rows`` filled by the compiled pass: the attributes the fast
    path reads are rows of one (len(COLUMNS), n) array, and the gathers
    (u8 ... block, addr) are the kernel's."""

    def __init__(self, buf, out):
        self.buf = buf
        self.out = out                   # all of classify's output (compiled_columns)
        self.n = out.shape[1]
        for name, col in zip(COLUMNS[1:11], out[1:11]):
            setattr(self, name, col)
        self.sport, self.dport = out[_AT["sport"]], out[_AT["dport"]]   # read by dns_segments
        self._addr = {k: out[11 + k].view(np.uint64) for k in range(4)}
        self._h6 = None
        self._windows = {}


def classify(batch, opts):
    """``kernel.classify``, by the compiled pass where it is built."""
    fn = compiled
    if fn is None or K.MAX_LAYERS_PER_TUNNEL * (opts.max_tunnel_depth + 1) > opts.max_layers:
        # (with such caps the kernel sends every row to the reference)
        return K.classify(batch, opts)
    n = len(batch)
    out = np.empty((len(COLUMNS), n), dtype=np.int64)
    fallback = np.empty(n, dtype=np.int64)
    short, long_prefix = [], False
    for value, length in opts.sixrd_prefixes:
        if length > 64:              # needs the low word: such rows fall back
            long_prefix = True
        else:
            mask = prefix_mask(length)
            short.append(((value & mask) >> 64, mask >> 64))
    depth = max(-1, min(opts.max_tunnel_depth, 1 << 20))
    depth_cap = max(0, min(K.MAX_DEPTH, opts.max_chain))
    nfb = fn(batch.buffer, np.ascontiguousarray(batch.offsets, dtype=np.int64),
             np.ascontiguousarray(batch.caplens, dtype=np.int64),
             np.ascontiguousarray(batch.linktypes, dtype=np.int64), out.reshape(-1), fallback,
             depth, depth_cap, short, long_prefix)
    buf = np.frombuffer(batch.buffer, dtype=np.uint8)
    if not len(buf):
        buf = np.zeros(1, dtype=np.uint8)        # as kernel.classify: gathers need a byte
    return out[0], fallback[:nfb], CompiledRows(buf, out)


# The analyses' columns (fast.gather_columns) that the compiled pass reads
# for every row besides its state (_core.c row_columns).
_READ = ("sport", "dport", "icmp", "v4s", "v4d", "mac_s", "mac_d", "flags")
_AT = {name: COLUMNS.index(name) for name in COLUMNS}


# The rows of classify's output the columns are made of, and the compiled
# in-place gather of them (None where _core is not built or switched off).
_TAKEN = np.array([_AT[name] for name in ("carrier", "payload", "tunnel", "ntun", "proto", "v6",
                                          "addr0", "addr1", "addr2", "addr3") + _READ],
                  dtype=np.int64)
BUILT_COMPACT = core_function("compact")
compact = BUILT_COMPACT          # tests set None: np.take


def compiled_columns(rows, batch, idx, in_place=False):
    """``fast.gather_columns`` of compiled rows, from what the compiled pass
    read (one gather of its output), or None for the numpy kernel's rows.
    ``in_place``: the caller reads nothing of ``rows`` afterwards, so the
    columns' rows of the output are moved to their fronts in place
    (_core.c ``compact``: half the memory traffic of a gather into new
    arrays) and the columns are views of them."""
    out = getattr(rows, "out", None)
    if out is None:
        return None
    if in_place and compact is not None:
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        compact(out.reshape(-1), out.shape[1], _TAKEN, idx)
        sel = out[:, :len(idx)]
    else:
        sel = np.take(out, idx, axis=1)
    at = _AT
    payload, carrier = sel[at["payload"]], sel[at["carrier"]]
    # the carrier's family, IPv4 unless IPv6: in place (``sel`` is ours),
    # by arithmetic on the comparison (a masked copy is four times slower)
    np.multiply(carrier == R.FAM_IPV6, R.FAM_IPV6 - R.FAM_IPV4, out=carrier)
    carrier += R.FAM_IPV4
    c = {"fam": payload, "tunnel": sel[at["tunnel"]],
         "ts": np.take(batch.ts, idx).astype(np.float64, copy=False),
         "proto": sel[at["proto"]], "has6": sel[at["v6"]] >= 0,
         "v6s_hi": sel[at["addr0"]].view(np.uint64), "v6s_lo": sel[at["addr1"]].view(np.uint64),
         "v6d_hi": sel[at["addr2"]].view(np.uint64), "v6d_lo": sel[at["addr3"]].view(np.uint64),
         "wire": np.take(batch.wirelens, idx).astype(np.int64, copy=False),
         "carrier": carrier,
         "ntun": sel[at["ntun"]]}
    for name in _READ:
        c[name] = sel[at[name]]
    return c
