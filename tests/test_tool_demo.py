"""`mqnode demo`, the README's main command: its own mosquitto, simulated nodes and the monitor.
Run as a user does, for a few seconds, with the relay switched from "another terminal" by the
mosquitto_pub line the demo prints."""
from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import List

NODES = 2
DURATION_S = 8
START_TIMEOUT_S = 15.0  # until the demo prints its mosquitto_pub line and sim-1's relay state
EXIT_TIMEOUT_S = DURATION_S + 20.0


def read_lines(stream, into: List[str]) -> None:
    for line in stream:
        into.append(line)


def wait_for(lines: List[str], found, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(found(line) for line in list(lines)):
            return True
        time.sleep(0.05)
    return False


def events(lines: List[str]) -> List[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def relay_is(value: str):
    return lambda line: line.startswith("{") and json.loads(line)["node"] == "sim-1" and \
        json.loads(line)["what"] == "switch/relay" and json.loads(line)["value"] == value


def test_demo_runs_nodes_that_report_and_obey_its_mosquitto_pub_line() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "mqnode_tools", "demo", "--nodes", str(NODES), "--duration", str(DURATION_S),
         "--telemetry", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: List[str] = []
    reader = threading.Thread(target=read_lines, args=(demo.stdout, lines), daemon=True)
    reader.start()
    try:
        assert wait_for(lines, relay_is("OFF"), START_TIMEOUT_S), "".join(lines)
        (hint,) = [line for line in lines if "mosquitto_pub" in line]
        toggle = shlex.split(hint)
        assert toggle[:3] == ["mosquitto_pub", "-h", "127.0.0.1"], hint
        subprocess.run(toggle, check=True, timeout=10)  # "from another terminal"
        assert wait_for(lines, relay_is("ON"), 5.0), "".join(lines)
        code = demo.wait(EXIT_TIMEOUT_S)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # the demo stops its nodes and its mosquitto
            try:
                demo.wait(10)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    reader.join(5)
    out = "".join(lines)
    assert code == 0, out
    seen = events(lines)
    for node in ("sim-1", "sim-2"):
        assert {"what": "status", "value": "online"}.items() <= next(
            e for e in seen if e["node"] == node and e["what"] == "status").items(), out
        readings = [e for e in seen if e["node"] == node and e["what"] == "sensor/temperature"]
        assert len(readings) >= 3, out  # about one a second
        assert all(float(e["value"]) for e in readings), out
    assert any(e["what"] == "binary_sensor/motion" and e["value"] == "ON" for e in seen), out  # the walker
    summary = [line for line in lines if line.startswith("sim-")]
    assert [line.split(":")[0] for line in summary] == ["sim-1", "sim-2"], out
    assert all(" online, " in line for line in summary), out
