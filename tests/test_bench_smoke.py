"""`make bench` keeps working: one quick run of the whole harness, no anchors needed.

The benchmark is a tool, not a test of speed: nothing here asserts a timing or a target. It
asserts that every figure row is there and that mqnode's cells hold numbers, so a change in
lib/mqtt, the harness or the report that breaks a measurement shows up in `make test`.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from runtime import REPO

RUN_TIMEOUT_S = 300
UNIX_FIGURES = [
    ".mpy size of the modules it loads", "heap after import", "heap after import + connect", "of which asyncio",
    "heap after import + connect, code in flash (ROMFS)",
    "bytes allocated per QoS 0 publish", "bytes allocated per QoS 1 publish",
    "requested per QoS 0 publish, incl. freed at once", "requested per QoS 1 publish, incl. freed at once",
    "QoS 0 msg/s",
    "QoS 1 msg/s, one at a time", "QoS 1 msg/s, 16 in flight", "wake cycle (ms)",
    "largest payload sent, 64 KiB heap", "largest payload received, 64 KiB heap",
]
CPYTHON_FIGURES = ["QoS 1 msg/s, one at a time", "QoS 1 msg/s, 16 in flight", "wake cycle (ms)", "QoS 0 msg/s"]
# Figures a client cannot have: the blocking client neither imports asyncio nor pipelines.
NOT_APPLICABLE = {("mqnode", "of which asyncio"), ("mqnode", "QoS 1 msg/s, 16 in flight")}
NUMBER = re.compile(r"^\d[\d,]*(\.\d+)?$")


def section_tables(markdown: str) -> Dict[str, List[Dict[str, str]]]:
    """Each '## heading' -> the rows of the first markdown table under it, as header -> cell."""
    tables: Dict[str, List[Dict[str, str]]] = {}
    heading = ""
    header: List[str] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading, header = line[3:], []
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not header:
                header = cells
            elif not set(line) <= set("|-: "):
                tables.setdefault(heading, []).append(dict(zip(header, cells)))
    return tables


def by_figure(rows: List[Dict[str, str]]) -> Dict[str, Dict[str, str]]:
    return {next(iter(r.values())).strip(): r for r in rows}


def test_quick_bench_run_reports_every_figure_for_mqnode(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, "-m", "mqnode_tools.bench", "--quick", "--no-anchors", "--no-fetch",
         "--output", str(output), "--work", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "figure (Unix port)" in result.stdout  # the table went to the terminal too
    tables = section_tables(output.read_text())

    unix = by_figure(next(rows for heading, rows in tables.items() if heading.startswith("Unix port")))
    assert list(unix) == UNIX_FIGURES
    for figure, row in unix.items():
        for client in ("mqnode", "mqnode.aio"):
            if (client, figure) in NOT_APPLICABLE:
                assert row[client] == "—", (client, figure, row)
            else:
                assert NUMBER.match(row[client]), (client, figure, row)

    cpython = by_figure(next(rows for heading, rows in tables.items() if heading.startswith("CPython")))
    assert list(cpython) == CPYTHON_FIGURES
    for figure, row in cpython.items():
        for client in ("mqnode", "mqnode.aio", "paho-mqtt", "asyncio floor"):
            if (client, figure) in NOT_APPLICABLE:
                assert row[client] == "—", (client, figure, row)
            else:
                assert NUMBER.match(row[client]), (client, figure, row)
        blocking = "—" if ("mqnode", figure) in NOT_APPLICABLE else r"\d+\.\d\d×"
        assert re.match(r"^%s / \d+\.\d\d×$" % blocking, row["mqnode ÷ paho (blocking / aio)"]), row

    fleet = tables["Fleet"]
    assert len(fleet) == 1 and fleet[0]["nodes"] == "20"
    for column in ("connected", "delivered", "extra copies", "p50 ms", "p99 ms", "max ms"):
        assert NUMBER.match(fleet[0][column]), (column, fleet[0])
    # what the asyncio floor says about the CPython target (its verdict depends on the machine)
    assert re.search(r"The asyncio floor .* reached \d+\.\d\d× paho-mqtt's QoS 1 rate one at a time; mqnode.aio "
                     r"reached \d+% of it. (A client beat it, so it is no floor|The ≥ 3× target for the asyncio "
                     r"client is (within|beyond) what this publisher does)", output.read_text()), output.read_text()[-2000:]
