"""The names report/html.py imports from here; every protocol number, port
and layout is declared in ``registry.py``, where new code imports them."""

from .registry import EXT_TYPES, TUNNEL_KINDS

__all__ = ["EXT_TYPES", "TUNNEL_KINDS"]
