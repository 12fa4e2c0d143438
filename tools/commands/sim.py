"""mqnode sim: simulated nodes (the firmware in the MicroPython Unix port) against a broker."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mqnode_tools.paths import micropython
from mqnode_tools.settings import add_broker_argument, port_for
from mqnode_tools.simnodes import start_nodes, stop_nodes

HELP = "Run N simulated nodes (firmware/main.py on the sim board) against a broker."
EXAMPLES = """examples:
  mqnode sim --nodes 3 --broker 127.0.0.1:1883
  mqnode sim --nodes 50 --telemetry 5 --duration 60
  mqnode sim --nodes 10 --battery 30      # battery nodes: a wake every 30 s, deep sleep between
"""
SERVICE_S = 0.1


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_broker_argument(p)
    p.add_argument("--nodes", type=int, default=3, help="how many nodes (default %(default)s)")
    p.add_argument("--telemetry", type=int, default=2, metavar="S", help="seconds between readings")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--battery", type=int, default=None, metavar="S",
                   help="battery nodes that wake every S seconds (simulated deep sleep between wakes)")


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.battery is not None and args.battery < 1:
        print("mqnode sim: --nodes and --battery must be at least 1", file=sys.stderr)
        return 2
    try:
        micropython()
    except FileNotFoundError as e:
        print("mqnode sim: %s" % e, file=sys.stderr)
        return 1
    host, port = port_for(args.broker)
    with tempfile.TemporaryDirectory(prefix="mqnode-sim-") as tmp:
        nodes = start_nodes(args.nodes, Path(tmp), host, port, args.prefix, args.telemetry, commands=False,
                            battery_sleep_s=args.battery)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            while end is None or time.monotonic() < end:
                for n in nodes:
                    n.service()
                time.sleep(SERVICE_S)
        except KeyboardInterrupt:
            pass
        finally:
            for n in nodes:
                n.service()  # a node that went to sleep since the last pass is alive too
            alive = sum(n.alive for n in nodes)
            restarts = sum(n.restarts for n in nodes)
            stop_nodes(nodes)
    print("mqnode sim: %d nodes, %d alive at the end (running, or asleep until their next wake), %d restarts"
          % (args.nodes, alive, restarts))
    return 0 if alive == args.nodes else 1
