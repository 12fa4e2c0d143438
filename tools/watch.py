"""Watching the nodes: a paho-mqtt subscription feeding a Fleet, drawn as a rich table or printed
as JSON lines. Used by `mqnode monitor` and `mqnode demo`."""
from __future__ import annotations

import json
import queue
import sys
import time
from typing import Callable, Optional, TextIO, Tuple

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from mqnode_tools.broker_link import CONNECT_TIMEOUT_S, connected_client
from mqnode_tools.fleet import Fleet, sparkline
from mqnode_tools.settings import Login

REFRESH_S = 0.25


class Watcher:
    """Subscribes to <prefix>/# and keeps a Fleet up to date."""

    def __init__(self, host: str, port: int, prefix: str, login: Login = Login(),
                 timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connected and subscribing, or BrokerError."""
        self.fleet = Fleet(prefix)
        self.events: "queue.Queue[Tuple[str, bytes, float]]" = queue.Queue()
        self.client = connected_client(
            host, port, login, timeout_s, lambda c, u, m: self.events.put((m.topic, m.payload, time.time())),
            on_connected=lambda c: c.subscribe(prefix + "/#", qos=1))

    def drain(self, out: Optional[TextIO] = None) -> int:
        """Apply what arrived; with `out`, also write one JSON line per node event."""
        n = 0
        while True:
            try:
                topic, payload, at = self.events.get_nowait()
            except queue.Empty:
                return n
            event = self.fleet.update(topic, payload, at)
            n += 1
            if event and out is not None:
                node, what, value = event
                out.write(json.dumps({"time": round(at, 3), "node": node, "what": what, "value": value}) + "\n")
                out.flush()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def table(fleet: Fleet, now: float) -> Table:
    t = Table(title="mqnode fleet (%d nodes)" % len(fleet.nodes), expand=False)
    for col in ("node", "status", "readings", "trend", "motion", "switches", "free mem"):
        t.add_column(col)
    for node_id in sorted(fleet.nodes):
        n = fleet.nodes[node_id]
        readings = "\n".join("%s %s (%ds)" % (k, r.value, now - r.at) for k, r in sorted(n.sensors.items()))
        trends = "\n".join(sparkline(r.history) for _, r in sorted(n.sensors.items()))
        motion = "\n".join("%s %s" % (k, r.value) for k, r in sorted(n.binaries.items()))
        switches = "\n".join("%s %s" % kv for kv in sorted(n.switches.items()))
        status = "[green]online[/]" if n.status == "online" else "[red]%s[/]" % escape(n.status)
        # Whatever any client publishes under the prefix lands here: text, never markup.
        t.add_row(escape(node_id), status, escape(readings), trends, escape(motion), escape(switches),
                  escape(str(n.info.get("free_mem", ""))))
    return t


def watch(watcher: Watcher, duration_s: Optional[float], as_json: bool,
          on_tick: Optional[Callable[[], None]] = None) -> None:
    """Until Ctrl-C, or for duration_s seconds; on_tick runs at every refresh (the demo's motion)."""
    end = None if duration_s is None else time.monotonic() + duration_s
    if as_json:
        while end is None or time.monotonic() < end:
            watcher.drain(sys.stdout)
            if on_tick:
                on_tick()
            time.sleep(REFRESH_S / 5)
        watcher.drain(sys.stdout)
        return
    with Live(table(watcher.fleet, time.time()), refresh_per_second=4, console=Console()) as live:
        while end is None or time.monotonic() < end:
            watcher.drain()
            if on_tick:
                on_tick()
            live.update(table(watcher.fleet, time.time()))
            time.sleep(REFRESH_S)
    print()


def summary(fleet: Fleet) -> str:
    lines = []
    for node_id in sorted(fleet.nodes):
        n = fleet.nodes[node_id]
        readings = sum(len(r.history) for r in n.sensors.values())
        lines.append("%s: %s, %d messages, %d readings" % (node_id, n.status, n.messages, readings))
    return "\n".join(lines) or "no nodes seen"
