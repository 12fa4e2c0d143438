"""The outbox: what publish() keeps while it cannot send, bounded in messages and in bytes, and
sent oldest first once connected."""
from __future__ import annotations

import sys

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.packet import CONNACK  # noqa: E402
from mqtt.session import Session  # noqa: E402
from sans_io import connack, receive, sent, sent_publish  # noqa: E402


def offline(**bounds: int) -> Session:
    s = Session("node", **bounds)
    s.connect(0)
    s.out[0:] = b""
    return s


def test_queued_messages_go_out_oldest_first_once_connected() -> None:
    s = offline()
    for n in range(3):
        assert s.publish(0, "t", b"%d" % n, 1) is None
    assert receive(s, connack()) == (CONNACK, 0)
    assert sent(s) == [sent_publish(b"t", b"%d" % n, 1, n + 1, 0) for n in range(3)]


def test_past_queue_count_the_oldest_message_is_dropped_and_counted() -> None:
    s = offline(queue_count=2)
    for n in range(3):
        s.publish(0, "t", b"%d" % n, 1)
    assert [m[1] for m in s.outbox.items] == [b"1", b"2"]
    assert s.outbox.dropped == 1


def test_past_queue_bytes_the_oldest_messages_are_dropped_until_the_new_one_fits() -> None:
    s = offline(queue_bytes=250)
    for n in range(3):
        s.publish(0, "t", bytes([n]) * 99, 1)  # 100 bytes each with the topic
    assert [m[1][0] for m in s.outbox.items] == [1, 2]
    assert s.outbox.bytes == 200
    assert s.outbox.dropped == 1


def test_a_message_larger_than_queue_bytes_alone_is_dropped_and_the_queue_kept() -> None:
    """Making room for a message that can never fit would throw every queued message away first."""
    s = offline(queue_bytes=1000)
    for n in range(5):
        s.publish(0, "t", b"%d" % n * 100, 1)
    s.publish(0, "t", b"x" * 2000, 1)
    assert [m[1][:1] for m in s.outbox.items] == [b"0", b"1", b"2", b"3", b"4"]
    assert s.outbox.dropped == 1
    assert s.outbox.bytes == 5 * 101
