"""The broker setting of the commands that talk to nodes (monitor, sim, cmd): the flag first,
then the environment; deploy's --broker parses the same way."""
from __future__ import annotations

import argparse
import os
from typing import Tuple

DEFAULT_BROKER = "127.0.0.1:1883"


def add_broker_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker", default=os.environ.get("MQNODE_BROKER", DEFAULT_BROKER), metavar="HOST[:PORT]",
        type=broker_address,
        help="MQTT broker (env MQNODE_BROKER; default %(default)s)",
    )
    parser.add_argument(
        "--prefix", default=os.environ.get("MQNODE_PREFIX", "mqnode"),
        help="topic prefix the nodes use (env MQNODE_PREFIX; default %(default)s)",
    )


def broker_address(text: str) -> Tuple[str, int]:
    """'host[:port]' -> (host, port), as an argparse type: a bad port is a usage error."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("broker %r: the port must be 1..65535" % text)
    return host or "127.0.0.1", int(port)
