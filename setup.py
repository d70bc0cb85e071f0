"""Only the optional compiled helper lives here; everything else is in
pyproject.toml. ``optional=True``: where no C compiler is at hand the
install still succeeds and ipv6flow uses its pure-Python record walk."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ipv6flow._speedups", ["ipv6flow/_speedups.c"], optional=True)])
