"""The JSON report: REPORT.md section 7, always valid UTF-8.

Indented for people, except where that costs: each time bin takes one line
(a report may hold 50,000 bins, and Python's indenting encoder -- the
pure-Python one: the C encoder does not indent -- builds a list of
millions of small strings for them, over 150 MB for a 20 MB report), and
the ``sketches`` section, which is for programs, is one line. Those parts
are encoded by the C encoder and put in place of sentinels that cannot
occur elsewhere (they hold a random nonce).
"""

import json
import secrets


def _encode(value, indent=None) -> str:
    # ensure_ascii keeps the output valid ASCII (hence UTF-8) whatever a
    # path or a packet-derived string holds.
    return json.dumps(value, indent=indent, ensure_ascii=True, allow_nan=False)


def dumps(report: dict) -> str:
    nonce = secrets.token_hex(16)
    parts = {}
    shell = dict(report)
    ts = report.get("timeseries")
    if isinstance(ts, dict) and ts.get("bins"):
        key = f"@bins-{nonce}@"
        parts[key] = "[\n" + ",\n".join("      " + _encode(b) for b in ts["bins"]) + "\n    ]"
        shell["timeseries"] = dict(ts, bins=key)
    if "sketches" in report:
        key = f"@sketches-{nonce}@"
        parts[key] = _encode(report["sketches"])
        shell["sketches"] = key
    text = _encode(shell, 2)
    for key, value in parts.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"
