"""WiFi as the node sees it, through the sim board's wifi_down file: a join that fails is retried
with a growing delay (1 s, 2 s, ...) and the node comes online once the access point answers;
when WiFi goes away under a running node, the health task starts joining again.
"""
from __future__ import annotations

import time
from pathlib import Path

from node_observer import on
from sim_node import NodeFactory, NodeProcess, ObserverFactory, make_node, observe  # noqa: F401 (fixtures)

RETRY_LINE = "wifi_down: no access point ; retrying in %d s"
ONLINE_TIMEOUT_S = 10.0
HEALTH_PERIOD_S = 1.0  # node._health looks at the WiFi once a second


def wait_stdout(node: NodeProcess, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in node.stdout():
            return True
        time.sleep(0.05)
    return False


def test_join_is_retried_with_backoff_until_the_access_point_answers(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False, wifi={"ssid": "sim-ap"})
    down: Path = node.folder / "wifi_down"
    down.write_text("")
    live = observe([node.topic("status")])
    node.start()

    assert wait_stdout(node, RETRY_LINE % 2, 5.0), node.stdout() + node.errors()  # 1 s, then 2 s
    assert RETRY_LINE % 1 in node.stdout()
    assert live.messages() == []  # no WiFi, no broker
    down.unlink()
    live.wait(on(node.topic("status"), "online"), ONLINE_TIMEOUT_S)
    assert node.running and "Traceback" not in node.stdout() + node.errors()


def test_wifi_lost_under_a_running_node_is_joined_again(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, wifi={"ssid": "sim-ap"})
    live = observe([node.topic("status")])
    node.start()
    live.wait(on(node.topic("status"), "online"), ONLINE_TIMEOUT_S)
    assert "retrying" not in node.stdout()

    (node.folder / "wifi_down").write_text("")
    assert wait_stdout(node, RETRY_LINE % 1, HEALTH_PERIOD_S + 3.0), node.stdout()
    (node.folder / "wifi_down").unlink()
    time.sleep(2.5)  # the attempt 1 s after that line finds the access point back
    out = node.stdout()
    assert RETRY_LINE % 2 not in out, out  # joined again: no second failure
    assert node.running and "Traceback" not in out + node.errors()
