"""A QoS 0 publish() of the asyncio client is handed to the socket when it is called, and what it
returns is an awaitable that is done already (aio._Sent), not a coroutine: so it costs no heap.
These check that it still behaves as a coroutine would for each way a program starts one
(await, create_task, gather), offline as online, and that on MicroPython it really allocates
nothing.
"""
from __future__ import annotations

COUNT = 50


def test_awaited_qos0_publishes_return_true_and_allocate_nothing_on_micropython(
        run_aio, runtime: str, topic_root: bytes) -> None:
    r = run_aio("qos0_ways", topic=topic_root + b"/q0", count=COUNT)

    assert r["awaited"] == [True] * COUNT
    assert r["received"].count(b"awaited") == COUNT
    if runtime == "micropython":
        assert r["heap"] == 0, "%d B on the heap for %d QoS 0 publishes" % (r["heap"], COUNT)
    else:
        assert r["heap"] is None  # CPython has no heap figure: nothing to measure


def test_qos0_publish_works_as_a_task_and_in_gather(run_aio, topic_root: bytes) -> None:
    r = run_aio("qos0_ways", topic=topic_root + b"/q0", count=COUNT)

    assert r["gathered"] == [True] * 5
    assert [p for p in r["received"] if p.startswith(b"gathered-")] == [b"gathered-%d" % i for i in range(5)]
    assert r["received"][-1] == b"marker"


def test_a_task_cancelled_before_it_ran_cannot_unsend_its_qos0_message(run_aio, topic_root: bytes) -> None:
    # The message left when publish() was called, before create_task(): the task reports it sent.
    r = run_aio("qos0_ways", topic=topic_root + b"/q0", count=COUNT)

    assert r["cancelled"] == [True] * 3
    assert [p for p in r["received"] if p.startswith(b"cancelled-")] == [b"cancelled-%d" % n for n in range(3)]


def test_an_offline_qos0_publish_returns_false_and_is_dropped_or_queued_as_configured(
        run_aio, topic_root: bytes) -> None:
    r = run_aio("qos0_ways", topic=topic_root + b"/q0", count=COUNT)

    assert r["offline"] == [False, False]
    assert b"dropped-offline" not in r["received"]
    assert r["received"].count(b"queued-offline") == 1  # sent once its client connected (queue_qos0)
