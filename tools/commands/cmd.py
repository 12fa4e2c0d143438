"""mqnode cmd: switch a node's switch and wait until the node says it did."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from mqnode_tools.broker_link import BrokerError, BrokerLink, Message
from mqnode_tools.settings import add_broker_argument, add_login_arguments, login_from, port_for

HELP = "Send ON, OFF or TOGGLE to a node's switch and wait for the node to confirm the new state."
EXAMPLES = """The command goes to <prefix>/NODE/switch/SWITCH/set (QoS 1); the node answers on
.../switch/SWITCH/state. TOGGLE expects the opposite of the retained state read before sending
(with none retained, any state the node reports counts).

exit status: 0 confirmed, 1 no confirmation within --timeout (or the broker failed), 2 bad usage.

examples:
  mqnode cmd sim-1 relay ON --broker 127.0.0.1:1883
  mqnode cmd kitchen relay toggle --timeout 5
"""
DEFAULT_TIMEOUT_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_broker_argument(p)
    add_login_arguments(p)
    p.add_argument("node", metavar="NODE", help="the node id")
    p.add_argument("switch", metavar="SWITCH", help="the switch's name on its board, e.g. relay")
    p.add_argument("state", metavar="ON|OFF|TOGGLE", type=str.upper, choices=("ON", "OFF", "TOGGLE"))
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="how long to wait for the node (default %(default)s s)")


def fail(message: str, status: int = 1) -> int:
    print("mqnode cmd: " + message, file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    for what, name in (("node", args.node), ("switch", args.switch), ("prefix", args.prefix)):
        if not name or any(c in name for c in "+#/"):
            return fail("%s %r: a topic level, without + # or /" % (what, name), 2)
    login = login_from(args)
    host, port = port_for(args.broker, login.tls)
    base = "%s/%s" % (args.prefix, args.node)
    state_topic = "%s/switch/%s/state" % (base, args.switch)
    status_topic = base + "/status"
    started = time.monotonic()
    try:
        link = BrokerLink(host, port, [state_topic, status_topic], login=login)
    except BrokerError as e:
        return fail(str(e))
    try:
        before = link.retained(state_topic)
        expected: Optional[str] = args.state
        if args.state == "TOGGLE":
            expected = None if before is None else ("OFF" if before.text == "ON" else "ON")
        since = link.mark()
        left = args.timeout - (time.monotonic() - started)
        if not link.publish(base + "/switch/%s/set" % args.switch, args.state.encode(), max(left, 0.1)):
            return fail("the broker %s did not acknowledge the command within %.0f s" % (link.address, args.timeout))
        sent = time.monotonic()

        def confirms(m: Message) -> bool:
            return m.topic == state_topic and (expected is None or m.text == expected)

        got = link.wait_for(confirms, since, max(args.timeout - (sent - started), 0.0))
        if got is not None:
            print("%s %s: %s (confirmed in %.2f s)" % (args.node, args.switch, got.text, got.at - sent))
            return 0
        return fail(timeout_line(args, expected, before, link.retained(status_topic)))
    finally:
        link.close()


def timeout_line(args: argparse.Namespace, expected: Optional[str], before: Optional[Message],
                 status: Optional[Message]) -> str:
    state = before.text if before else "unknown (nothing retained)"
    node = status.text if status else "never seen"
    return ("timeout: %s did not confirm %s %s within %.1f s (state before: %s; node status: %s)" % (
        args.node, args.switch, expected or "a new state", args.timeout, state, node))
