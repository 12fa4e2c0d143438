"""Persistent sessions (clean_session=False): the broker keeps the subscriptions and queues QoS 1
and 2 messages while the client is away [MQTT-3.1.2-4], says so with session-present 1
[MQTT-3.2.2-2], and a clean session throws all of it away [MQTT-3.1.2-6].
"""
from __future__ import annotations

from typing import List, Tuple

DELIVERY_DEADLINE_S = 5.0


def _subscribe_and_leave(node, topic_root: bytes) -> None:
    assert node.connect(clean_session=False) == 0  # a client id the broker has never seen
    assert node.subscribe(topic_root + b"/q1", qos=1) == 1
    assert node.subscribe(topic_root + b"/q2", qos=2) == 2
    node.disconnect()


def _publish_while_away(publisher, topic_root: bytes) -> List[Tuple[bytes, bytes, int]]:
    sent = [(topic_root + b"/q1", b"one", 1), (topic_root + b"/q2", b"two", 2),
            (topic_root + b"/q1", b"three", 1), (topic_root + b"/q2", b"four", 2)]
    publisher.connect()
    for topic, payload, qos in sent:
        publisher.publish(topic, payload, qos=qos)
    return sent


def test_messages_queued_while_offline_arrive_on_reconnect_without_resubscribing(
    start_client, topic_root: bytes
) -> None:
    node, publisher = start_client(), start_client()
    _subscribe_and_leave(node, topic_root)
    sent = _publish_while_away(publisher, topic_root)

    assert node.connect(clean_session=False) == 1

    received = node.wait_messages(len(sent), DELIVERY_DEADLINE_S)
    assert received == [(topic, payload, 0, qos, 0) for topic, payload, qos in sent]


def test_clean_session_reconnect_reports_no_session_and_discards_the_queue(start_client, topic_root: bytes) -> None:
    node, publisher = start_client(), start_client()
    _subscribe_and_leave(node, topic_root)
    _publish_while_away(publisher, topic_root)

    assert node.connect(clean_session=True) == 0

    # Queued messages would be sent right after CONNACK, so ahead of this later one.
    marker = topic_root + b"/marker"
    node.subscribe(marker, qos=1)
    publisher.publish(marker, b"after", qos=1)
    assert node.wait_messages(1, DELIVERY_DEADLINE_S) == [(marker, b"after", 0, 1, 0)]
    assert node.wait_messages(1, 0.3) == []

    # The clean session ended with its connection [MQTT-3.1.2-6]: nothing is left to resume.
    node.disconnect()
    assert node.connect(clean_session=False) == 0
    node.disconnect()
