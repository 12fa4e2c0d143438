"""A broker that stops reading while the asyncio client has a backlog to send is a silent broker:
the client gives the link up within 1.5 x keepalive, reconnects once the link moves again, and
sends the message then; disconnect() on such a link returns within its timeout. A slow link, on
the other hand, is never cut for being slow: a message that takes several times `timeout` to
cross arrives on the first connection.

Before, CPython's stream close() waited for a backlog to go out, so closing a link to a broker
that reads nothing never ended (no reconnect, and disconnect() hung); on MicroPython a drain
cancelled by its timeout took the socket out of the poll set, and the reader never woke. The
backlog is made with tests/fault_proxy.py (stalled, slowed) and a board-sized send buffer.
"""
from __future__ import annotations

from fault_proxy import FaultProxy

TIMEOUT_S = 1
KEEPALIVE_S = 2
SLACK_S = 2.0  # the keepalive task's wake-ups, a loaded machine
SLOW_CHUNK_DELAY_S = 0.02  # with the proxy's 4 KB receive buffer: about 200 KB/s
SLOW_SIZE = 300_000  # about 1.5 s on that link: longer than the client's timeout


def test_a_stalled_backlog_is_a_silent_link_given_up_and_disconnect_returns(
    start_aio, broker, topic_root: bytes
) -> None:
    with FaultProxy(broker.host, broker.port, client_rcvbuf=4096) as proxy:
        node = start_aio()
        node.start("stalled_backlog", topic=topic_root + b"/backlog", proxy_port=proxy.port, timeout=TIMEOUT_S,
                   keepalive=KEEPALIVE_S)
        node.wait_pause("stall")
        proxy.stall()
        node.proceed("stall")
        node.wait_pause("resume")
        proxy.cut()  # the stalled connection holds a half-sent PUBLISH: past saving
        proxy.resume()
        node.proceed("resume")
        node.wait_pause("stall again")
        proxy.stall()
        node.proceed("stall again")
        r = node.result()

    assert r["gave_up"] and r["gave_up_s"] <= 1.5 * KEEPALIVE_S + SLACK_S, r
    assert r["why"] == "MQTTTimeout: no packet from the broker for 1.5 x keepalive", r
    assert r["reconnected"] and r["published"], r  # the message went out after the reconnect
    assert r["disconnected"] and r["disconnect_s"] <= TIMEOUT_S * 2 + SLACK_S, r


def test_a_slow_link_is_not_cut_for_being_slow(start_aio, broker, topic_root: bytes) -> None:
    with FaultProxy(broker.host, broker.port, client_rcvbuf=4096) as proxy:
        node = start_aio()
        node.start("slow_link_publish", topic=topic_root + b"/slow", proxy_port=proxy.port, timeout=TIMEOUT_S,
                   size=SLOW_SIZE)
        node.wait_pause("slow")
        proxy.slow(SLOW_CHUNK_DELAY_S)
        node.proceed("slow")
        r = node.result()

    assert r == {"result": True, "reconnects": 0, "received": [SLOW_SIZE]}, r
