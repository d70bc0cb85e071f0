"""The reference decoder: one frame at a time, pure functions on bytes.

``decode_frame`` walks a frame from its link layer inward, one step per
header, through a table of parsers (link.py, ip.py, encap.py). Each parser
returns the next step ``(token, offset, end, tunnel_kind)``; the engine
checks the inner header before counting an encapsulation, and bounds the
work per frame (layers, tunnel depth, chain length).

Every protocol number, port and header layout both decoders use is
declared once in ``registry.py``; ``frame.FrameKey`` is what the report
counts of a frame, ``columns.py`` what the analyses read of it.
"""

from .addresses import address_class, in_prefixes, parse_prefix
from .registry import IPV6, TUNNEL_KINDS, is_6to4, is_isatap_iid
from .frame import DecodeOptions, Frame
from . import encap, ip, link

__all__ = ["DecodeOptions", "Frame", "decode_frame", "address_class", "parse_prefix",
           "TUNNEL_KINDS"]

_PARSERS = {**link.PARSERS, **ip.PARSERS, **encap.PARSERS}
_DEFAULT = DecodeOptions()


def _word(b, start, width):
    return int.from_bytes(b[start:start + width], "big")


def sixin4_kind(d, off, opts) -> str:
    """Which kind of IPv4 protocol-41 tunnel, from the inner IPv6 addresses
    (REPORT.md section 2; tried in the table's order)."""
    src = d[off + IPV6.SRC:off + IPV6.SRC + IPV6.ADDR_LEN]
    dst = d[off + IPV6.DST:off + IPV6.DST + IPV6.ADDR_LEN]
    if is_6to4(_word(src, 0, 2)) or is_6to4(_word(dst, 0, 2)):
        return "6to4"
    if is_isatap_iid(_word(src, IPV6.LOW, 4)) or is_isatap_iid(_word(dst, IPV6.LOW, 4)):
        return "isatap"
    if opts.sixrd_prefixes and (in_prefixes(src, opts.sixrd_prefixes)
                                or in_prefixes(dst, opts.sixrd_prefixes)):
        return "6rd"
    return "6in4"


def decode_frame(linktype: int, data: bytes, wirelen: int | None = None,
                 opts: DecodeOptions = _DEFAULT) -> Frame:
    """Decode one captured frame of the given pcap LINKTYPE."""
    f = Frame()
    token = link.LINKTYPES.get(linktype)
    if token is None:
        f.fail("unsupported_linktype")
        return f
    off, end, steps = 0, len(data), 0
    while token is not None:
        steps += 1
        if steps > opts.max_layers:
            f.fail("depth_exceeded")
            break
        step = _PARSERS[token](f, data, off, end, opts)
        if step is None:
            break
        token, off, end, kind = step
        if kind is not None:
            if len(f.tunnels) >= opts.max_tunnel_depth:
                f.fail("depth_exceeded")
                break
            problem = ip.header_problem(token, data, off, end)
            if problem:
                f.fail(problem)
                break
            if kind == "6in4":
                kind = sixin4_kind(data, off, opts)
            f.tunnels.append(kind)
    return f
