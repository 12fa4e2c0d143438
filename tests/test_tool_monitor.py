"""`mqnode monitor --json` against simulated nodes: one JSON line per event, among them each
node's status and its readings."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List

from rich.console import Console

from broker import Broker
from mqnode_tools.broker_link import BrokerLink
from mqnode_tools.fleet import Fleet
from mqnode_tools.watch import table
from mqnode_tools.simnodes import SimNode, node_config

NODES = ("sim-1", "sim-2")
ONLINE_TIMEOUT_S = 15.0
MONITOR_S = 4
MONITOR_TIMEOUT_S = 30.0


def test_monitor_json_prints_status_and_readings(broker: Broker, tmp_path: Path) -> None:
    prefix = "monitor-" + uuid.uuid4().hex[:8]
    nodes = [SimNode(n, tmp_path / n, node_config(n, broker.host, broker.port, prefix, 1)) for n in NODES]
    link = BrokerLink(broker.host, broker.port, [prefix + "/+/status"])
    try:
        for node in nodes:
            node.start()
        for n in NODES:
            assert link.wait_for(lambda m, n=n: m.topic == "%s/%s/status" % (prefix, n) and m.text == "online",
                                 0, ONLINE_TIMEOUT_S), (tmp_path / n / "node.log").read_text()
        result = subprocess.run(
            [sys.executable, "-m", "mqnode_tools", "monitor", "--json", "--duration", str(MONITOR_S),
             "--broker", "%s:%d" % (broker.host, broker.port), "--prefix", prefix],
            capture_output=True, text=True, timeout=MONITOR_TIMEOUT_S)
    finally:
        link.close()
        for node in nodes:
            node.stop()
    assert result.returncode == 0, result.stderr
    events: Dict[str, List[dict]] = {}
    for line in result.stdout.splitlines():
        event = json.loads(line)  # every line is one JSON object
        assert set(event) == {"time", "node", "what", "value"}
        events.setdefault(event["node"], []).append(event)
    assert sorted(events) == sorted(NODES)
    for n in NODES:
        whats = [(e["what"], e["value"]) for e in events[n]]
        assert ("status", "online") in whats, whats
        readings = [float(v) for w, v in whats if w == "sensor/temperature"]
        assert len(readings) >= MONITOR_S - 1, whats  # one a second, the retained one first
        assert all(15.0 < r < 30.0 for r in readings)


def test_fleet_shows_a_failed_sensor_reading_without_plotting_it() -> None:
    fleet = Fleet("mq")
    for i, text in enumerate([b"21.50", b"None", b"22.00"]):
        fleet.update("mq/n1/sensor/temperature/state", text, float(i))
    fleet.update("mq/n1/binary_sensor/motion/state", b"ON", 3.0)
    node = fleet.nodes["n1"]
    assert node.sensors["temperature"].value == "22.00"
    assert list(node.sensors["temperature"].history) == [21.5, 22.0]  # None shown, not a 0 in the trend
    assert list(node.binaries["motion"].history) == [1.0]


def test_the_table_takes_whatever_is_published_under_the_prefix() -> None:
    """Any client may publish under the prefix: markup-like text, info that is no JSON object and
    readings that are no finite number are shown as text (they crashed the monitor: MarkupError,
    AttributeError, and a ValueError in the sparkline)."""
    fleet = Fleet("mq")
    fleet.update("mq/n1/status", b"offline [/]", 0.0)
    fleet.update("mq/n1/info", b"null", 0.0)
    for i, text in enumerate([b"21.5", b"nan", b"inf", b"22.0"]):
        fleet.update("mq/n1/sensor/t/state", text, float(i))
    fleet.update("mq/n1/switch/[bold]x/state", b"[/]", 0.0)
    fleet.update("mq/n1/sensor/far/state", b"1e308", 0.0)  # finite, and a whole float range apart
    fleet.update("mq/n1/sensor/far/state", b"-1e308", 1.0)
    console = Console(file=io.StringIO(), width=200)
    console.print(table(fleet, 10.0))
    shown = console.file.getvalue()
    assert "offline [/]" in shown and "[bold]x [/]" in shown
    assert list(fleet.nodes["n1"].sensors["t"].history) == [21.5, 22.0]
    assert fleet.nodes["n1"].info == {"error": "unreadable info"}
