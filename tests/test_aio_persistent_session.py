"""A persistent session (clean_session=False) with the asyncio client: the broker keeps its
subscriptions and queues QoS 1 and 2 messages while it is away [MQTT-3.1.2-4], says so with
session-present 1 [MQTT-3.2.2-2], and sends them after the reconnect without a new SUBSCRIBE.
"""
from __future__ import annotations


def test_subscriptions_and_qos1_qos2_messages_wait_for_the_reconnect(run_aio, topic_root: bytes) -> None:
    topic = topic_root + b"/s"

    r = run_aio("persistent", topic=topic)

    assert r["first_present"] == 0  # a client id the broker has never seen
    assert r["granted"] == [1, 2]
    assert r["published"] == [True] * 4
    assert r["second_present"] == 1
    assert r["received"] == [
        [topic + b"/q1", b"one", 1, 0, 0],
        [topic + b"/q2", b"two", 2, 0, 0],
        [topic + b"/q1", b"three", 1, 0, 0],
        [topic + b"/q2", b"four", 2, 0, 0],
    ]
