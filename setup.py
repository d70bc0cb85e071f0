"""Only the optional compiled helpers live here; everything else is in
pyproject.toml. ``optional=True``: where no C compiler is at hand the
install still succeeds and ipv6flow uses its pure-Python record walk and
its numpy classifier (``ipv6flow/fast/core.py``)."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("ipv6flow._speedups", ["ipv6flow/_speedups.c"], optional=True),
    Extension("ipv6flow._core", ["ipv6flow/_core.c"], optional=True),
])
