"""mqnode monitor: a live table of the nodes on a broker, or a JSON line per event."""
from __future__ import annotations

import argparse
import sys

from mqnode_tools.broker_link import BrokerError
from mqnode_tools.settings import add_broker_argument, add_login_arguments, login_from, port_for
from mqnode_tools.watch import Watcher, summary, watch

HELP = "Watch the nodes on a broker: status, readings with their age and trend, switches."
EXAMPLES = """examples:
  mqnode monitor --broker 127.0.0.1:1883
  mqnode monitor --json --duration 10 > events.jsonl
  MQNODE_BROKER=broker.local mqnode monitor
  MQNODE_BROKER_PASSWORD=... mqnode monitor --broker homeassistant.local --user mqtt-user
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_broker_argument(p)
    add_login_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON line per event instead of the table")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")


def run(args: argparse.Namespace) -> int:
    login = login_from(args)
    host, port = port_for(args.broker, login.tls)
    try:
        watcher = Watcher(host, port, args.prefix, login)
    except BrokerError as e:
        print("mqnode monitor: %s" % e, file=sys.stderr)
        return 1
    try:
        watch(watcher, args.duration, args.json)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    if not args.json:
        print(summary(watcher.fleet))
    return 0
