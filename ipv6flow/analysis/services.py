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

VERDICTS = ("ipv6-ready", "dns64-only", "ipv4-only", "no-answer")
ROUTES = ("ipv4", "ipv6_native", "nat64")


class ServiceIndex:
    """Addresses of the asked names, and the traffic counted to them."""

    def __init__(self, services):
        self.services = services
        self.v4 = {}        # 4 address bytes -> [(name, route)]
        self.v6 = {}        # 16 address bytes -> [(name, route)]
        self.traffic = {s["name"]: {r: [0, 0] for r in ROUTES} for s in services}
        for s in services:
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

    def merge_traffic(self, other: "ServiceIndex") -> None:
        for name, routes in other.traffic.items():
            for r, (p, b) in routes.items():
                t = self.traffic[name][r]
                t[0] += p
                t[1] += b

    def report(self, suffixes=()) -> dict:
        names = []
        for s in self.services:
            entry = dict(s)
            entry["traffic"] = {r: {"packets": p, "bytes": b}
                                for r, (p, b) in self.traffic[s["name"]].items()}
            names.append(entry)
        counts = {v: sum(1 for s in self.services if s["verdict"] == v) for v in VERDICTS}
        total = len(self.services)
        return {"domain_suffixes": list(suffixes),
                "names": names,
                "summary": {"names": total, **{v.replace("-", "_"): n for v, n in counts.items()},
                            "ipv6_ready_share": counts["ipv6-ready"] / total if total else None}}
