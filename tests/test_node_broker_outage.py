"""Broker outages: after a broker restart (which forgets sessions and retained messages) the node
announces everything again (birth, discovery configs, states) and still takes commands; a node
that cannot reach any broker for reboot_after_s resets itself rather than hang.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from broker import Broker, free_ports
from node_observer import on
from sim_node import (  # noqa: F401 (fixtures)
    EXIT_RESET, NodeFactory, ObserverFactory, make_node, observe, wait_announced,
)

STATE_TIMEOUT_S = 5.0
# The node's client retries at once, then after 50-100 % of a delay doubling from 0.1 s to 1 s
# (lib/mqtt/backoff.py); mosquitto takes well under a second to start.
REANNOUNCE_TIMEOUT_S = 10.0
DISCOVERED = ["sensor/%s/temperature", "binary_sensor/%s/motion", "switch/%s/relay"]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto of this test's own, so restarting it disturbs no other test."""
    workdir = tmp_path / "own-broker"
    workdir.mkdir()
    b = Broker(workdir)
    b.start()
    yield b
    b.stop()


def test_node_announces_everything_again_after_broker_restart(
    own_broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False, port=own_broker.port)
    configs = "homeassistant/+/%s/+/config" % node.node_id
    before = observe([node.topic("#"), configs], port=own_broker.port)
    node.start()
    wait_announced(before, node)
    before.publish(node.topic("switch/relay/set"), "ON")
    assert before.wait(on(node.topic("switch/relay/state"), "ON"), STATE_TIMEOUT_S)

    own_broker.restart()  # no persistence: sessions and retained messages are gone

    # Anything this fresh subscriber gets, live or retained, the node sent after the restart.
    after = observe([node.topic("#"), configs], port=own_broker.port)
    after.wait(on(node.topic("status"), "online"), REANNOUNCE_TIMEOUT_S)
    for leaf in DISCOVERED:
        after.wait(on("homeassistant/%s/config" % (leaf % node.node_id)), REANNOUNCE_TIMEOUT_S)
    after.wait(on(node.topic("switch/relay/state"), "ON"), REANNOUNCE_TIMEOUT_S)  # it kept its state
    after.wait(on(node.topic("binary_sensor/motion/state"), "OFF"), REANNOUNCE_TIMEOUT_S)
    after.wait(on(node.topic("sensor/temperature/state")), REANNOUNCE_TIMEOUT_S)
    after.wait(on(node.topic("info")), REANNOUNCE_TIMEOUT_S)

    # The broker forgot the node's subscription with its session: the node must have renewed it.
    mark = after.mark()
    after.publish(node.topic("switch/relay/set"), "OFF")
    assert after.wait(on(node.topic("switch/relay/state")), STATE_TIMEOUT_S, mark).text == "OFF"
    assert node.running


REBOOT_AFTER_S = 2
# The health task looks once a second, and the process then exits at once.
REBOOT_TIMEOUT_S = REBOOT_AFTER_S + 1.0 + 3.0


def test_node_without_broker_resets_after_reboot_after_s(make_node: NodeFactory) -> None:
    closed_port = free_ports(1)[0]  # nothing listens there: every connect is refused
    node = make_node(port=closed_port, reboot_after_s=REBOOT_AFTER_S)

    code = node.wait_exit(REBOOT_TIMEOUT_S)

    assert code == EXIT_RESET, node.stdout() + node.errors()
    assert "no broker for %d s: rebooting" % REBOOT_AFTER_S in node.stdout()
    assert "Traceback" not in node.errors()
