"""Cancelling a task that awaits publish() does not cancel the message (aio.Client.publish: "Cancelling
the caller never cancels the flow"): the session stays consistent, later publishes complete, and
a message whose PUBLISH went out arrives, exactly once at QoS 2.

Each publish is cancelled after 0 to 7 turns of the event loop, so at every stage of its flow:
before it ran at all (then nothing was sent and nothing arrives), while its PUBLISH is being
written, while its acknowledgement is awaited, and (QoS 2) between PUBREC and PUBCOMP. A flow
that completed within its turns returns True instead of being cancelled; so does one whose
cancellation CPython < 3.12's asyncio.wait_for swallowed (the drain it wraps had finished).
"""
from __future__ import annotations

import pytest

SPINS = list(range(8))
QOS = pytest.mark.parametrize("qos", [1, 2], ids=["qos1", "qos2"])


@QOS
def test_cancelled_publish_still_arrives_and_later_publishes_complete(run_aio, topic_root: bytes, qos: int) -> None:
    r = run_aio("cancel_publish", topic=topic_root + b"/x", qos=qos, spins=SPINS)

    assert r["outcomes"][0] == "cancelled"
    assert set(r["outcomes"][1:]) <= {"cancelled", True}
    assert (r["after"], r["marker"]) == (True, True)
    assert r["inflight"] == 0
    received = r["received"]
    assert received[-2:] == [b"after", b"marker"]
    cancelled = received[:-2]
    expected = [b"cancelled-%d" % n for n in SPINS[1:]]  # never "cancelled-0": it was not sent
    if qos == 2:
        assert cancelled == expected  # each exactly once, in order
    else:
        assert sorted(set(cancelled), key=expected.index) == expected  # each at least once


@QOS
def test_cancelled_publish_leaves_no_waiter_behind(request, run_aio, runtime: str, topic_root: bytes, qos: int) -> None:
    r = run_aio("cancel_publish", topic=topic_root + b"/x", qos=qos, spins=SPINS)

    assert r["inflight"] == 0
    assert r["waiters"] == 0
