"""Switch commands: `ON`, `OFF` and `TOGGLE` on `.../switch/relay/set` change the relay and its
retained `.../switch/relay/state`; anything else (an unknown command, a payload that is not UTF-8,
a switch the node does not have) is ignored, counted in `.../info` stats.bad_commands, and does
not stop the node from obeying the next good command.
"""
from __future__ import annotations

import json
import signal
import time

from node_observer import Message, on
from sim_node import (  # noqa: F401 (fixtures)
    NodeFactory, ObserverFactory, TELEMETRY_S, make_node, observe, wait_announced,
)

STATE_TIMEOUT_S = 5.0
# The node publishes info on connect and then every 10 telemetry cycles (lib/mqnode/node.py).
INFO_TIMEOUT_S = 10 * TELEMETRY_S + 5.0


def test_on_off_toggle_change_the_switch_and_its_retained_state(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    command, state = node.topic("switch/relay/set"), node.topic("switch/relay/state")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    assert [m.text for m in live.messages(on(state))] == ["OFF"]  # announced at boot

    for payload, expected in [("ON", "ON"), ("OFF", "OFF"), ("TOGGLE", "ON"), ("TOGGLE", "OFF"), ("TOGGLE", "ON")]:
        mark = live.mark()
        live.publish(command, payload)
        answer = live.wait(on(state), STATE_TIMEOUT_S, mark)
        assert answer.text == expected, "after %s" % payload

    late = observe([state])
    kept = late.wait(on(state), STATE_TIMEOUT_S)
    assert (kept.text, kept.retain) == ("ON", True)


BAD_COMMANDS = [
    ("switch/relay/set", b"BLAH"),
    ("switch/relay/set", b"\xff\xfe\xfd"),  # not UTF-8
    ("switch/relay/set", b""),
    ("switch/heater/set", b"ON"),  # no such switch on the sim board
]


def test_bad_commands_are_ignored_counted_and_do_not_stop_the_node(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    state, info = node.topic("switch/relay/state"), node.topic("info")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    booted = live.messages(on(info))[-1]
    assert json.loads(booted.payload)["stats"]["bad_commands"] == 0

    mark = live.mark()
    for leaf, payload in BAD_COMMANDS:
        live.publish(node.topic(leaf), payload)
    good = live.mark()
    live.publish(node.topic("switch/relay/set"), "TOGGLE")
    answer = live.wait(on(state), STATE_TIMEOUT_S, good)
    assert answer.text == "ON"  # the relay was still OFF: no bad command moved it
    assert [m.text for m in live.messages(on(state), mark)] == ["ON"]
    assert node.running

    def counted(m: Message) -> bool:
        return on(info)(m) and json.loads(m.payload)["stats"]["commands"] >= 1

    stats = json.loads(live.wait(counted, INFO_TIMEOUT_S, good).payload)["stats"]
    assert stats["bad_commands"] == len(BAD_COMMANDS)
    assert stats["commands"] == 1
    assert node.running
    assert "Traceback" not in node.stdout() + node.errors()


def test_command_sent_while_the_node_was_down_is_applied_when_it_returns(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """The node's session is persistent (clean_session=False), so the broker keeps a QoS 1 command
    for it while it is away, as Home Assistant users expect of a switch they flipped meanwhile."""
    node = make_node(start=False)
    state = node.topic("switch/relay/state")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    node.signal(signal.SIGKILL)
    live.wait(on(node.topic("status"), "offline"), STATE_TIMEOUT_S)

    live.publish(node.topic("switch/relay/set"), "ON", qos=1)
    mark = live.mark()
    node.start()

    live.wait(on(state, "ON"), STATE_TIMEOUT_S, mark)
    live.wait(on(node.topic("info")), STATE_TIMEOUT_S, mark)  # the announcement is over
    assert [m.text for m in live.messages(on(state), mark)][-1] == "ON"  # and did not undo it


def test_a_retained_toggle_is_ignored_and_counted(make_node: NodeFactory, observe: ObserverFactory) -> None:
    """A retained command comes again with every subscription: a retained TOGGLE would flip the relay
    at each boot."""
    node = make_node(start=False)
    command, state = node.topic("switch/relay/set"), node.topic("switch/relay/state")
    live = observe([node.topic("#")])
    live.publish(command, "TOGGLE", retain=True)
    node.start()
    wait_announced(live, node)
    info = live.wait(on(node.topic("info")), INFO_TIMEOUT_S)
    assert [m.text for m in live.messages(on(state))] == ["OFF"]
    assert "ignored retained command b'TOGGLE'" in node.stdout(), node.stdout()
    assert json.loads(info.payload)["stats"]["bad_commands"] == 1
    live.publish(command, "", retain=True)  # the broker forgets it


OVERSIZED = 20_000  # above the client's max_packet (16 KiB, lib/mqtt), well within mosquitto's limits
OVERSIZED_WAIT_S = 3.0


def test_oversized_command_is_dropped_and_logged_without_disconnecting_the_node(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    state, status = node.topic("switch/relay/state"), node.topic("status")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)

    mark = live.mark()
    live.publish(node.topic("switch/relay/set"), b"X" * OVERSIZED, qos=1)
    live.publish(node.topic("switch/relay/set"), "ON", qos=1)
    time.sleep(OVERSIZED_WAIT_S)

    assert live.messages(on(status, "offline"), mark) == []  # no disconnect, so no will
    assert [m.text for m in live.messages(on(state), mark)] == ["ON"]
    assert "above the client's max_packet" in node.stdout(), node.stdout()
