"""Several tasks write while the stream is backed up, and one gives up on its publish mid-drain:
every packet still reaches the broker whole and once, and the link stays up.

MicroPython's asyncio Stream.drain() writes from its buffer and empties it only when done, so a
second drain meanwhile sent bytes twice, a write meanwhile was dropped, and a drain cancelled
with its caller left a sent part to be sent again: the broker read payload bytes as a header and
dropped the connection. The backlog is made with tests/fault_proxy.py: stalled, then resumed.
"""
from __future__ import annotations

from fault_proxy import FaultProxy

COUNT = 4
SIZE = 30_000  # several of these cannot all sit in the stalled proxy's small receive buffer
PROXY_RCVBUF = 4096


def test_writers_on_a_backed_up_stream_keep_every_packet_whole(start_aio, broker, topic_root: bytes) -> None:
    with FaultProxy(broker.host, broker.port, client_rcvbuf=PROXY_RCVBUF) as proxy:
        node = start_aio()
        node.start("backed_up_writers", topic=topic_root + b"/backed-up", proxy_port=proxy.port,
                   count=COUNT, size=SIZE)
        node.wait_pause("stall")
        proxy.stall()
        node.proceed("stall")
        node.wait_pause("resume")
        proxy.resume()
        node.proceed("resume")
        r = node.result()

    assert r["results"] == ["cancelled"] + [True] * (COUNT - 1), r
    assert sorted(r["received"]) == list(range(COUNT)), r  # the cancelled one too, each once
    assert r["reconnects"] == 0 and r["last_error"] is None, r
