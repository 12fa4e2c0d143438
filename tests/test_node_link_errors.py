"""A publish that fails under the node's feet does not take the node down. Here every QoS 1
publish raises OSError: the message store sits in a folder that does not exist, so writing it
(before each send) fails, as a full or broken flash would. The node's tasks (announcer,
telemetry, motion, commands) log the error and go on; before, the first one ended the node.
"""
from __future__ import annotations

import time

from sim_node import NodeFactory, make_node  # noqa: F401 (fixtures)

PERIOD_S = 0.2
RUN_S = 3.0


def test_publishes_that_raise_are_logged_and_the_node_keeps_running(make_node: NodeFactory) -> None:
    node = make_node(telemetry_s=PERIOD_S, store="nosuchdir/mqtt.dat")
    node.send("pin 15 1")  # motion too, once the node is up
    time.sleep(RUN_S)
    out = node.stdout() + node.errors()
    assert node.running, out
    assert "telemetry: OSError" in out, out
    assert out.count("telemetry: OSError") >= 3, out  # period after period, not once and dead
    assert "Traceback" not in out and "rebooting" not in out, out
