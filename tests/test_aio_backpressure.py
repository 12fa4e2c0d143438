"""The incoming queue is bounded (aio._Messages): when the application does not read, the client
keeps acknowledging and reading, the queue keeps the newest `incoming` messages, and every
message dropped to make room is counted in counters()["dropped_in"]. Dropping is for a consumer
that does not keep up: one that waits in `async for` gets every message, even from a burst
larger than its queue.
"""
from __future__ import annotations

BURST = 100
QUEUE = 32  # the default `incoming`


def test_queue_keeps_the_newest_messages_and_counts_the_dropped(run_aio, topic_root: bytes) -> None:
    r = run_aio("backpressure", topic=topic_root + b"/b", count=20, incoming=5)

    assert r["dropped_in"] == 15
    assert r["queued"] == 5
    assert r["payloads"] == [b"15", b"16", b"17", b"18", b"19"]


def test_a_waiting_consumer_gets_every_message_of_a_burst_larger_than_its_queue(
    request, run_aio, runtime: str, topic_root: bytes
) -> None:
    r = run_aio("burst", topic=topic_root + b"/burst", count=BURST, incoming=QUEUE)

    assert r["echoes"] == BURST  # the broker sent the whole burst
    assert (r["received"], r["dropped_in"]) == (BURST, 0)
