"""`mqnode sim --nodes 200` against mosquitto: all 200 simulated nodes (one Unix-port process
each) connect, stay connected for HOLD_S seconds, and every node's readings reach the monitor's
Watcher during that time.

Measured on 2 cores: the 200 processes take ~1.3 GB, all are online ~10 s after the start (the
launcher starts them one by one), the load average stays below 2 while they idle, and each
publishes on schedule (14 readings per node in 30 s at --telemetry 2). The test holds them for
10 s and takes ~20 s.
Until the sim board's motion flag stopped keeping the Unix port's poll() in a 1 ms loop
(hardware_sim.irq_flag), each idle node took 1% of a core: load 30-50, and on CI one run in a
few saw 187 of 200 nodes online after 50 s.
"""
from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, Set

import pytest

from mqnode_tools.watch import Watcher
from private_mosquitto import PrivateMosquitto

NODES = 200
HOLD_S = 10.0  # five telemetry periods: every node reports several times
TELEMETRY_S = "2"
ALL_ONLINE_TIMEOUT_S = 50.0  # the start, with 2 cores shared by 200 processes
DRAIN_S = 0.25
STOP_TIMEOUT_S = 30.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A broker of this test's own: 200 nodes leave thousands of retained messages (discovery,
    states) that would reach every later '#' subscriber on the shared one."""
    with PrivateMosquitto(tmp_path) as b:
        yield b


@pytest.mark.slow
def test_sim_holds_200_nodes_connected_with_every_node_reporting(own_broker: PrivateMosquitto) -> None:
    broker = own_broker
    prefix = "fleet-" + uuid.uuid4().hex[:8]
    watcher = Watcher(broker.host, broker.port, prefix)
    sim = subprocess.Popen(
        [sys.executable, "-m", "mqnode_tools", "sim", "--nodes", str(NODES), "--telemetry", TELEMETRY_S,
         "--duration", str(ALL_ONLINE_TIMEOUT_S + HOLD_S + 10), "--prefix", prefix,
         "--broker", "%s:%d" % (broker.host, broker.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    online: Set[str] = set()
    offline = []  # (node, seconds into the hold) for any status other than online
    reported: Set[str] = set()  # nodes with a reading during the hold
    hold_from = None
    try:
        started = time.monotonic()
        while True:  # at most ALL_ONLINE_TIMEOUT_S + HOLD_S
            now = time.monotonic()
            if hold_from is None and now > started + ALL_ONLINE_TIMEOUT_S or hold_from is not None and now > hold_from + HOLD_S:
                break
            if sim.poll() is not None:
                break  # ended early: its summary says why
            lines = io.StringIO()
            watcher.drain(lines)
            for event in (json.loads(line) for line in lines.getvalue().splitlines()):
                if event["what"] == "status":
                    if event["value"] == "online":
                        online.add(event["node"])
                    elif hold_from is not None:
                        offline.append((event["node"], round(time.monotonic() - hold_from, 1)))
                elif hold_from is not None and event["what"].startswith("sensor/"):
                    reported.add(event["node"])
            if hold_from is None and len(online) == NODES:
                hold_from = time.monotonic()
                print("all %d nodes online %.1f s after the start" % (NODES, hold_from - started))
            time.sleep(DRAIN_S)
    finally:
        watcher.stop()
        if sim.poll() is None:
            sim.send_signal(signal.SIGINT)  # the sim stops its nodes and prints its summary
        try:
            out, err = sim.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            sim.kill()
            out, err = sim.communicate()
    summary = "the sim said: " + (out + err)[-2000:]
    assert hold_from is not None, "only %d of %d nodes came online in %.0f s; %s" % (
        len(online), NODES, ALL_ONLINE_TIMEOUT_S, summary)
    assert offline == [], summary
    missing = sorted(n for n in watcher.fleet.nodes if n not in reported)
    assert len(reported) == NODES, "no readings during the hold from %s; %s" % (missing[:10], summary)
    assert "mqnode sim: %d nodes, %d alive at the end (running, or asleep until their next wake), 0 restarts" % (
        NODES, NODES) in out, summary


BATTERY_NODES = 2
BATTERY_SLEEP_S = 1
BATTERY_RUN_S = 6.0


def test_sim_battery_nodes_wake_publish_and_sleep_again(own_broker: PrivateMosquitto) -> None:
    """`--battery S`: each node is one wake per process, ending in simulated deep sleep, and sim
    starts it again when the sleep is over, as the board's wake would: readings arrive wake after
    wake, every restart is counted, and the nodes are alive (asleep or awake) at the end."""
    broker = own_broker
    prefix = "bat-" + uuid.uuid4().hex[:8]
    watcher = Watcher(broker.host, broker.port, prefix)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mqnode_tools", "sim", "--nodes", str(BATTERY_NODES),
             "--battery", str(BATTERY_SLEEP_S), "--duration", str(BATTERY_RUN_S), "--prefix", prefix,
             "--broker", "%s:%d" % (broker.host, broker.port)],
            capture_output=True, text=True, timeout=BATTERY_RUN_S + STOP_TIMEOUT_S)
        time.sleep(DRAIN_S)
        lines = io.StringIO()
        watcher.drain(lines)
    finally:
        watcher.stop()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    summary = re.search(r"mqnode sim: 2 nodes, 2 alive at the end \(running, or asleep until their next wake\), "
                        r"(\d+) restarts", out)
    assert summary, out
    readings: Dict[str, int] = {}
    for event in (json.loads(line) for line in lines.getvalue().splitlines()):
        if event["what"] == "sensor/temperature":
            readings[event["node"]] = readings.get(event["node"], 0) + 1
    assert sorted(readings) == ["sim-1", "sim-2"], readings
    assert all(n >= 2 for n in readings.values()), readings  # at least two wakes each
    assert int(summary.group(1)) >= sum(readings.values()) - BATTERY_NODES, out  # a restart per later wake


def test_nodes_started_before_an_interrupt_are_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or SIGTERM) while sim or demo starts its nodes: the ones already running stop with
    it, rather than running on with nothing to stop them."""
    from mqnode_tools import simnodes

    started = []
    real_start = simnodes.SimNode.start

    def start(node: simnodes.SimNode) -> None:
        if len(started) == 2:
            raise KeyboardInterrupt
        real_start(node)
        started.append(node.process)

    monkeypatch.setattr(simnodes.SimNode, "start", start)
    with pytest.raises(KeyboardInterrupt):
        simnodes.start_nodes(3, tmp_path, "127.0.0.1", 1, "interrupted", 60)
    assert [p.poll() is not None for p in started] == [True, True]  # both ended
