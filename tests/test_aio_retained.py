"""Retained messages through the asyncio client: a subscriber that arrives after the publish
still gets the message, flagged RETAIN 1, while a live subscriber sees RETAIN 0
[MQTT-3.3.1-8, MQTT-3.3.1-9]; an empty retained publish clears it [MQTT-3.3.1-10].
"""
from __future__ import annotations


def test_late_subscriber_gets_the_retained_message_with_the_retain_flag(run_aio, topic_root: bytes) -> None:
    topic = topic_root + b"/r"

    r = run_aio("retained", topic=topic)

    assert r["live"] == [[topic, b"kept", 1, 0, 0]]
    assert r["late"] == [[topic, b"kept", 1, 1, 0]]
    # Cleared: a newer subscriber's first message is the marker published after its SUBSCRIBE.
    assert r["after_clear"] == [[topic, b"marker", 1, 0, 0]]
