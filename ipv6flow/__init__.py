"""ipv6flow: how much of a capture is IPv6, how it travels, where it is translated."""

__version__ = "0.1.0"
