"""Imports run one way (STYLE "the shape of the code", issue 13).

Every module of ipv6flow/ is parsed with ast (imports inside functions
count too) and mapped to its layer; an import of a higher layer fails:

    base      ipv6flow/__init__.py, errors, atomic, arrays, compiled (and the
              compiled helpers _core, _speedups)
    bottom    capture/, decode/, fast/ (the decoders: bytes in, columns out);
              options.py (a run's options and outcome: plain values, read by
              every layer above, importing only errors and decode)
    analysis  analysis/ (what the figures mean, on decoded columns)
    summary   summary.py, fold.py (the mergeable Summary; a batch into it)
    top       report/, engine/
    cli       cli.py

Within a layer any import is allowed (capture/sflow.py decodes sFlow
datagrams with decode/, engine/progress.py prints with report/text.py).
"""

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "ipv6flow"
LAYERS = {
    "__init__": 0, "errors": 0, "atomic": 0, "arrays": 0, "_speedups": 0, "_core": 0,
    "_filemap": 0,
    "compiled": 0,
    "capture": 1, "decode": 1, "fast": 1, "options": 1,
    "analysis": 2,
    "summary": 3, "fold": 3,
    "report": 4, "engine": 4,
    "cli": 5,
}
LAYER_NAMES = ("base", "bottom", "analysis", "summary", "top", "cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    """Layer of ``ipv6flow.x.y``: its first part below the package."""
    parts = module.split(".")
    if parts[0] != "ipv6flow":
        raise ValueError(module)
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYERS:
        raise AssertionError(f"{module}: no layer; add {top!r} to LAYERS in tests/test_imports.py")
    return LAYERS[top]


def imports_of(source: str, module: str, is_package: bool):
    """(line, imported module) of every ipv6flow import in ``source``."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ipv6flow":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[:len(base) - (node.level - 1)]
                target = ".".join(pkg + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ipv6flow":
                continue
            if node.module is None or target == "ipv6flow":
                # ``from . import x``: x may be a submodule of its own layer
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    sub_path = ROOT.joinpath(*sub.split("."))
                    exists = sub_path.with_suffix(".py").exists() or sub_path.is_dir()
                    yield node.lineno, sub if exists else target
            else:
                yield node.lineno, target


def upward_imports(files):
    """'file:line: module (layer) imports target (layer)' for each import
    of a higher layer."""
    bad = []
    for path in files:
        module = module_name(path)
        mine = layer_of(module)
        for line, target in imports_of(path.read_text(), module, path.name == "__init__.py"):
            theirs = layer_of(target)
            if theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[mine]}) "
                           f"imports {target} ({LAYER_NAMES[theirs]})")
    return bad


def test_no_upward_import():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40
    bad = upward_imports(files)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("where, line", [
    ("ipv6flow/fast/kernel.py", "from ..summary import TRANSPORT_KEYS"),
    ("ipv6flow/decode/ip.py", "from ..analysis import nat64"),
    ("ipv6flow/analysis/nat64.py", "    from ipv6flow.summary import Summary"),
    ("ipv6flow/capture/pcap.py", "from ..engine.live import PcapWriter"),
    ("ipv6flow/summary.py", "from .report import text"),
    ("ipv6flow/fast/__init__.py", "from .. import fold"),
])
def test_an_upward_import_fails(where, line):
    """The check finds an upward import put into a copy of a real module
    (at module level or inside a function)."""
    path = ROOT / where
    source = path.read_text()
    if line.startswith(" "):
        source += "\n\ndef _late():\n" + line + "\n"
    else:
        source = line + "\n" + source
    module = module_name(path)
    found = [(n, t) for n, t in imports_of(source, module, path.name == "__init__.py")
             if layer_of(t) > layer_of(module)]
    assert found, f"{line!r} in {where} was not seen as upward"
    assert not upward_imports([path])      # the real module is clean
