"""Summary -> text and JSON. No decoding here."""


def found_by_dns_alone(suspect: dict) -> bool:
    """A NAT64 suspect of the report (``nat64.suspects``) whose only
    evidence is DNS64-looking answers and traffic: a service that numbers
    its IPv6 addresses after its IPv4 ones (Cloudflare does) gives the same
    answers, so the text report and the page add a caution."""
    return suspect["kind"] == "network-specific" and set(suspect["evidence"]) == {"dns64",
                                                                                "traffic"}
