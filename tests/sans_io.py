"""A broker's packets, built with lib/mqtt's codec, and a Session driven without sockets or clock.

Shared by the test_session*.py files: build what the broker sends (connack, ack, publish, ...),
feed it (receive), and read back what the session queued (sent) as (type, flags, body) tuples,
comparable with sent_publish / sent_ack.
"""
from __future__ import annotations

import sys
from typing import List, Tuple

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import broker_codec, packet  # noqa: E402
from mqtt.packet import CONNACK, PUBLISH  # noqa: E402
from mqtt.session import Session  # noqa: E402

Sent = Tuple[int, int, bytes]  # (type, flags, body) of one packet the session queued


def connack(present: int = 0, code: int = 0) -> bytes:
    out = bytearray()
    broker_codec.encode_connack(out, present, code)
    return bytes(out)


def ack(kind: int, pid: int) -> bytes:
    out = bytearray()
    packet.encode_ack(out, kind, pid)
    return bytes(out)


def publish(topic: bytes, payload: bytes, qos: int = 0, pid: int = 0, dup: int = 0, retain: int = 0) -> bytes:
    out = bytearray()
    broker_codec.encode_publish(out, dup << 3 | qos << 1 | retain, topic, payload, pid)
    return bytes(out)


def suback(pid: int, codes: List[int]) -> bytes:
    out = bytearray()
    broker_codec.encode_suback(out, pid, codes)
    return bytes(out)


def empty(kind: int) -> bytes:
    out = bytearray()
    packet.encode_empty(out, kind)
    return bytes(out)


def connected(clean_session: bool = True, **kwargs: int) -> Session:
    """A session past CONNACK at time 0, with nothing left to send."""
    s = Session("node", **kwargs)
    s.connect(0, clean_session=clean_session)
    assert receive(s, connack()) == (CONNACK, 0)
    s.out[0:] = b""
    return s


def receive(s: Session, data: bytes, now: int = 0) -> tuple:
    """Feed one whole packet and return its event."""
    s.receive_data(data, now)
    event = s.next_event()
    assert s.next_event() is None  # one packet, one event
    return event


def sent(s: Session) -> List[Sent]:
    """Split what the session queued into packets, and empty `out` as a driver would after writing
    (with large payloads written from their own buffers, as Session.pieces() lists them)."""
    data = b"".join(bytes(p) for p in s.pieces()) if s.passthrough else bytes(s.out)
    s.out[0:] = b""
    packets: List[Sent] = []
    start = 0
    while start < len(data):  # each round consumes at least the 2-byte header
        span = packet.parse_header(data, start, len(data), packet.MAX_REMAINING)
        assert span is not None and span[1] <= len(data), "a truncated packet in out"
        packets.append((data[start] >> 4, data[start] & 15, data[span[0]:span[1]]))
        start = span[1]
    return packets


def sent_publish(topic: bytes, payload: bytes, qos: int, pid: int, dup: int) -> Sent:
    """The (type, flags, body) a PUBLISH with these fields must have."""
    _, flags, body = sent_packets(publish(topic, payload, qos, pid, dup))[0]
    return PUBLISH, flags, body


def sent_packets(data: bytes) -> List[Sent]:
    s = Session("x")
    s.out.extend(data)
    return sent(s)


def sent_ack(kind: int, pid: int) -> Sent:
    return sent_packets(ack(kind, pid))[0]
