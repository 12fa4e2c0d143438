"""Simulated nodes for the node tests: firmware/main.py in the MicroPython Unix port on the sim
board (boards/sim.json), one process per boot, each with its own folder and config.json.

The process is the board: stdin takes the simulated hardware's commands (`pin 15 1`), exit code 77
is deep sleep (after printing `deepsleep <ms>`), 78 a reset, and rtc.bin next to the config is its
RTC memory. A test "wakes" a sleeping node by starting it again in the same folder.

The fixtures here are imported by the test modules that use them (`from sim_node import ...`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import pytest

from broker import Broker
from conftest import CLIENTS
from node_observer import Observer, on
from runtime import LIB, REPO, micropython_executable
from virtual_board import VirtualBoard

MAIN = REPO / "firmware" / "main.py"
ROMFS_LAUNCH = REPO / "bench" / "harness" / "romfs.py"  # mounts an image, then runs main.py
EXIT_DEEPSLEEP = 77  # lib/mqnode/hardware_sim.py
EXIT_RESET = 78
STOP_TIMEOUT_S = 5.0
# Fast enough that a test sees several periods in a few seconds; keepalive small so the broker
# notices a silent node quickly (both are whole seconds in the config schema).
TELEMETRY_S = 1
KEEPALIVE_S = 2


def node_config(node_id: str, host: str, port: int, **extra: Any) -> Dict[str, Any]:
    config: Dict[str, Any] = {"node_id": node_id, "board": "sim", "broker": {"host": host, "port": port},
                              "telemetry_s": TELEMETRY_S, "keepalive_s": KEEPALIVE_S}
    config.update(extra)
    return config


def firmware_with_board(folder: Path, name: str, board: str) -> Path:
    """A copy of firmware/main.py beside a boards/ folder holding only boards/<name>.json (its text:
    `board`), for a node on a board file of the test's own; returns that main.py for start(main=)."""
    firmware = folder / "firmware"  # main.py reads its board files from ../boards
    firmware.mkdir(parents=True)
    shutil.copy(MAIN, firmware)
    (folder / "boards").mkdir()
    (folder / "boards" / (name + ".json")).write_text(board)
    return firmware / "main.py"


def node_on_virtual_board(root: Path, config: Dict[str, Any], **board: Any) -> VirtualBoard:
    """A virtual board (tests/virtual_board.py; `board`: its watchdog_ms, max_boots...) whose "/"
    holds the node as a board does: main.py, config.json, boards/sim.json and lib/ (as sources:
    the Unix port compiles them)."""
    root.mkdir(parents=True)
    shutil.copy(MAIN, root / "main.py")
    (root / "boards").mkdir()
    shutil.copy(REPO / "boards" / "sim.json", root / "boards" / "sim.json")
    shutil.copytree(LIB, root / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "config.json").write_text(json.dumps(config))
    return VirtualBoard(root, **board)


@dataclass
class Run:
    """One boot of the node: a process and the files its stdout and stderr went to."""
    process: subprocess.Popen
    stdout: Path
    stderr: Path
    started: float


class NodeProcess:
    def __init__(self, node_id: str, folder: Path, config: Union[Dict[str, Any], str, None]) -> None:
        self.node_id = node_id
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "config.json"
        self.prefix = "mqnode"
        if config is not None:
            self.write_config(config)
        self.runs: List[Run] = []
        self._files: List[IO[bytes]] = []

    def write_config(self, config: Union[Dict[str, Any], str]) -> None:
        """A dict is written as JSON; a string as it is (for broken files)."""
        if isinstance(config, dict):
            self.prefix = config.get("prefix", "mqnode")
            config = json.dumps(config)
        self.config_path.write_text(config)

    def topic(self, leaf: str) -> str:
        """`sensor/temperature/state` -> `mqnode/<node id>/sensor/temperature/state`."""
        return "%s/%s/%s" % (self.prefix, self.node_id, leaf)

    @property
    def rtc_file(self) -> Path:
        return self.folder / "rtc.bin"

    def start(self, heapsize: Optional[str] = None, lib: Path = LIB, main: Path = MAIN,
              romfs: Optional[Path] = None) -> Run:
        """Boot (or wake) the node: a new process of firmware/main.py on this folder's config.

        heapsize (e.g. "64k") fixes the GC heap like a board's; lib is where its modules come from
        (a compiled .mpy tree, as a board holds them: the Unix port cannot compile the sources in
        a small heap); main is the firmware's main.py, whose ../boards holds the board files.
        romfs, an image whose lib/ holds the modules (tools/romfs.py), replaces lib: they run in
        place from it, as from a board's flash (bench/harness/romfs.py)."""
        assert not self.running, "node %s is already running" % self.node_id
        n = len(self.runs)
        out, err = self.folder / ("run%d.stdout" % n), self.folder / ("run%d.stderr" % n)
        out_f, err_f = open(out, "wb"), open(err, "wb")
        self._files += [out_f, err_f]
        env = dict(os.environ, MICROPYPATH=".frozen" if romfs else "%s:.frozen" % lib)
        heap = ["-X", "heapsize=" + heapsize] if heapsize else []
        launch = [str(ROMFS_LAUNCH), str(romfs)] if romfs else []
        process = subprocess.Popen(
            [micropython_executable(), *heap, *launch, str(main), str(self.config_path)],
            stdin=subprocess.PIPE, stdout=out_f, stderr=err_f, env=env, cwd=self.folder,
        )
        run = Run(process, out, err, time.monotonic())
        self.runs.append(run)
        return run

    @property
    def run(self) -> Run:
        assert self.runs, "node %s was never started" % self.node_id
        return self.runs[-1]

    @property
    def running(self) -> bool:
        return bool(self.runs) and self.run.process.poll() is None

    def send(self, line: str) -> float:
        """A line for the simulated hardware; returns when it was written (time.monotonic())."""
        stdin = self.run.process.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()
        return time.monotonic()

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.run.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("node %s still running after %.1f s; its output:\n%s"
                                 % (self.node_id, timeout, self.stdout()))

    def signal(self, sig: int) -> float:
        self.run.process.send_signal(sig)
        return time.monotonic()

    def stdout(self) -> str:
        """What the current (or last) boot printed so far."""
        return self.run.stdout.read_text(errors="replace")

    def errors(self) -> str:
        return self.run.stderr.read_text(errors="replace")

    def stderr(self) -> str:
        """Every boot's output, for the failure report (conftest shows it under 'client N stderr')."""
        parts = []
        for n, run in enumerate(self.runs):
            parts.append("--- %s boot %d (exit %s)\n%s%s" % (
                self.node_id, n, run.process.poll(), run.stdout.read_text(errors="replace"),
                run.stderr.read_text(errors="replace")))
        return "\n".join(parts)

    def kill(self) -> None:
        """Teardown: end the process (even a stopped one) and close its files."""
        for run in self.runs:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGCONT)
                run.process.kill()
                run.process.wait(STOP_TIMEOUT_S)
            if run.process.stdin:
                run.process.stdin.close()
        for f in self._files:
            f.close()
        self._files = []


def _label(name: str) -> str:
    """A node id from the test name: readable in broker logs, unique per call."""
    short = re.sub(r"[^A-Za-z0-9_-]", "_", name)[5:25].strip("_")
    return "%s-%s" % (short, uuid.uuid4().hex[:6])


NodeFactory = Callable[..., NodeProcess]


@pytest.fixture
def make_node(broker: Broker, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeFactory]:
    """Factory: make_node(start=True, node_id=None, host=None, port=None, config=None, **settings).

    Writes <tmp>/<node id>/config.json for the session broker (or host/port), with a node id
    unique to this call, telemetry_s=1 and keepalive_s=2 unless `settings` say otherwise; `config`
    (a dict or raw text) replaces the file entirely. Every process is killed at teardown, and every
    boot's output goes into a failed test's report.
    """
    started = request.node.stash.setdefault(CLIENTS, [])

    def make(start: bool = True, node_id: Optional[str] = None, host: Optional[str] = None,
             port: Optional[int] = None, config: Union[Dict[str, Any], str, None] = None,
             **settings: Any) -> NodeProcess:
        node_id = node_id or _label(request.node.name)
        if config is None:
            config = node_config(node_id, host or broker.host, broker.port if port is None else port, **settings)
        node = NodeProcess(node_id, tmp_path / node_id, config)
        started.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in started:
        node.kill()


ObserverFactory = Callable[..., Observer]


@pytest.fixture
def observe(broker: Broker) -> Iterator[ObserverFactory]:
    """Factory: observe(filters, host=None, port=None) -> an Observer already subscribed
    (on the session broker unless told otherwise); closed at teardown."""
    observers: List[Observer] = []

    def make(filters: Sequence[str], host: Optional[str] = None, port: Optional[int] = None) -> Observer:
        o = Observer(host or broker.host, broker.port if port is None else port, filters)
        observers.append(o)
        return o

    yield make
    for o in observers:
        o.close()


BOOT_TIMEOUT_S = 10.0  # from process start to the end of the announcement; about 0.1 s when idle


def wait_stdout(node: NodeProcess, text: str, timeout_s: float, count: int = 1) -> bool:
    """True once the node's output holds `text` `count` times, False after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node.stdout().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def wait_announced(obs: Observer, node: NodeProcess, start: int = 0, timeout: float = BOOT_TIMEOUT_S) -> None:
    """Until the node has said it is online and finished its announcement (info comes last), so
    its command subscription is in place and its tasks are running: a warm node."""
    obs.wait(on(node.topic("status"), "online"), timeout, start)
    obs.wait(on(node.topic("info")), timeout, start)
