"""An incoming PUBLISH above max_packet: acknowledged and dropped, never buffered whole.

MQTT 3.1.1 gives a client no way to refuse a message. Dropping the connection instead would not
help: a persistent session brings the same message back after every reconnect, and the client
would never get past it. So the session reads such a PUBLISH only as far as its packet id,
acknowledges it as its QoS requires, reports it as a DROPPED event, and discards the rest of its
body as it arrives, keeping nothing of it.
"""
from __future__ import annotations

import sys

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.packet import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL  # noqa: E402
from mqtt.session import DROPPED  # noqa: E402
from sans_io import ack, connected, publish, receive, sent, sent_ack  # noqa: E402

MAX = 100
BIG = b"x" * 5000  # 50 times max_packet
CHUNK = 64  # what a board reads at a time, give or take


def feed_in_chunks(s, data: bytes) -> list:
    """Feed data CHUNK bytes at a time, as a link would; every event, and the largest input
    buffer seen (the session must not keep the dropped body)."""
    events, largest = [], 0
    for i in range(0, len(data), CHUNK):
        s.receive_data(data[i:i + CHUNK], 0)
        largest = max(largest, len(s._in))
        ev = s.next_event()
        while ev is not None:
            events.append(ev)
            ev = s.next_event()
    return events, largest


def test_qos1_publish_above_max_packet_is_acked_dropped_and_the_next_one_delivered() -> None:
    s = connected(max_packet=MAX)
    events, largest = feed_in_chunks(s, publish(b"cmd", BIG, qos=1, pid=7) + publish(b"cmd", b"ON", qos=1, pid=8))
    assert events[0] == (DROPPED, b"cmd", 2 + 3 + 2 + len(BIG))  # the body's size: topic, id, payload
    assert events[1][:3] == (PUBLISH, b"cmd", b"ON")
    assert sent(s) == [sent_ack(PUBACK, 7), sent_ack(PUBACK, 8)]
    assert largest <= 2 * CHUNK  # never more than the chunk in hand and a partial packet
    assert s.too_large == 1


def test_qos0_publish_above_max_packet_is_dropped_without_an_ack() -> None:
    s = connected(max_packet=MAX)
    events, _ = feed_in_chunks(s, publish(b"t", BIG) + publish(b"t", b"after"))
    assert [e[0] for e in events] == [DROPPED, PUBLISH]
    assert events[1][2] == b"after"
    assert sent(s) == []


def test_dropped_publish_that_arrived_whole_leaves_the_next_packet_intact() -> None:
    s = connected(max_packet=MAX)
    s.receive_data(publish(b"t", BIG, qos=1, pid=3) + publish(b"t", b"next"), 0)
    assert s.next_event() == (DROPPED, b"t", 2 + 1 + 2 + len(BIG))
    assert s.next_event()[:3] == (PUBLISH, b"t", b"next")
    assert s.next_event() is None


def test_qos2_redelivery_of_a_dropped_publish_is_acknowledged_not_reported_again() -> None:
    """Held like any QoS 2 id until PUBREL, so the broker's DUP resend is the same message."""
    s = connected(max_packet=MAX)
    events, _ = feed_in_chunks(s, publish(b"t", BIG, qos=2, pid=9))
    assert events == [(DROPPED, b"t", 2 + 1 + 2 + len(BIG))]
    events, _ = feed_in_chunks(s, publish(b"t", BIG, qos=2, pid=9, dup=1))
    assert events == [(PUBREC, 9)]
    assert sent(s) == [sent_ack(PUBREC, 9), sent_ack(PUBREC, 9)]
    assert receive(s, ack(PUBREL, 9)) == (PUBREL, 9)
    assert sent(s) == [sent_ack(PUBCOMP, 9)]
    assert s.too_large == 1
