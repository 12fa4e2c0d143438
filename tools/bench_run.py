"""Running the harness (bench/harness/): one client, one job, one fresh process; and the loops
over clients and repetitions that collect every sample.

MicroPython runs get MICROPYPATH = the compiled harness, the client's compiled tree (and the
network/machine stand-ins for mqtt_as), and the port's frozen modules: nothing else, so no .py
source can slip in. CPython runs get PYTHONPATH = the harness sources and the run's copy of lib/mqtt. Every process
runs in an empty folder (a folder named like a package in the working directory would shadow it)
and under a timeout, after which it is killed and the job counts as failed.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mqnode_tools.bench_build import HARNESS
from mqnode_tools.paths import micropython

MARKER = "BENCH "
NAMES = "QSTR "  # measure.py's line before each qstr_info() line
QSTR_INFO = re.compile(r"qstr pool: n_pool=\d+, n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)")
SMALL_HEAP = "64k"
PAYLOAD_LIMIT = 64 * 1024  # the heap itself: no payload that large fits
HEAP_JOB_TIMEOUT_S = 30


@dataclass
class Client:
    name: str  # the adapter's name: mqnode, mqnode.aio, umqtt.simple, umqtt.robust, mqtt_as, paho
    runtime: str  # "micropython" or "cpython"
    tree: Optional[Path] = None  # compiled .mpy tree (MicroPython only)
    anchor: bool = False
    stubs: bool = False  # needs the network/machine stand-ins
    is_async: bool = False
    image: Optional[Path] = None  # tree as a ROMFS image, its modules under lib/ (MicroPython only)


@dataclass
class Harness:
    compiled: Path  # bench/harness compiled
    stubs: Path
    mqnode_src: Path  # the copy of lib/mqtt CPython runs use
    workdir: Path  # an empty folder every process starts in
    failures: List[str] = field(default_factory=list)

    def command(self, client: Client, module: str, args: List[str], heapsize: Optional[str] = None,
                romfs: bool = False):
        """romfs: the client's modules come from its image (measure.py mounts it), not its tree."""
        if client.runtime == "cpython":
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HARNESS), str(self.mqnode_src)]))
            return [sys.executable, str(HARNESS / (module + ".py")), *args], env
        tree_path = [] if romfs else [str(client.tree)]
        path = [str(self.compiled)] + tree_path + ([str(self.stubs)] if client.stubs else []) + [".frozen"]
        env = dict(os.environ, MICROPYPATH=":".join(path))
        heap = ["-X", "heapsize=" + heapsize] if heapsize else []
        return [micropython(), *heap, "-m", module, *args], env

    def run(self, client: Client, module: str, args: List[str], timeout: float,
            heapsize: Optional[str] = None, romfs: bool = False) -> subprocess.CompletedProcess:
        cmd, env = self.command(client, module, [client.name, *args], heapsize, romfs)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            return subprocess.run(cmd, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return subprocess.CompletedProcess(cmd, -9, out, "killed after %.0f s" % timeout)

    def job(self, client: Client, job: str, port: int, cid: str, params: Optional[Dict[str, Any]] = None,
            timeout: float = 60, romfs: bool = False) -> Optional[Dict[str, Any]]:
        """measure.py's JSON result, or None (the failure is kept in self.failures). romfs: the
        heap job with the client's code in its ROMFS image."""
        args = [job, str(port), cid] + ([json.dumps(params)] if params is not None else [])
        if romfs:
            assert client.image, "%s has no ROMFS image" % client.name
            args.append(str(client.image))
        result = self.run(client, "measure", args, timeout, romfs=romfs)
        for line in result.stdout.splitlines():
            if line.startswith(MARKER):
                found = json.loads(line[len(MARKER):])
                if job == "heap":
                    found["names"] = name_tables(result.stdout)
                    if "base" not in found["names"]:  # a build without qstr_info()
                        self.failures.append("%s heap: no name table figures (micropython.qstr_info)" % client.name)
                        return None
                return found
        tail = (result.stderr.strip().splitlines() or ["exit status %d" % result.returncode])[-1]
        self.failures.append("%s (%s) %s: %s" % (client.name, client.runtime, job, tail))
        return None

    def probe(self, client: Client, job: str, port: int, size: int, topic: str, timeout: float) -> bool:
        """Did `job` (send/recv) with a `size`-byte payload work under a 64 KiB heap?"""
        args = [job, str(port), "bench-probe", str(size), topic]
        result = self.run(client, "probe", args, timeout, heapsize=SMALL_HEAP)
        return result.returncode == 0 and "PROBE OK" in result.stdout


def name_tables(stdout: str) -> Dict[str, Tuple[int, int]]:
    """point -> (names in the table, bytes of its pool blocks), from measure.py's heap job."""
    found: Dict[str, Tuple[int, int]] = {}
    point = None
    for line in stdout.splitlines():
        if line.startswith(NAMES):
            point = line[len(NAMES):].strip()
            continue
        m = QSTR_INFO.match(line)
        if m and point:
            found[point] = (int(m[1]), int(m[3]) - int(m[2]))  # total minus the names' own bytes
            point = None
    return found


def charged(r: Dict[str, Any], point: str) -> Optional[int]:
    """The heap job's figure at `point` with the name table charged by the names the client added
    (an entry: a pointer, a 2-byte hash and a 1-byte length, as the Unix port builds it) instead
    of by the pool blocks it grew: a pool grows by doubling, so one import's new block depends on
    how full the harness left the last one (up to ~2 KB either way). The names' own bytes stay
    in the figure. None where the job had no such point. (Harness.job saw the base's table.)"""
    if r.get(point) is None:
        return None
    tables = r["names"]
    if point not in tables:
        raise ValueError("heap job printed no name table at %r: %s" % (point, sorted(tables)))
    names0, pools0 = tables["base"]
    names, pools = tables[point]
    return r[point] - (pools - pools0) + (names - names0) * (r["word"] + 3)


def largest_passing(ok: Callable[[int], bool], step: int, limit: int) -> int:
    """The largest multiple of step (up to limit) for which ok() holds, by binary search; 0 if
    not even `step` passes. Assumes that what fails at n fails above n."""
    if not ok(step):
        return 0
    lo, hi = 1, limit // step  # ok(lo * step); hi * step assumed too large (the whole heap)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid * step):
            lo = mid
        else:
            hi = mid
    return lo * step


def median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


class Samples:
    """Every measured value, kept per runtime, client and figure; the report takes medians."""

    def __init__(self) -> None:
        self.values: Dict[str, Dict[str, Dict[str, List[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        self.modules: Dict[str, Dict[str, str]] = {}

    def add(self, runtime: str, client: str, key: str, value: Any) -> None:
        if value is None:
            return
        target = self.values[runtime][client][key]
        if isinstance(value, list):
            target.extend(value)
        else:
            target.append(value)

    def medians(self, runtime: str) -> Dict[str, Dict[str, Optional[float]]]:
        return {c: {k: median(v) for k, v in figures.items()} for c, figures in self.values[runtime].items()}


def measure_reps(h: Harness, unix: List[Client], cpython: List[Client], port: int, reps: int,
                 params: Dict[str, Any], samples: Samples, log: Callable[[str], None]) -> None:
    """Every client's heap and run jobs, `reps` times, taking turns (a different client first
    each time), so slow drifts of the machine spread over all clients alike."""
    limits = params["q0_s"] + params["q1_s"] * 2 + params["pipe_s"] + params["alloc_s"] * 2 + params["warm_s"] * 2
    run_timeout = 30 + limits + params["wake_s"] + 5  # + connects (mqtt_as: 1 s each)
    for rep in range(reps):
        k = rep % len(unix)
        order = unix[k:] + unix[:k]  # a different client goes first each time
        log("repetition %d/%d: %s" % (rep + 1, reps, ", ".join(c.name for c in order)))
        for c in order:
            r = h.job(c, "heap", port, "bench-%s-h%d" % (c.name, rep), timeout=HEAP_JOB_TIMEOUT_S)
            if r:
                samples.add("unix", c.name, "heap_import", charged(r, "import"))
                samples.add("unix", c.name, "heap_connect", charged(r, "connect"))
                samples.add("unix", c.name, "heap_asyncio", charged(r, "asyncio"))
                samples.modules.setdefault(c.name, r["modules"])
            r = h.job(c, "heap", port, "bench-%s-f%d" % (c.name, rep), timeout=HEAP_JOB_TIMEOUT_S, romfs=True)
            if r:
                samples.add("unix", c.name, "heap_rom", charged(r, "connect"))
        for c in order:
            r = h.job(c, "run", port, "bench-%s-r%d" % (c.name, rep), params, timeout=run_timeout)
            for key, value in (r or {}).items():
                samples.add("unix", c.name, "wake" if key == "wake_ms" else key, value)
        k = rep % len(cpython)
        for c in cpython[k:] + cpython[:k]:
            r = h.job(c, "run", port, "bench-py-%s-r%d" % (c.name, rep), params, timeout=run_timeout)
            for key, value in (r or {}).items():
                samples.add("cpython", c.name, "wake" if key == "wake_ms" else key, value)


class Retainer:
    """Leaves a retained message of a given size for the receive probe (paho-mqtt, this process)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho

        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-retainer", protocol=paho.MQTTv311)
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()

    def put(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def measure_payloads(h: Harness, unix: List[Client], port: int, step: int, searches: int, samples: Samples,
                     log: Callable[[str], None]) -> None:
    """The largest payload each client sends and receives under a 64 KiB heap, to `step` bytes:
    `searches` binary searches per client, clients taking turns, for a median. One search can
    stop low: whether a size fits a fragmented heap varies from run to run (how the bytes
    arrive decides what the client allocates), and one failure halves the rest of the search."""
    retainer = Retainer(port)
    try:
        for c in [c for _ in range(searches) for c in unix]:
            timeout = 20 if c.stubs else 15
            sent = largest_passing(lambda n: h.probe(c, "send", port, n, "-", timeout), step, PAYLOAD_LIMIT)
            topic = "bench/rx/" + c.name

            def received(n: int) -> bool:
                retainer.put(topic, bytes(n))
                try:
                    return h.probe(c, "recv", port, n, topic, timeout)
                finally:
                    retainer.put(topic, b"")  # an empty retained message deletes it

            got = largest_passing(received, step, PAYLOAD_LIMIT)
            log("  %s: sends up to %d B, receives up to %d B (step %d B)" % (c.name, sent, got, step))
            samples.add("unix", c.name, "send_max", sent)
            samples.add("unix", c.name, "recv_max", got)
    finally:
        retainer.stop()
