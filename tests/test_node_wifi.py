"""WiFi as the node sees it, through the sim board's wifi_down file: a join that fails is retried
with a growing delay (1 s, 2 s, ...) and the node comes online once the access point answers;
when WiFi goes away under a running node, the health task starts joining again.
"""
from __future__ import annotations

import time
from pathlib import Path

from node_observer import on
from sim_node import NodeFactory, ObserverFactory, make_node, observe, wait_stdout  # noqa: F401 (fixtures)

RETRY_LINE = "wifi_down: no access point ; retrying in %d s"
ONLINE_TIMEOUT_S = 10.0
HEALTH_PERIOD_S = 1.0  # node._health looks at the WiFi once a second


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

    down = node.folder / "wifi_down"
    down.write_text("")
    assert wait_stdout(node, RETRY_LINE % 1, HEALTH_PERIOD_S + 3.0), node.stdout()
    down.unlink()
    time.sleep(2.5)  # the attempt 1 s after that line finds the access point back
    # Proof that it joined: the next drop starts a new join, whose first retry is 1 s again (a
    # join still failing would be at 2 s, then 4 s).
    down.write_text("")
    assert wait_stdout(node, RETRY_LINE % 1, HEALTH_PERIOD_S + 3.0, count=2), node.stdout()
    down.unlink()
    out = node.stdout()
    assert RETRY_LINE % 2 not in out, out
    assert node.running and "Traceback" not in out + node.errors()
