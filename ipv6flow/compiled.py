"""The compiled helpers of ``ipv6flow/_core.c``, for the modules that use
one beside its numpy form (the classifier: fast/core.py; the clients'
rules: analysis/population.py; HyperLogLog registers: analysis/sketch.py;
DNS message grouping: analysis/nat64.py).

``IPV6FLOW_PURE_PYTHON=1`` (as without a compiler) or
``IPV6FLOW_NUMPY_KERNEL=1`` at import switch them all off: the numpy forms,
which are their specifications, then run. No numpy here (the command
line's help pages import none).
"""

import os


def switched_off() -> bool:
    return bool(os.environ.get("IPV6FLOW_PURE_PYTHON") or os.environ.get("IPV6FLOW_NUMPY_KERNEL"))


def core_function(name: str):
    """``_core.<name>``, or None when it is switched off or not built (or
    built from other sources: tests/test_core.py fails CI then)."""
    if switched_off():
        return None
    try:
        from . import _core
    except ImportError:
        return None
    return getattr(_core, name, None)
