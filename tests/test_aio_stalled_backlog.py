"""A broker that stops reading while the asyncio client has a backlog to send: the client gives
the link up within its timeout, says why, reconnects once the link moves again, and disconnect()
on such a link returns within its timeout too.

CPython's stream close() waits for a backlog to go out, so closing a link to a broker that
reads nothing never ended: no reconnect, and disconnect() hung. On MicroPython the drain's
asyncio.TimeoutError, which is no OSError there, escaped the keepalive task and ended it. The
backlog is made with tests/fault_proxy.py (stalled, then resumed) and a board-sized send buffer.
"""
from __future__ import annotations

from fault_proxy import FaultProxy

TIMEOUT_S = 1
SLACK_S = 1.5  # a loaded machine, the keepalive task's 1 s sleep


def test_a_stalled_backlog_gives_the_link_up_within_the_timeout_and_disconnect_returns(
    start_aio, broker, topic_root: bytes
) -> None:
    with FaultProxy(broker.host, broker.port, client_rcvbuf=4096) as proxy:
        node = start_aio()
        node.start("stalled_backlog", topic=topic_root + b"/backlog", proxy_port=proxy.port, timeout=TIMEOUT_S)
        node.wait_pause("stall")
        proxy.stall()
        node.proceed("stall")
        node.wait_pause("resume")
        proxy.resume()
        node.proceed("resume")
        node.wait_pause("stall again")
        proxy.stall()
        node.proceed("stall again")
        r = node.result()

    assert r["published"] and r["gave_up"] and r["gave_up_s"] <= TIMEOUT_S + SLACK_S, r
    assert r["reconnected"], r
    assert r["why"] == "MQTTTimeout: send: the broker took nothing for %d s" % TIMEOUT_S, r
    assert r["disconnected"] and r["disconnect_s"] <= TIMEOUT_S * 2 + SLACK_S, r
