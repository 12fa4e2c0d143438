"""mqnode demo: a private mosquitto, three simulated nodes, and the monitor, in one command."""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional

from mqnode_tools.broker_link import BrokerError
from mqnode_tools.local_broker import LocalBroker
from mqnode_tools.paths import micropython
from mqnode_tools.simnodes import SimNode, start_nodes
from mqnode_tools.watch import Watcher, summary, watch

HELP = "Start mosquitto on a free local port, three simulated nodes, and the live monitor."
EXAMPLES = """examples:
  mqnode demo                 # until Ctrl-C
  mqnode demo --duration 10   # 10 s, then a summary (exit 0 if every node sent a reading)
"""


SIM_PIR_PIN = 15  # boards/sim.json: the motion sensor's pin
MOTION_EVERY_S = 3.0


def ticker(nodes: List[SimNode]) -> Callable[[], None]:
    """What the demo does at each refresh: restart a node that reset (as `mqnode sim` does), and
    now and then someone walks past a random node: its PIR pin goes high, then low again."""
    state = {"next": time.monotonic() + MOTION_EVERY_S, "node": None}

    def tick() -> None:
        for n in nodes:
            n.service()
        if time.monotonic() < state["next"]:
            return
        state["next"] = time.monotonic() + MOTION_EVERY_S
        if state["node"] is not None:
            state["node"].send("pin %d 0" % SIM_PIR_PIN)
            state["node"] = None
        else:
            state["node"] = random.choice(nodes)
            state["node"].send("pin %d 1" % SIM_PIR_PIN)

    return tick


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=3, help="how many simulated nodes (default %(default)s)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--telemetry", type=int, default=2, metavar="S", help="seconds between readings")
    p.add_argument("--json", action="store_true", help="JSON lines instead of the table")


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        print("mqnode demo: --nodes must be at least 1", file=sys.stderr)
        return 2
    try:
        micropython()  # missing: say so before starting anything
        broker = LocalBroker().start()
    except (FileNotFoundError, RuntimeError) as e:  # no MicroPython or mosquitto, or it would not start
        print("mqnode demo: %s" % e, file=sys.stderr)
        return 1
    print("mqnode demo: mosquitto on 127.0.0.1:%d; try:" % broker.port)
    print("  mosquitto_pub -h 127.0.0.1 -p %d -t mqnode/sim-1/switch/relay/set -m TOGGLE" % broker.port)
    nodes: List[SimNode] = []
    watcher: Optional[Watcher] = None
    with tempfile.TemporaryDirectory(prefix="mqnode-demo-") as tmp:
        try:  # from here on, whatever ends the demo stops the nodes and the broker
            nodes = start_nodes(args.nodes, Path(tmp), "127.0.0.1", broker.port, "mqnode", args.telemetry)
            watcher = Watcher("127.0.0.1", broker.port, "mqnode")
            watch(watcher, args.duration, args.json, ticker(nodes))
        except KeyboardInterrupt:
            if watcher is None:
                raise  # while the nodes were starting: mqnode's "interrupted", 130
        except BrokerError as e:
            print("mqnode demo: %s" % e, file=sys.stderr)
            return 1
        finally:
            if watcher is not None:
                watcher.stop()
            for n in nodes:
                n.stop()
            broker.stop()
    print(summary(watcher.fleet))
    seen = [n for n in watcher.fleet.nodes.values() if n.sensors]
    return 0 if len(seen) == args.nodes else 1
