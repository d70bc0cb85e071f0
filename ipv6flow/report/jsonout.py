"""The JSON report: REPORT.md section 7, always valid UTF-8."""

import json


def dumps(report: dict) -> str:
    # ensure_ascii keeps the output valid ASCII (hence UTF-8) whatever a
    # path or a packet-derived string holds.
    return json.dumps(report, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
