"""`make bench`: mqnode against umqtt.simple, umqtt.robust and mqtt_as (and paho-mqtt on CPython),
side by side, in one run against a private mosquitto on 127.0.0.1.

Prints the tables and writes them, with the machine's description, to bench/results.md.
Exit status: 0 when the figures were produced (whether or not targets were met), 1 when an
mqnode measurement itself failed to run, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mqnode_tools import bench_build
from mqnode_tools.bench_anchors import DEFAULT_DIR, resolve
from mqnode_tools.bench_fleet import NODES_PER_PROCESS, PAYLOAD, Fleet, ramp
from mqnode_tools.bench_machine import machine_info
from mqnode_tools.bench_report import UNIX_ANCHORS, Report, floor_note, markdown, print_report
from mqnode_tools.bench_run import Client, Harness, Samples, measure_payloads, measure_reps
from mqnode_tools.local_broker import LocalBroker
from mqnode_tools.paths import REPO, micropython, mosquitto

HELP = "Benchmark mqnode against umqtt.simple, umqtt.robust, mqtt_as and paho-mqtt on a private mosquitto."
EXAMPLES = """examples:
  make bench ANCHORS=DIR                     # the same as: python -m mqnode_tools.bench --anchors DIR
  python -m mqnode_tools.bench               # anchors from build/bench/anchors, fetched with mip if missing
  python -m mqnode_tools.bench --quick --no-anchors   # the smoke run `make test` does (about 20 s)
"""
DEFAULT_OUTPUT = REPO / "bench" / "results.md"
DEFAULT_WORK = REPO / "build" / "bench"  # git ignores build/: compiled anchors never reach a commit
# Counts and time limits (seconds) per loop: each stops at whichever comes first.
FULL = dict(payload=32, warm=50, warm_s=0.3, q0_n=50000, q0_s=0.5, q1_n=20000, q1_s=1.0, pipe_n=50000, pipe_s=0.5,
            window=16, alloc_n=100, alloc_s=1.0, wake_n=20, wake_s=1.5)
QUICK = dict(payload=32, warm=5, warm_s=0.1, q0_n=200, q0_s=0.2, q1_n=50, q1_s=0.2, pipe_n=100, pipe_s=0.2,
             window=16, alloc_n=20, alloc_s=0.3, wake_n=3, wake_s=0.3)
FLEET_STEPS = [50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000]
PAYLOAD_SEARCHES = 3  # largest-payload searches per client, at most one per repetition
STARTED = time.monotonic()


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def sizes(text: str) -> List[int]:
    try:
        return [positive(n) for n in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError("expected sizes like 50,100,200, got %r" % text) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--anchors", type=Path, default=os.environ.get("ANCHORS") or None, metavar="DIR",
                   help="folder holding umqtt/simple.py, umqtt/robust.py, mqtt_as/__init__.py (env ANCHORS); "
                        "default: %s, filled with mip when empty" % DEFAULT_DIR.relative_to(REPO))
    p.add_argument("--no-fetch", action="store_true", help="do not run mip for missing anchors")
    p.add_argument("--no-anchors", action="store_true", help="measure mqnode and paho-mqtt only")
    p.add_argument("--quick", action="store_true", help="one repetition, tiny counts, a 20-node fleet: a smoke run")
    p.add_argument("--reps", type=positive, default=None, help="repetitions per figure (default 5; 1 with --quick)")
    p.add_argument("--no-fleet", action="store_true", help="skip the fleet figure")
    p.add_argument("--fleet-steps", type=sizes, default=None, metavar="N,N,...",
                   help="fleet sizes to try (default %s)" % ",".join(map(str, FLEET_STEPS)))
    p.add_argument("--fleet-seconds", type=positive, default=None, help="sending window per fleet step (default 5; 2 with --quick)")
    p.add_argument("--fleet-budget", type=float, default=None, metavar="S", help="fleet time limit (default 120; 30 with --quick)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown report (default bench/results.md)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="folder for compiled clients and raw samples (default build/bench)")


def raise_fd_limit() -> None:
    """The fleet needs a socket per node in mosquitto and in the node processes (they inherit it)."""
    import resource  # Unix only; imported here so `mqnode --help` loads anywhere

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


LOADS: List[float] = []  # the 1-minute load average at each log line: was the machine quiet?


def log(text: str) -> None:
    LOADS.append(os.getloadavg()[0])
    print("[%5.1f s] %s" % (time.monotonic() - STARTED, text), flush=True)


def set_up_clients(args: argparse.Namespace, work: Path, machine: Dict[str, str]
                   ) -> Tuple[Harness, List[Client], List[Client], Dict[str, str], Dict[str, str]]:
    """Compile the harness, mqnode and every anchor found; returns the harness, the Unix-port and
    CPython clients, their versions, and the anchors that are missing (with how to get them)."""
    compiled, stubs = bench_build.build_harness(work)
    src = bench_build.snapshot_mqnode(work)
    h = Harness(compiled, stubs, src, work / "cwd")
    tree = bench_build.build_mqnode(work, src)
    image = bench_build.romfs_image(tree)
    unix = [Client("mqnode", "micropython", tree, image=image),
            Client("mqnode.aio", "micropython", tree, is_async=True, image=image)]
    cpython = [Client("mqnode", "cpython"), Client("mqnode.aio", "cpython", is_async=True), Client("paho", "cpython"),
               Client("asyncio.floor", "cpython", is_async=True)]
    versions = {"mqnode": "lib/mqtt at %s" % machine["mqnode"], "paho-mqtt": machine["paho-mqtt"],
                "asyncio floor": "bench/harness/ad_asyncio_floor.py: not a client, the least a publisher does on asyncio"}
    missing: Dict[str, str] = {}
    if args.no_anchors:
        return h, unix, cpython, versions, missing
    folder = args.anchors.resolve() if args.anchors else None
    for name, anchor in resolve(UNIX_ANCHORS, folder, not args.no_fetch).items():
        if not anchor.ok:
            missing[name] = anchor.problem
            log("anchor %s is MISSING: %s" % (name, anchor.problem))
            continue
        versions[name] = "%s (from %s)" % (anchor.version, anchor.folder)
        log("anchor %s: %s" % (name, versions[name]))
        anchor_tree = bench_build.build_anchor(name, anchor.folder, work)
        unix.append(Client(name, "micropython", anchor_tree, anchor=True, stubs=name == "mqtt_as",
                           is_async=name == "mqtt_as", image=bench_build.romfs_image(anchor_tree)))
    return h, unix, cpython, versions, missing


def run_fleet(args: argparse.Namespace, h: Harness, node: Client, broker: LocalBroker) -> Tuple[Fleet, str]:
    steps = args.fleet_steps or ([20] if args.quick else FLEET_STEPS)
    seconds = args.fleet_seconds or (2 if args.quick else 5)
    budget = args.fleet_budget or (30 if args.quick else 120)
    note = ("a node is one mqnode.aio Client (its own TCP connection and MQTT session) in a MicroPython "
            "Unix-port process holding up to {:,} of them, sending one {}-byte QoS 1 message a second for {} s; "
            "latency is scheduled send time → PUBACK; delivered: the acknowledged messages one QoS 1 subscriber got, checked message by message; extra copies: duplicates QoS 1 allows; CPU is % of "
            "one core".format(NODES_PER_PROCESS, PAYLOAD, seconds))
    log("fleet: " + note)
    broker_pid = getattr(getattr(broker, "_process", None), "pid", None)  # LocalBroker keeps it private
    fleet = ramp(h, node, broker.port, broker_pid, steps, seconds, budget,
                 lambda s: log("  %5d nodes: p99 %.1f ms, %s" % (s.nodes, s.p99_ms, "held" if s.ok else s.problem)))
    return fleet, note + "; subscriber: " + fleet.subscriber


def run(args: argparse.Namespace) -> int:
    params = QUICK if args.quick else FULL
    reps = args.reps or (1 if args.quick else 5)
    raise_fd_limit()
    machine = machine_info(micropython(), bench_build.mpy_cross(), mosquitto())
    log("mqnode bench: compiling the clients with %s" % machine["mpy-cross"])
    work = args.work.resolve()
    h, unix, cpython, versions, missing = set_up_clients(args, work, machine)
    samples = Samples()
    fleet, fleet_note = None, ""
    broker = LocalBroker().start()
    try:
        log("mosquitto on 127.0.0.1:%d; %d repetition(s)" % (broker.port, reps))
        measure_reps(h, unix, cpython, broker.port, reps, params, samples, log)
        log("largest payloads under -X heapsize=64k")
        measure_payloads(h, unix, broker.port, 1024 if args.quick else 256, min(reps, PAYLOAD_SEARCHES), samples, log)
        if not args.no_fleet:
            fleet, fleet_note = run_fleet(args, h, unix[1], broker)
    finally:
        broker.stop()
    machine["load average at end"] = "%.2f %.2f %.2f" % os.getloadavg()
    report = Report(
        unix=samples.medians("unix"), cpython=samples.medians("cpython"),
        unix_clients=["mqnode", "mqnode.aio"] + ([] if args.no_anchors else UNIX_ANCHORS),
        missing=missing, machine=machine, versions=versions, fleet=fleet, fleet_note=fleet_note,
        spread=samples.values, failures=h.failures,
        settings="%d repetition(s)%s; the whole run took %.0f s." % (reps, ", --quick" if args.quick else "",
                                                                  time.monotonic() - STARTED),
    )
    note = floor_note(report)
    if note:
        report.notes.append(note)
    cores = os.cpu_count() or 1
    machine["load average, highest seen"] = "%.2f (1 min; this run itself adds about 1, the fleet more)" % max(LOADS)
    if max(LOADS) > cores:
        report.notes.append(
            "The 1-minute load average reached %.1f on %d cores during this run: other processes competed "
            "for the CPUs, so rates and the fleet figure are lower and noisier than on an idle machine (see the "
            "spread below)." % (max(LOADS), cores))
    for c in unix:
        if c.name in samples.modules and c.tree is not None:
            files = bench_build.loaded_size(samples.modules[c.name], c.tree)
            report.mpy_detail[c.name] = files
            report.unix.setdefault(c.name, {})["mpy"] = float(sum(files.values()))
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(report))
    (work / "results.json").write_text(json.dumps(samples.values, indent=1))
    log("written: %s (raw samples: %s)" % (args.output, work / "results.json"))
    return 1 if any(f.startswith("mqnode") for f in h.failures) else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mqnode_tools.bench", description=HELP, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
