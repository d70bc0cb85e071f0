"""The registry's names under their earlier module name (report/html.py
and code written before issue 13 import them from here): every protocol
number, port and layout is declared in ``registry.py``, where new code
imports them."""

from .registry import *  # noqa: F401,F403
