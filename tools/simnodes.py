"""Simulated nodes as processes: firmware/main.py in the MicroPython Unix port on the sim board.

Each node gets a folder with its config.json (and its RTC memory file). A node that ends in
simulated deep sleep or reset (exit codes from lib/mqnode/hardware_sim.py) is started again,
after the sleep it announced, as a board would wake.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from mqnode_tools.paths import FIRMWARE, LIB, micropython

EXIT_DEEPSLEEP = 77
EXIT_RESET = 78


def _die_with_launcher() -> None:
    """Linux: the node is sent SIGTERM when its launcher dies, even by SIGKILL, so a killed
    `mqnode sim` leaves no hundreds of orphaned nodes behind (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            pass  # without prctl the launcher's own cleanup is all there is


class SimNode:
    def __init__(self, node_id: str, folder: Path, config: Dict[str, Any], heapsize: Optional[str] = None,
                 commands: bool = True) -> None:
        """commands=False: no stdin for send(); the simulated hardware then stops polling it (its
        20 ms poll is a quarter of an idle node's CPU, which counts with hundreds of nodes)."""
        self.node_id = node_id
        self.commands = commands
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "config.json"
        self.config_path.write_text(json.dumps(config))
        self.heapsize = heapsize
        self.process: Optional[subprocess.Popen] = None
        self.restarts = 0
        self._wake_at: Optional[float] = None
        self._log = open(folder / "node.log", "ab")

    def start(self) -> None:
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % LIB)
        heap = ["-X", "heapsize=" + self.heapsize] if self.heapsize else []
        self.process = subprocess.Popen(
            [micropython(), *heap, str(FIRMWARE / "main.py"), str(self.config_path)],
            stdin=subprocess.PIPE if self.commands else subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_launcher,
        )

    def service(self) -> None:
        """Restart a node that slept or reset; call it now and then."""
        if self.process is None or self.process.poll() is None:
            if self._wake_at is not None and time.monotonic() >= self._wake_at:
                self._wake_at = None
                self.start()
            return
        code = self.process.returncode
        self.process = None
        if code == EXIT_RESET:
            self.restarts += 1
            self.start()
        elif code == EXIT_DEEPSLEEP:
            self.restarts += 1
            self._wake_at = time.monotonic() + self._last_sleep_s()

    def _last_sleep_s(self) -> float:
        lines = (self.folder / "node.log").read_text(errors="replace").splitlines()
        for line in reversed(lines):
            if line.startswith("deepsleep "):
                return int(line.split()[1]) / 1000
        return 1.0

    def send(self, command: str) -> None:
        """A line for the simulated hardware, e.g. 'pin 15 1' (motion on the sim board)."""
        if self.process and self.process.stdin:
            self.process.stdin.write(command.encode() + b"\n")
            self.process.stdin.flush()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def alive(self) -> bool:
        """Running, or in a simulated deep sleep that service() will end."""
        return self.running or self._wake_at is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        self._log.close()


def stop_nodes(nodes: List[SimNode]) -> None:
    """Stop every node: signal them all first, then wait for each (one by one, 200 nodes take
    seconds, and the first ones' last wills fire long before the last ones')."""
    for n in nodes:
        if n.process is not None and n.process.poll() is None:
            n.process.terminate()
    for n in nodes:
        n.stop()


def node_config(node_id: str, host: str, port: int, prefix: str, telemetry_s: int, **extra: Any) -> Dict[str, Any]:
    config = {"node_id": node_id, "board": "sim", "prefix": prefix, "broker": {"host": host, "port": port},
              "telemetry_s": telemetry_s, "keepalive_s": 10}
    config.update(extra)
    return config


def start_nodes(count: int, base: Path, host: str, port: int, prefix: str, telemetry_s: int,
                commands: bool = True, battery_sleep_s: Optional[int] = None) -> List[SimNode]:
    """battery_sleep_s: battery nodes, each waking every that many seconds (a wake is a process
    that ends in simulated deep sleep; service() starts it again when the sleep is over)."""
    extra: Dict[str, Any] = {} if battery_sleep_s is None else {"battery": True, "sleep_s": battery_sleep_s}
    nodes: List[SimNode] = []
    try:
        for i in range(1, count + 1):
            node_id = "sim-%d" % i
            node = SimNode(node_id, base / node_id, node_config(node_id, host, port, prefix, telemetry_s, **extra),
                           commands=commands)
            node.start()
            nodes.append(node)
    except BaseException:  # Ctrl-C or SIGTERM halfway: no node process is left behind
        for node in nodes:
            node.stop()
        raise
    return nodes
