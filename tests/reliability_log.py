"""Outcomes of the reliability scenarios (hostile broker, faults, soak), one JSON line per case.

Set MQNODE_RELIABILITY_LOG=/path/file.jsonl to collect them across a run; unset, record() does
nothing. Each line is {"case": ..., "runtime": ..., <count>: <value>, ...}; lines are appended
with one write each, so concurrent tests do not interleave them.
"""
from __future__ import annotations

import json
import os
from typing import Any

ENV = "MQNODE_RELIABILITY_LOG"


def record(case: str, runtime: str, **counts: Any) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"case": case, "runtime": runtime, **counts}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
