"""Only the optional compiled helpers live here; everything else is in
pyproject.toml. ``optional=True``: where no C compiler is at hand the
install still succeeds and ipv6flow uses its pure-Python paths (the record
walk, the numpy classifier ``ipv6flow/fast/core.py``, and live capture's
ctypes loop). ``IPV6FLOW_NO_EXTENSIONS=1`` leaves them out on purpose (CI's
no-compiler install)."""

import os

from setuptools import Extension, setup

extensions = [
    Extension("ipv6flow._speedups", ["ipv6flow/_speedups.c"], optional=True),
    # the single pass over each batch's headers (docs/DECISIONS.md)
    Extension("ipv6flow._core", ["ipv6flow/_core.c"], depends=["ipv6flow/_buffers.h"],
              optional=True),
    # live capture: no libpcap header or library needed to build (see the source)
    Extension("ipv6flow._livecap", ["ipv6flow/_livecap.c"], optional=True),
    # the scorecard's per-batch part (--org-map; ipv6flow/analysis/scorecard.py)
    Extension("ipv6flow._orgmap", ["ipv6flow/_orgmap.c"], depends=["ipv6flow/_buffers.h"],
              optional=True),
    # plain pcap files mapped instead of copied, guarded against truncation
    # (ipv6flow/capture/source.py)
    Extension("ipv6flow._filemap", ["ipv6flow/_filemap.c"], optional=True),
]
if os.environ.get("IPV6FLOW_NO_EXTENSIONS", "").strip() not in ("", "0"):
    extensions = []

setup(ext_modules=extensions)
