"""Retained messages: kept by the broker for later subscribers, flagged as such only to them, and
cleared by an empty retained publish [MQTT-3.3.1-5] .. [MQTT-3.3.1-11].

The broker lives for the whole test session, so each test clears what it retained.
"""
from __future__ import annotations

DELIVERY_DEADLINE_S = 5.0


def test_late_subscriber_receives_the_retained_message_with_the_retain_flag(start_client, topic_root: bytes) -> None:
    topic = topic_root + b"/state"
    publisher = start_client()
    publisher.connect()
    publisher.publish(topic, b"on", retain=True, qos=1)

    late = start_client()
    late.connect()
    late.subscribe(topic, qos=1)
    try:
        assert late.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"on", 1, 1, 0)]
    finally:
        publisher.publish(topic, b"", retain=True, qos=1)


def test_live_subscriber_receives_a_retained_publish_with_the_retain_flag_clear(
    start_client, topic_root: bytes
) -> None:
    # [MQTT-3.3.1-9]: a message sent because of an existing subscription has RETAIN 0.
    topic = topic_root + b"/state"
    live, publisher = start_client(), start_client()
    live.connect()
    publisher.connect()
    live.subscribe(topic, qos=1)

    publisher.publish(topic, b"on", retain=True, qos=1)
    try:
        assert live.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"on", 0, 1, 0)]
    finally:
        publisher.publish(topic, b"", retain=True, qos=1)


def test_empty_retained_publish_clears_the_retained_message(start_client, topic_root: bytes) -> None:
    # [MQTT-3.3.1-10]: a zero-byte retained message removes the one retained for the topic.
    topic, marker_topic = topic_root + b"/state", topic_root + b"/marker"
    publisher = start_client()
    publisher.connect()
    publisher.publish(topic, b"on", retain=True, qos=1)
    publisher.publish(topic, b"", retain=True, qos=1)

    late = start_client()
    late.connect()
    late.subscribe(topic_root + b"/#", qos=1)
    # A retained message would be sent on subscribing, so ahead of this later live one: if the
    # marker comes first and alone, nothing was retained.
    publisher.publish(marker_topic, b"after", qos=1)

    assert late.wait_messages(1, DELIVERY_DEADLINE_S) == [(marker_topic, b"after", 0, 1, 0)]
    assert late.wait_messages(1, 0.3) == []
