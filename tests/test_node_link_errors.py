"""A publish that fails under the node's feet does not take the node down. Here every QoS 1
publish raises OSError: once the node has booted, the folder of its message store is replaced by a
file, so writing the store (before each send) fails, as a full or broken flash would. (At boot
such a store is a configuration error: test_node_bad_config.) The node's tasks (announcer,
telemetry, motion, commands) log the error and go on; before, the first one ended the node.
"""
from __future__ import annotations

import shutil
import time

from sim_node import NodeFactory, make_node, wait_stdout  # noqa: F401 (fixtures)

PERIOD_S = 0.2
RUN_S = 3.0
BOOT_TIMEOUT_S = 10.0


def test_publishes_that_raise_are_logged_and_the_node_keeps_running(make_node: NodeFactory) -> None:
    node = make_node(start=False, telemetry_s=PERIOD_S, store="storedir/mqtt.dat")
    folder = node.folder / "storedir"
    folder.mkdir()
    node.start()
    # the boot line: the store passed its check
    assert wait_stdout(node, "broker 127.0.0.1", BOOT_TIMEOUT_S), node.stdout() + node.errors()
    # Out of the node's way in one step: it writes the store (a .tmp, then a rename) as this runs,
    # and removing the folder file by file raced it (FileNotFoundError on a .tmp just renamed).
    folder.rename(node.folder / "storedir-gone")
    folder.write_text("not a folder")
    shutil.rmtree(node.folder / "storedir-gone", ignore_errors=True)
    node.send("pin 15 1")  # motion too, once the node is up
    time.sleep(RUN_S)
    out = node.stdout() + node.errors()
    assert node.running, out
    assert "telemetry: OSError" in out, out
    assert out.count("telemetry: OSError") >= 3, out  # period after period, not once and dead
    assert "Traceback" not in out and "rebooting" not in out, out
