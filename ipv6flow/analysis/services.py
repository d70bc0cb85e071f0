"""Service readiness from DNS: per asked name, its answers, a verdict, and
the traffic seen to or from its addresses.

Verdicts: ``ipv6-ready`` (a native AAAA), ``dns64-only`` (only AAAA that a
DNS64 made up, i.e. inside a NAT64 prefix or embedding the name's own A),
``ipv4-only`` (A only), ``no-answer``.

Traffic is counted in a pass after the DNS is known (answers often come
after the first packets of a capture): a frame counts for a name when its
innermost source or destination is one of the name's addresses, under
``ipv4`` (an A address), ``ipv6_native`` (a native AAAA) or ``nat64`` (a
synthesized AAAA). An address shared by several names counts for each.
"""

import ipaddress

import numpy as np

from ..arrays import distinct_rows
from ..decode.addresses import address_bytes, ipv4_bytes
from ..decode.registry import FAM_IPV4, FAM_IPV6

VERDICTS = ("ipv6-ready", "dns64-only", "ipv4-only", "no-answer")
ROUTES = ("ipv4", "ipv6_native", "nat64")


class NameTraffic:
    """Addresses of the asked names (``Nat64State.name_answers`` entries),
    and the traffic counted to them."""

    def __init__(self, names):
        self.names = names
        self.v4 = {}        # 4 address bytes -> [(name, route)]
        self.v6 = {}        # 16 address bytes -> [(name, route)]
        self.traffic = {s["name"]: {r: [0, 0] for r in ROUTES} for s in names}
        for s in names:
            for text in s["a"]:
                self.v4.setdefault(ipaddress.IPv4Address(text).packed, []).append((s["name"], "ipv4"))
            for key, route in (("aaaa_native", "ipv6_native"), ("aaaa_synthesized", "nat64")):
                for text in s[key]:
                    self.v6.setdefault(ipaddress.IPv6Address(text).packed, []).append(
                        (s["name"], route))

    def add(self, table, src: bytes, dst: bytes, packets: int, nbytes: int) -> None:
        hits = set(table.get(bytes(src), ())) | set(table.get(bytes(dst), ()))
        for name, route in hits:
            t = self.traffic[name][route]
            t[0] += packets
            t[1] += nbytes

    def add_frame(self, f, wirelen: int) -> None:
        """A reference-decoded frame."""
        if f.payload == "ipv4" and self.v4 and f.src4 is not None:
            self.add(self.v4, f.src4, f.dst4, 1, wirelen)
        elif f.payload == "ipv6" and self.v6 and f.src6 is not None:
            self.add(self.v6, f.src6, f.dst6, 1, wirelen)

    def add_columns(self, c) -> None:
        """The traffic of rows with columns ``c`` (fam, v4s, v4d, has6,
        v6s_hi .. v6d_lo, wire), whichever decoder made them: rows are
        pre-selected on their addresses' first 4 bytes, then one Python
        call per distinct address pair."""
        fam, w = c["fam"], c["wire"]
        for family, table in ((FAM_IPV4, self.v4), (FAM_IPV6, self.v6)):
            if not table:
                continue
            if family == FAM_IPV4:
                sel = np.flatnonzero((fam == FAM_IPV4) & (c["v4s"] >= 0))
                sh, dh = c["v4s"][sel], c["v4d"][sel]
            else:
                sel = np.flatnonzero((fam == FAM_IPV6) & c["has6"])
                sh = (c["v6s_hi"][sel] >> np.uint64(32)).astype(np.int64)
                dh = (c["v6d_hi"][sel] >> np.uint64(32)).astype(np.int64)
            if not len(sel):
                continue
            heads = np.array(sorted({int.from_bytes(k[:4], "big") for k in table}),
                             dtype=np.int64)
            hit = np.isin(sh, heads) | np.isin(dh, heads)
            if not hit.any():
                continue
            rows = sel[hit]
            if family == FAM_IPV4:
                src, dst, width = ipv4_bytes(c["v4s"][rows]), ipv4_bytes(c["v4d"][rows]), 4
            else:
                src = address_bytes(c["v6s_hi"][rows], c["v6s_lo"][rows])
                dst = address_bytes(c["v6d_hi"][rows], c["v6d_lo"][rows])
                width = 16
            uniq, inv = distinct_rows(np.concatenate((src, dst), axis=1), return_inverse=True)
            packets = np.bincount(inv, minlength=len(uniq))
            nbytes = np.bincount(inv, weights=w[rows], minlength=len(uniq))
            for row, p, b in zip(uniq, packets.tolist(), nbytes.tolist()):
                raw = row.tobytes()
                self.add(table, raw[:width], raw[width:], p, int(b))

    def merge_traffic(self, other: "NameTraffic") -> None:
        for name, routes in other.traffic.items():
            for r, (p, b) in routes.items():
                t = self.traffic[name][r]
                t[0] += p
                t[1] += b

    def report(self, suffixes=()) -> dict:
        names = []
        for s in self.names:
            entry = dict(s)
            entry["traffic"] = {r: {"packets": p, "bytes": b}
                                for r, (p, b) in self.traffic[s["name"]].items()}
            names.append(entry)
        empty = {"domain_suffixes": list(suffixes), "names": []}
        return merge_reports(empty, {"domain_suffixes": [], "names": names})


def verdict(native, synthesized, a) -> str:
    return ("ipv6-ready" if native else "dns64-only" if synthesized
            else "ipv4-only" if a else "no-answer")


def merge_reports(x: dict | None, y: dict | None) -> dict | None:
    """Two ``services`` report objects as one: answers united per name,
    verdicts made again from them, traffic added."""
    if x is None or y is None:
        return x if y is None else y
    names = {}
    for part in (x, y):
        for s in part["names"]:
            e = names.get(s["name"])
            if e is None:
                names[s["name"]] = {**s, "traffic": {r: dict(v) for r, v in s["traffic"].items()}}
                continue
            for key in ("a", "aaaa_native", "aaaa_synthesized"):
                e[key] = sorted(set(e[key]) | set(s[key]),
                                key=lambda t: ipaddress.ip_address(t).packed)
            e["aaaa_native"] = [t for t in e["aaaa_native"] if t not in e["aaaa_synthesized"]]
            for r, v in s["traffic"].items():
                e["traffic"][r]["packets"] += v["packets"]
                e["traffic"][r]["bytes"] += v["bytes"]
    out = []
    for name in sorted(names):
        e = names[name]
        e["verdict"] = verdict(e["aaaa_native"], e["aaaa_synthesized"], e["a"])
        out.append(e)
    suffixes = list(dict.fromkeys(x["domain_suffixes"] + y["domain_suffixes"]))
    counts = {v: sum(1 for s in out if s["verdict"] == v) for v in VERDICTS}
    return {"domain_suffixes": suffixes, "names": out,
            "summary": {"names": len(out), **{v.replace("-", "_"): n for v, n in counts.items()},
                        "ipv6_ready_share": counts["ipv6-ready"] / len(out) if out else None}}
