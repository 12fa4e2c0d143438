"""Bad arguments are caught on the client, before a byte is sent: a publish topic with a wildcard
[MQTT-3.3.2-2] or NUL [MQTT-1.5.3-2], a filter with a misplaced wildcard [MQTT-4.7.1-2/3]. The
connection is unharmed: the next good call works.

A relay (tests/tcp_relay.py) shows what reached the wire: only CONNECT and the good packet.

Not covered: SubscribeRefused. mosquitto 2.0 answers 0x80 only when an ACL denies the filter, and
the test broker's listeners have no ACL; unknown $-topics, $SYS and $share filters are all granted.
"""
from __future__ import annotations

import pytest

from client_process import RemoteError
from mqtt_frames import CONNECT, PUBLISH, SUBSCRIBE, split_frames
from tcp_relay import TcpRelay

BAD_TOPICS = {"plus": b"/+", "hash": b"/#", "plus_inside": b"/+/x", "nul": b"/a\x00b"}
BAD_FILTERS = {"hash_not_last": b"/#/b", "hash_in_level": b"/b#", "plus_in_level": b"/a+/b", "hash_then_plus": b"/#/+"}


def _utf8_field(body: bytes) -> bytes:
    """The length-prefixed string a PUBLISH or SUBSCRIBE body starts with (after a SUBSCRIBE's id)."""
    return body[2 : 2 + int.from_bytes(body[:2], "big")]


@pytest.mark.parametrize("suffix", list(BAD_TOPICS.values()), ids=list(BAD_TOPICS))
def test_publish_to_a_bad_topic_raises_valueerror_and_sends_nothing(
    start_client, broker, topic_root: bytes, suffix: bytes
) -> None:
    good = topic_root + b"/ok"
    with TcpRelay(broker.host, broker.port) as relay:
        client = start_client(port=relay.port)
        client.connect()

        with pytest.raises(RemoteError) as bad:
            client.publish(topic_root + suffix, b"x", qos=1)
        assert bad.value.name == "ValueError"
        client.publish(good, b"x", qos=1)  # returns once PUBACK came: the link still works

        sent = split_frames(relay.connections[0].upstream.chunks())
    assert [f.kind for f in sent] == [CONNECT, PUBLISH]
    assert _utf8_field(sent[1].body) == good


@pytest.mark.parametrize("suffix", list(BAD_FILTERS.values()), ids=list(BAD_FILTERS))
def test_subscribe_with_a_misplaced_wildcard_raises_valueerror_and_sends_nothing(
    start_client, broker, topic_root: bytes, suffix: bytes
) -> None:
    good = topic_root + b"/ok/#"
    with TcpRelay(broker.host, broker.port) as relay:
        client = start_client(port=relay.port)
        client.connect()

        with pytest.raises(RemoteError) as bad:
            client.subscribe(topic_root + suffix, qos=1)
        assert bad.value.name == "ValueError"
        assert client.subscribe(good, qos=1) == 1

        sent = split_frames(relay.connections[0].upstream.chunks())
    assert [f.kind for f in sent] == [CONNECT, SUBSCRIBE]
    assert _utf8_field(sent[1].body[2:]) == good  # after the packet id
