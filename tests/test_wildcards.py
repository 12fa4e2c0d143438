"""Topic filters as the spec defines them [MQTT-4.7]: '+' fills exactly one level (an empty one
too), '#' the rest of the topic including its parent, a filter starting with a wildcard never
matches a topic starting with '$' [MQTT-4.7.2-1]; and after UNSUBSCRIBE nothing more arrives.

Each scenario ends with a marker publish that the subscriber must receive: mosquitto keeps one
subscriber's messages from one publisher in order, so anything wrongly matched arrives before it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

from private_mosquitto import PrivateMosquitto

DELIVERY_DEADLINE_S = 5.0
MAX_DRAIN = 500  # messages a '#' subscriber may see before the marker

# Levels under the test's own root; "" is the root topic itself.
LEVELS = ["", "/a", "/temp", "/a/temp", "/b/temp", "//temp", "/a/b/temp"]
CASES = {
    "/+/temp": ["/a/temp", "/b/temp", "//temp"],  # one level, an empty level included
    "/+": ["/a", "/temp"],  # exactly one level: neither the parent nor deeper
    "/+/+/temp": ["/a/b/temp"],
    "/#": LEVELS,  # everything below, and the parent level itself [MQTT-4.7.1-2]
    "/a/#": ["/a", "/a/temp", "/a/b/temp"],
    "/a/temp": ["/a/temp"],  # no wildcard: that topic only
}


@pytest.mark.parametrize("suffix", list(CASES), ids=lambda s: s.strip("/").replace("/", "_") or "root")
def test_filter_matches_exactly_the_topics_the_spec_says(start_client, topic_root: bytes, suffix: str) -> None:
    subscriber, publisher = start_client(), start_client()
    subscriber.connect()
    publisher.connect()
    subscriber.subscribe(topic_root + suffix.encode(), qos=1)

    for level in LEVELS:
        topic = topic_root + level.encode()
        publisher.publish(topic, topic, qos=1)
    marker = topic_root + CASES[suffix][0].encode()
    publisher.publish(marker, b"marker", qos=1)

    expected = [topic_root + level.encode() for level in LEVELS if level in CASES[suffix]]
    received = subscriber.wait_messages(len(expected) + 1, DELIVERY_DEADLINE_S)
    assert [(t, m) for t, m, *_ in received] == [(t, t) for t in expected] + [(marker, b"marker")]


def _until(subscriber, topic: bytes) -> List[bytes]:
    """Topics the subscriber receives up to and including the first message on `topic`."""
    seen: List[bytes] = []
    for _ in range(MAX_DRAIN):
        got = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)
        if not got:
            break
        seen.append(got[0][0])
        if got[0][0] == topic:
            return seen
    raise AssertionError("no message on %r among %d received: %r" % (topic, len(seen), seen[-20:]))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A '#' subscriber on the shared broker would get every retained message the whole suite left
    there (a 200-node simulation leaves thousands): these tests get an empty broker of their own."""
    with PrivateMosquitto(tmp_path) as b:
        yield b


def test_filters_starting_with_a_wildcard_do_not_match_dollar_topics(
    start_client, topic_root: bytes, own_broker: PrivateMosquitto
) -> None:
    # mosquitto lets clients publish to $-topics other than $SYS, so the test makes its own.
    hidden, visible = b"$" + topic_root + b"/x", topic_root + b"/x"
    label = topic_root.split(b"/", 1)[1]
    hash_sub, plus_sub, dollar_sub, publisher = (
        start_client(max_packet=200000, port=own_broker.port) for _ in range(4)
    )
    for c in (hash_sub, plus_sub, dollar_sub, publisher):
        c.connect()
    hash_sub.subscribe(b"#", qos=1)
    plus_sub.subscribe(b"+/" + label + b"/x", qos=1)
    dollar_sub.subscribe(b"$" + topic_root + b"/#", qos=1)

    publisher.publish(hidden, b"hidden", qos=1)
    publisher.publish(visible, b"visible", qos=1)

    assert dollar_sub.wait_messages(1, DELIVERY_DEADLINE_S) == [(hidden, b"hidden", 0, 1, 0)]
    assert plus_sub.wait_messages(1, DELIVERY_DEADLINE_S) == [(visible, b"visible", 0, 1, 0)]
    assert [t for t in _until(hash_sub, visible) if t.startswith(b"$")] == []


def test_sys_topics_reach_a_sys_subscriber_but_not_a_hash_subscriber(
    start_client, topic_root: bytes, own_broker: PrivateMosquitto
) -> None:
    sys_sub = start_client(max_packet=200000, port=own_broker.port)
    hash_sub = start_client(max_packet=200000, port=own_broker.port)
    sys_sub.connect()
    hash_sub.connect()

    # mosquitto keeps $SYS/broker/version (and more) retained, so a subscriber gets it at once.
    sys_sub.subscribe(b"$SYS/#", qos=0)
    assert sys_sub.wait_messages(1, DELIVERY_DEADLINE_S)[0][0].startswith(b"$SYS/")

    hash_sub.subscribe(b"#", qos=0)  # any retained $SYS message would come now, before the marker
    marker = topic_root + b"/marker"
    hash_sub.publish(marker, b"marker", qos=1)
    assert [t for t in _until(hash_sub, marker) if t.startswith(b"$")] == []


def test_unsubscribed_filter_receives_nothing_more(start_client, topic_root: bytes) -> None:
    topic, marker = topic_root + b"/t", topic_root + b"/marker"
    subscriber, publisher = start_client(), start_client()
    subscriber.connect()
    publisher.connect()
    subscriber.subscribe(topic, qos=1)
    subscriber.subscribe(marker, qos=1)
    publisher.publish(topic, b"before", qos=1)
    assert subscriber.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"before", 0, 1, 0)]

    subscriber.unsubscribe(topic)
    publisher.publish(topic, b"after", qos=1)
    publisher.publish(marker, b"marker", qos=1)

    assert subscriber.wait_messages(1, DELIVERY_DEADLINE_S) == [(marker, b"marker", 0, 1, 0)]
