"""`<prefix>/<node>/info` and the default node id, on a node started with no node_id in its config:
the id then comes from the chip's unique id (`mqnode-` and 8 hex digits on the sim board, whose
unique id is 4 bytes), and info carries what the issue lists: board, firmware and MicroPython
versions, IP, free memory, uptime and reset cause, with the node's counters."""
from __future__ import annotations

import json
import re

import pytest

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


def test_uptime_keeps_counting_past_the_wrap_of_a_boards_ticks(monkeypatch) -> None:
    """A board's ticks_ms() wraps at 2**30 ms and ticks_diff() spans half of that, 6.2 days: an
    uptime taken as one difference from boot went negative then. Here the node runs on a board's
    clock: its health task goes round once a simulated minute for a week (asyncio.sleep moves the
    clock), then info reports the uptime."""
    import asyncio
    import sys

    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    from mqnode import hardware_sim, node as node_module

    period = 1 << 30
    clock = [period - 5000]  # a board's counter, 5 s before its wrap
    week_ms = 7 * 24 * 3600 * 1000
    rounds = [0]

    def ticks_ms() -> int:
        return clock[0] % period

    def ticks_diff(a: int, b: int) -> int:
        return ((a - b + period // 2) % period) - period // 2

    class Done(Exception):
        pass

    async def sleep(_s: float) -> None:
        if rounds[0] == week_ms // 60000:
            raise Done
        rounds[0] += 1
        clock[0] += 60000

    published = {}

    class Connected:
        class connected:  # the broker is there all week: no reboot_after_s
            @staticmethod
            def is_set() -> bool:
                return True

        @staticmethod
        async def publish(topic: str, payload: str, **_: object) -> bool:
            published[topic] = payload
            return True

    monkeypatch.setattr(node_module, "ticks_ms", ticks_ms)
    monkeypatch.setattr(node_module, "ticks_diff", ticks_diff)
    monkeypatch.setattr(node_module.asyncio, "sleep", sleep)
    cfg = {"prefix": "mqnode", "discovery_prefix": "homeassistant", "reboot_after_s": 600, "telemetry_s": 60,
           "wifi.ssid": None}
    n = node_module.Node(cfg, "sim", "n1", hardware_sim)
    n.client = Connected()
    with pytest.raises(Done):
        asyncio.run(n._health())
    asyncio.run(n.publish_info())
    assert json.loads(published["mqnode/n1/info"])["uptime_s"] == week_ms // 1000
