"""The fleet figure: how many simulated nodes one mosquitto and this machine hold at 1 msg/s each.

A node is one mqnode asyncio Client (its own TCP connection and MQTT session) sending one QoS 1
message a second; bench/harness/fleet_node.py runs many of them per MicroPython Unix-port
process. One QoS 1 subscriber on the same broker counts what is delivered. A step holds when
every node connected, every message was acknowledged and delivered, and the 99th percentile of
publish latency (scheduled send time to PUBACK) stayed under 100 ms. Steps grow until one fails
or the time budget would be overrun; each step reports the CPU its parts used, so the output
says where the time goes (broker, nodes, subscriber).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from mqnode_tools.bench_run import Client, Harness

# Nodes per MicroPython process: one process keeps 1,000 at 1 msg/s with p50 ~2 ms on an idle
# core here; 500 lets a step spread over the cores before the node side becomes the limit.
NODES_PER_PROCESS = 500
PAYLOAD = 32
P99_LIMIT_MS = 100.0
HEAP_PER_NODE = 16 * 1024  # measured ~3.4 KB per connected node; room for per-publish garbage
READY_S_PER_NODE = 0.02
DELIVERY_GRACE_S = 5.0
START_DELAY_MS = 300  # between GO and the first scheduled message: every process has read its GO


def cpu_seconds(pid: Optional[int]) -> float:
    """User + system CPU time of a process (this one if pid is None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)": field 3 onwards
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def subscriber_kind() -> str:
    return "mosquitto_sub" if shutil.which("mosquitto_sub") else "paho-mqtt (in the bench process)"


class Subscriber:
    """Collects which fleet messages arrive under a topic root, by the (node, k) each payload starts
    with (bench/harness/fleet_node.py), so delivery is checked message by message, and counts
    every copy. mosquitto_sub if installed (a C client: it costs the machine least), else
    paho-mqtt in this process. ready() proves the subscription is in place: it publishes an
    empty message to root/ready until one arrives, then collecting restarts from nothing."""

    def __init__(self, port: int, root: str) -> None:
        import paho.mqtt.client as paho

        self.root = root
        self._seen = 0  # every message, the ready ones too
        self.got: Set[Tuple[int, int]] = set()  # (node, k) of the fleet messages that arrived
        self.copies = 0  # fleet messages, each copy counted (QoS 1 may deliver one twice)
        self.pid: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._sub = None
        if shutil.which("mosquitto_sub"):
            self._proc = subprocess.Popen(
                ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", root + "/#", "-F", "%p"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.pid = self._proc.pid
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self._sub = c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
            c.on_connect = lambda *a: c.subscribe(root + "/#", qos=1)
            c.on_message = lambda client, userdata, m: self._take(m.payload.decode("ascii", "replace"))
            c.connect("127.0.0.1", port, 60)
            c.loop_start()
        self._pub = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self._pub.connect("127.0.0.1", port, 60)
        self._pub.loop_start()

    def _take(self, payload: str) -> None:
        self._seen += 1
        head = payload.split(" ", 2)
        if len(head) == 3 and head[0].isdigit() and head[1].isdigit():
            self.got.add((int(head[0]), int(head[1])))
            self.copies += 1

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._take(line.decode("ascii", "replace"))

    def ready(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._seen == 0 and time.monotonic() < deadline:
            self._pub.publish(self.root + "/ready", b"", qos=1)
            time.sleep(0.1)
        time.sleep(0.2)  # late copies of the ready messages arrive now, not during the step
        self.got = set()
        self.copies = 0
        return self._seen > 0

    def stop(self) -> None:
        self._pub.loop_stop()
        self._pub.disconnect()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._sub is not None:
            self._sub.loop_stop()
            self._sub.disconnect()


@dataclass
class Step:
    nodes: int
    processes: int
    connected: int = 0
    expected: int = 0
    acked: int = 0
    delivered: int = 0  # acknowledged messages that reached the subscriber, each counted once
    duplicates: int = 0  # extra copies the subscriber got (QoS 1 allows them)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    cpu: Dict[str, float] = field(default_factory=dict)  # % of one core during the sending window
    connect_s: float = 0.0
    wall_s: float = 0.0  # the sending window as measured, over which cpu is averaged
    problem: str = ""
    first_try: str = ""  # why the first attempt failed, when this is the second

    @property
    def ok(self) -> bool:
        return not self.problem


def percentile(sorted_values: List[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(math.ceil(q * len(sorted_values))) - 1)] / 1000


class NodeProcess:
    """One fleet_node.py process: COUNT nodes starting at FIRST, its stderr kept in a log file."""

    def __init__(self, harness: Harness, client: Client, port: int, root: str, first: int, count: int,
                 total: int) -> None:
        heap = "%dk" % ((8 * 1024 * 1024 + count * HEAP_PER_NODE) // 1024)
        cmd, env = harness.command(client, "fleet_node", [str(port), root, str(first), str(count), str(total),
                                                          str(PAYLOAD)], heap)
        self.log = harness.workdir / ("fleet-%s-%d.log" % (root.rsplit("/", 1)[-1], first))
        with open(self.log, "w") as err:
            self.p = subprocess.Popen(cmd, env=env, cwd=harness.workdir, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err, text=True)

    def wait_for(self, prefix: str, deadline: float) -> Optional[str]:
        """The first stdout line starting with prefix, or None at the deadline or at its end."""
        assert self.p.stdout is not None
        result: List[str] = []

        def read() -> None:
            for line in self.p.stdout:  # type: ignore[union-attr]
                if line.startswith(prefix):
                    result.append(line)
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(max(deadline - time.monotonic(), 0))
        return result[0] if result else None

    def why(self) -> str:
        """The last line the process wrote to stderr (a traceback's exception), if any."""
        self.stop()
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return (": " + lines[-1]) if lines else ""

    def go(self, seconds: int, delay_ms: int) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("GO %d %d\n" % (seconds, delay_ms))
        self.p.stdin.flush()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(5)


def run_step(harness: Harness, client: Client, port: int, broker_pid: Optional[int], nodes: int,
             seconds: int, tag: str) -> Step:
    step = Step(nodes, max(1, math.ceil(nodes / NODES_PER_PROCESS)), expected=nodes * seconds)
    root = "bench/fleet/" + tag
    sub = Subscriber(port, root)
    procs: List[NodeProcess] = []
    try:
        if not sub.ready():
            step.problem = "the counting subscriber never saw a message"
            return step
        t0 = time.monotonic()
        share = math.ceil(nodes / step.processes)
        procs = [NodeProcess(harness, client, port, root, first, min(share, nodes - first), nodes)
                 for first in range(0, nodes, share)]
        deadline = t0 + 10 + nodes * READY_S_PER_NODE
        for p in procs:
            line = p.wait_for("READY", deadline)
            if line is None:
                step.problem = "nodes did not finish connecting within %.0f s%s" % (deadline - t0, p.why())
                return step
            step.connected += int(line.split()[1])
        step.connect_s = time.monotonic() - t0
        if step.connected < nodes:
            step.problem = "%d of %d nodes connected" % (step.connected, nodes)
            return step
        results = send_window(step, procs, sub, broker_pid, seconds)
        if results is not None:
            judge(step, results, sub)
        return step
    finally:
        for p in procs:
            p.stop()
        sub.stop()


def send_window(step: Step, procs: List[NodeProcess], sub: Subscriber, broker_pid: Optional[int],
                seconds: int) -> Optional[List[dict]]:
    """Start every node's schedule at once; collect each process's report and the CPU used."""
    parts = {"broker": [broker_pid], "nodes": [p.p.pid for p in procs], "subscriber": [sub.pid]}
    cpu0 = {k: sum(cpu_seconds(pid) for pid in pids) for k, pids in parts.items()}
    w0 = time.monotonic()
    for p in procs:
        p.go(seconds, START_DELAY_MS)
    results = []
    done_by = time.monotonic() + seconds + 15
    for p in procs:
        line = p.wait_for("DONE", done_by)
        if line is None:
            step.problem = "a node process did not finish its %d s%s" % (seconds, p.why())
            return None
        results.append(json.loads(line[5:]))
    step.wall_s = time.monotonic() - w0
    step.cpu = {k: 100 * (sum(cpu_seconds(pid) for pid in pids) - cpu0[k]) / step.wall_s for k, pids in parts.items()}
    return results


def judge(step: Step, results: List[dict], sub: Subscriber) -> None:
    acked = {(int(n), k) for r in results for n, mask in r["acked_by_node"].items()
             for k in range(mask.bit_length()) if mask >> k & 1}
    step.acked = len(acked)
    grace = time.monotonic() + DELIVERY_GRACE_S
    while not acked <= sub.got and time.monotonic() < grace:
        time.sleep(0.05)
    missing = sorted(acked - sub.got)
    step.delivered = len(acked) - len(missing)
    step.duplicates = sub.copies - len(sub.got)
    lat = sorted(v for r in results for v in r["lat_us"])
    step.p50_ms, step.p99_ms = percentile(lat, 0.50), percentile(lat, 0.99)
    step.max_ms = lat[-1] / 1000 if lat else 0.0
    if step.acked < step.expected:
        step.problem = "%d of %d messages acknowledged" % (step.acked, step.expected)
    elif missing:
        step.problem = "%d of %d acknowledged messages delivered%s" % (
            step.delivered, step.acked, " (first missing: node %d, message %d)" % missing[0])
    elif step.p99_ms >= P99_LIMIT_MS:
        step.problem = "p99 latency %.0f ms >= %.0f ms" % (step.p99_ms, P99_LIMIT_MS)


@dataclass
class Fleet:
    steps: List[Step]
    subscriber: str
    stopped: str  # why the ramp ended

    @property
    def held(self) -> int:
        good = [s.nodes for s in self.steps if s.ok]
        return max(good) if good else 0


def ramp(harness: Harness, client: Client, port: int, broker_pid: Optional[int], sizes: List[int],
         seconds: int, budget_s: float, log: Callable[[Step], None]) -> Fleet:
    """Steps of growing size until one fails twice or the next would overrun budget_s.

    A failed step runs once more before it counts: on a machine shared with other work a single
    stall of another process can push 1 % of a short window past 100 ms. The table says when a
    step needed its second try, and why the first failed."""
    start = time.monotonic()
    steps: List[Step] = []
    per_node_s = [0.005]  # connect time per node, updated from each step

    def fits(n: int) -> bool:
        return time.monotonic() - start + n * per_node_s[0] + seconds + 3 + DELIVERY_GRACE_S / 2 <= budget_s

    def attempt(i: int, n: int, k: int) -> Step:
        step = run_step(harness, client, port, broker_pid, n, seconds, "s%d-%d-%d" % (i, k, os.getpid()))
        log(step)
        if step.connect_s:
            per_node_s[0] = max(per_node_s[0], step.connect_s / n)
        return step

    stopped = "every step held, up to the largest tried"
    for i, n in enumerate(sizes):
        if not fits(n):
            stopped = "time budget (%.0f s) reached before %d nodes" % (budget_s, n)
            break
        step = attempt(i, n, 1)
        if not step.ok and fits(n):
            first = step.problem
            step = attempt(i, n, 2)
            step.first_try = first
        steps.append(step)
        if not step.ok:
            stopped = "%d nodes failed%s: %s" % (n, " twice" if step.first_try else "", step.problem)
            break
    return Fleet(steps, subscriber_kind(), stopped)
