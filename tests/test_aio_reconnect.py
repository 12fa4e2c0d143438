"""The asyncio client across a lost link (keepalive 2 s, clean_session=False, through
tests/fault_proxy.py): `disconnected` is set, then `connected` again without the application
doing anything; QoS 1 messages published while offline are queued (publish() returns False) and
arrive after the reconnect, in order; and a publish whose PUBLISH was in flight when the link
went completes after the reconnect (resent with the same packet id), returning True.

The link goes two ways: cut (both ends see a reset at once), or silent (nothing moves and
nothing closes), which only the client's keepalive can notice: no packet for 1.5 x keepalive.
The subscriber connects to the broker directly.
"""
from __future__ import annotations

from typing import Any, Dict, List

import pytest

from fault_proxy import FaultProxy

OFFLINE = 3
SCENARIO_BOUND_S = 40.0


def _first_seen(items: List[bytes]) -> List[bytes]:
    """QoS 1 is at least once: a message resent after the link went may arrive twice."""
    seen: List[bytes] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _lose_the_link(start_aio, broker, topic: bytes, fault: str) -> Dict[str, Any]:
    with FaultProxy(broker.host, broker.port) as proxy:
        node = start_aio()
        node.start("link_lost", bound_s=SCENARIO_BOUND_S, topic=topic, proxy_port=proxy.port,
                   fault=fault, offline=OFFLINE, keepalive=2)
        node.wait_pause("stall")
        proxy.stall()
        node.proceed("stall")
        node.wait_pause("fault")
        if fault == "cut":
            proxy.cut()
            proxy.resume()
        node.proceed("fault")
        if fault == "silence":
            node.wait_pause("noticed")  # the keepalive dropped the link; the reconnect waits
            proxy.resume()
            node.proceed("noticed")
        return node.result()


@pytest.mark.parametrize("fault", ["cut", "silence"])
def test_client_reconnects_and_delivers_what_was_in_flight_and_queued(
    start_aio, broker, topic_root: bytes, fault: str
) -> None:
    r = _lose_the_link(start_aio, broker, topic_root + b"/l", fault)

    assert r["inflight_done_early"] is False  # the stalled link held its acknowledgement back
    assert r["disconnected"] is True
    assert r["offline_results"] == [False] * OFFLINE
    assert r["queued_while_offline"] == OFFLINE
    assert r["reconnected"] is True
    assert r["inflight_result"] is True
    assert r["marker"] is True
    assert r["inflight_left"] == 0
    assert r["reconnects"] >= 1
    offline = [b"offline-%d" % i for i in range(OFFLINE)]
    assert _first_seen(r["received"]) == [b"inflight", *offline, b"marker"]


def test_last_error_names_the_keepalive_timeout_after_a_silent_link(start_aio, broker, topic_root: bytes) -> None:
    r = _lose_the_link(start_aio, broker, topic_root + b"/l", "silence")

    assert r["reconnected"] is True
    assert (r["last_error"], r["last_error_msg"]) == ("MQTTTimeout", "no packet from the broker for 1.5 x keepalive")
