"""`async for msg in c.messages` ends once no message can arrive any more: cleanly after
disconnect() (what was queued is still delivered first), and with the cause when the link is
lost and the client will not reconnect (reconnect=False), whose keepalive task then stops too.
Before, both loops waited forever.

The link is cut by a real tests/fault_proxy.py.
"""
from __future__ import annotations

from fault_proxy import FaultProxy


def test_async_for_ends_after_disconnect_and_after_a_lost_link_without_reconnect(
    start_aio, broker, topic_root: bytes
) -> None:
    with FaultProxy(broker.host, broker.port) as proxy:
        node = start_aio()
        node.start("messages_end", topic=topic_root + b"/end", proxy_port=proxy.port)
        node.wait_pause("cut")
        proxy.cut()
        node.proceed("cut")
        r = node.result()

    assert r["a"] == {"got": [b"before"], "end": "stopped", "ended": True}
    assert r["q"] == {"got": [b"queued"], "end": "stopped", "ended": True}  # the queue first
    assert r["b"]["ended"] is True
    assert r["b"]["got"] == []
    assert r["b"]["end"] == "OSError"  # the cause: the broker closed the connection
    assert r["b"]["tasks_done"] is True
    assert r["b"]["again"] == "stopped"  # the cause is raised once
