"""Subscriptions through the asyncio client: wildcard filters match what MQTT 3.1.1 says they
match [MQTT-4.7.1-2, MQTT-4.7.1-3], and after unsubscribe() nothing more arrives on that filter
[MQTT-3.10.4-1].

Negative claims need no waiting: a marker is published after everything else on a topic that
is still subscribed, and the broker delivers one publisher's messages to one subscriber in order.
"""
from __future__ import annotations

from typing import List

import pytest

LEVELS = [b"a/t", b"b/t", b"a/x", b"a/b/t", b"t", b"a"]


@pytest.mark.parametrize(
    "topic_filter, expected",
    [
        (b"+/t", [b"a/t", b"b/t"]),
        (b"a/#", [b"a/t", b"a/x", b"a/b/t", b"a"]),  # "#" also matches the parent level
        (b"+/+/t", [b"a/b/t"]),
        (b"#", LEVELS),
    ],
    ids=["plus_one_level", "hash_includes_parent", "two_plus", "hash_alone"],
)
def test_wildcard_filter_receives_exactly_the_matching_topics(
    run_aio, topic_root: bytes, topic_filter: bytes, expected: List[bytes]
) -> None:
    base = topic_root + b"/w"

    received = run_aio(
        "wildcards", topic_filter=base + b"/" + topic_filter,
        topics=[base + b"/" + t for t in LEVELS], marker_topic=topic_root + b"/marker",
    )

    assert received == [base + b"/" + t for t in expected]


def test_nothing_arrives_on_a_filter_after_unsubscribe(run_aio, topic_root: bytes) -> None:
    received = run_aio("unsubscribe", topic=topic_root + b"/u", marker_topic=topic_root + b"/marker")

    assert received == [b"before", b"marker"]
