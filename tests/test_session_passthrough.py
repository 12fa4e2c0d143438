"""A large payload is written from the caller's own buffer, never copied into the session's `out`.

Copying it would need a second contiguous block of its size, which a board's fragmented heap often
lacks: under a 64 KiB heap that copy, not the payload, was what failed first. From
session.PASSTHROUGH bytes on, `out` gets only the packet's head and `passthrough` records where the
payload goes; pieces() gives the driver the buffers to write, in order, and the bytes on the wire
are exactly the whole packet.
"""
from __future__ import annotations

import sys

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt.packet import PUBACK, PUBREC  # noqa: E402
from mqtt.session import PASSTHROUGH, Session  # noqa: E402
from sans_io import ack, connack, connected, publish, receive, sent, sent_ack, sent_publish  # noqa: E402

BIG = bytes(range(256)) * (PASSTHROUGH // 256 + 4)  # above the threshold, and not all one byte


def wire(s: Session) -> bytes:
    """What a driver writes: the pieces back to back, then `out` emptied. None is empty: a driver
    writing an empty piece to a full socket would wait for room it does not need."""
    pieces = s.pieces()
    assert all(len(p) for p in pieces), [len(p) for p in pieces]
    data = b"".join(bytes(p) for p in pieces)
    s.out[0:] = b""
    return data


def test_a_large_payload_is_not_copied_and_the_wire_carries_the_whole_packet() -> None:
    s = connected()
    payload = bytearray(BIG)
    pid = s.publish(0, "t/big", payload, 1)
    assert len(s.out) < 16  # the head only: fixed header, topic, packet id
    assert len(s.passthrough) == 1 and s.passthrough[0][1] is payload  # the caller's own buffer
    assert wire(s) == publish(b"t/big", BIG, 1, pid)
    assert s.passthrough == [] and s.out == bytearray()


def test_a_payload_below_the_threshold_is_copied_as_before() -> None:
    s = connected()
    s.publish(0, "t", BIG[: PASSTHROUGH - 1], 0)
    assert s.passthrough == []
    assert sent(s) == [sent_publish(b"t", BIG[: PASSTHROUGH - 1], 0, 0, 0)]


def test_packets_keep_their_order_around_several_large_payloads() -> None:
    """Small packets queued between large ones (an ack, a small publish) land between them."""
    s = connected()
    first = s.publish(0, "a", BIG, 1)
    receive(s, publish(b"in", b"x", 2, pid=9))  # queues a PUBREC between the two large ones
    small = s.publish(0, "b", b"small", 1)
    assert s.publish(0, "c", BIG[:PASSTHROUGH], 0) == 0  # QoS 0: no packet id
    assert sent(s) == [
        sent_publish(b"a", BIG, 1, first, 0),
        sent_ack(PUBREC, 9),
        sent_publish(b"b", b"small", 1, small, 0),
        sent_publish(b"c", BIG[:PASSTHROUGH], 0, 0, 0),
    ]


def test_a_large_message_resent_after_a_reconnect_is_passed_through_again_with_dup() -> None:
    s = connected(clean_session=False)
    pid = s.publish(0, "t", BIG, 1)
    s.connection_lost()
    assert s.passthrough == []  # the lost connection's pending writes go with it
    s.connect(10, clean_session=False)
    receive(s, connack(present=1), 10)
    packets = sent(s)
    assert packets[-1] == sent_publish(b"t", BIG, 1, pid, 1)
    receive(s, ack(PUBACK, pid))
    assert len(s.flows) == 0
