"""The JSON report: REPORT.md section 7, always valid UTF-8.

Indented for people, except where that costs: each time bin takes one line
(a report may hold 50,000 bins, and Python's indenting encoder -- the
pure-Python one: the C encoder does not indent -- builds a list of
millions of small strings for them, over 150 MB for a 20 MB report), and
the ``sketches`` and ``scorecard_state`` sections, which are for programs,
are one line each, as is each organisation's row of the scorecard. Those parts
are encoded by the C encoder and put in place of sentinels that cannot
occur elsewhere (they hold a random nonce).
"""

import json
import os


def _encode(value, indent=None) -> str:
    # ensure_ascii keeps the output valid ASCII (hence UTF-8) whatever a
    # path or a packet-derived string holds.
    return json.dumps(value, indent=indent, ensure_ascii=True, allow_nan=False)


def dumps(report: dict) -> str:
    nonce = os.urandom(16).hex()        # secrets.token_hex's source, without its imports
    parts = {}
    shell = dict(report)
    ts = report.get("timeseries")
    if isinstance(ts, dict) and ts.get("bins"):
        key = f"@bins-{nonce}@"
        parts[key] = "[\n" + ",\n".join("      " + _encode(b) for b in ts["bins"]) + "\n    ]"
        shell["timeseries"] = dict(ts, bins=key)
    for section, field in (("organisations", "rows"), ("adoption", "by_organisation"),
                           ("blocking", "by_organisation")):
        # the scorecard: one line per organisation (a map may hold 20,000)
        sec = report.get(section)
        if isinstance(sec, dict) and sec.get(field):
            key = f"@{section}-{nonce}@"
            parts[key] = "[\n" + ",\n".join("      " + _encode(r) for r in sec[field]) + "\n    ]"
            shell[section] = dict(sec, **{field: key})
    for section in ("sketches", "scorecard_state"):
        if section in report:
            key = f"@{section}-{nonce}@"
            parts[key] = _encode(report[section])
            shell[section] = key
    text = _encode(shell, 2)
    for key, value in parts.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"
