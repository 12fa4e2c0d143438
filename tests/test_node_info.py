"""`<prefix>/<node>/info` and the default node id, on a node started with no node_id in its config:
the id then comes from the chip's unique id (`mqnode-` and 8 hex digits on the sim board, whose
unique id is 4 bytes), and info carries what the issue lists: board, firmware and MicroPython
versions, IP, free memory, uptime and reset cause, with the node's counters."""
from __future__ import annotations

import json
import re

from runtime import LIB
from sim_node import NodeFactory, ObserverFactory, make_node, observe  # noqa: F401 (fixtures)

INFO_TIMEOUT_S = 10.0
DEFAULT_ID = re.compile(r"^mqnode-[0-9a-f]{8}$")
VERSION = re.search(r'VERSION = "([^"]+)"', (LIB / "mqnode" / "__init__.py").read_text()).group(1)


def test_default_node_id_from_the_chip_and_the_info_it_publishes(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    config = json.loads(node.config_path.read_text())
    del config["node_id"]
    node.write_config(config)
    live = observe(["mqnode/+/info"])
    node.start()

    # live, from a node whose id has the default's shape (retained ones are other tests' nodes)
    info = live.wait(lambda m: bool(DEFAULT_ID.match(m.topic.split("/")[1])) and not m.retain, INFO_TIMEOUT_S)
    body = json.loads(info.payload)
    assert body["board"] == "sim"
    assert body["firmware"] == VERSION
    assert re.match(r"^1\.\d+\.\d+$", body["micropython"]), body
    assert body["ip"] == "127.0.0.1"
    assert isinstance(body["free_mem"], int) and body["free_mem"] > 0
    assert isinstance(body["uptime_s"], int) and 0 <= body["uptime_s"] < INFO_TIMEOUT_S
    assert body["reset_cause"] == "power-on"
    assert set(body["stats"]) == {"readings", "sensor_errors", "commands", "bad_commands"}
