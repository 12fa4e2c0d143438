"""disconnect() ends the client's work: a task still awaiting publish()'s acknowledgement when
another task disconnects gets its answer (False: the flow was not confirmed, it stays in the
session for a later connect()), instead of waiting forever.

The acknowledgement is held back by a stalled tests/fault_proxy.py, so it cannot win the race.
"""
from __future__ import annotations

import pytest

from fault_proxy import FaultProxy


@pytest.mark.parametrize("qos", [1, 2], ids=["qos1", "qos2"])
def test_publish_awaiting_its_ack_returns_false_when_the_client_disconnects(
    start_aio, broker, topic_root: bytes, qos: int
) -> None:
    with FaultProxy(broker.host, broker.port) as proxy:
        node = start_aio()
        node.start("disconnect_during_publish", topic=topic_root + b"/d", proxy_port=proxy.port, qos=qos)
        node.wait_pause("stall")
        proxy.stall()
        node.proceed("stall")
        r = node.result()

    assert r["early"] is False  # it really was awaiting its acknowledgement
    assert (r["returned"], r["result"]) == (True, False)
