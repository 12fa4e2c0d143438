"""Payloads round-trip byte-identical at QoS 1, at the sizes where MQTT's Remaining Length grows
a byte (127/128 and 16,383/16,384 [MQTT-2.2.3]) and well beyond the default max_packet.

Both clients get max_packet=200000: the default (16,384 bytes of packet body) refuses the larger
ones by design. The large case is 100 KB on CPython and 10 KB on MicroPython.
"""
from __future__ import annotations

import pytest

MAX_PACKET = 200_000
DELIVERY_DEADLINE_S = 10.0
LARGE = {"cpython": 100 * 1024, "micropython": 10 * 1024}
QOS1_HEADER = 4  # topic length field and packet id, besides the topic itself


def _pattern(n: int) -> bytes:
    """Bytes that differ with their offset, so a dropped or repeated span shows."""
    return bytes((i * 31 + (i >> 8)) & 0xFF for i in range(n))


def _round_trip(start_client, topic: bytes, payload: bytes) -> None:
    subscriber, publisher = start_client(max_packet=MAX_PACKET), start_client(max_packet=MAX_PACKET)
    subscriber.connect()
    publisher.connect()
    subscriber.subscribe(topic, qos=1)

    publisher.publish(topic, payload, qos=1)

    received = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)
    assert len(received) == 1, "nothing arrived for a %d-byte payload" % len(payload)
    got_topic, got_payload, retain, qos, _dup = received[0]
    assert (got_topic, retain, qos) == (topic, 0, 1)
    assert len(got_payload) == len(payload)
    assert got_payload == payload


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, "large"])
def test_payload_round_trips_byte_identical(start_client, runtime: str, topic_root: bytes, size) -> None:
    n = LARGE[runtime] if size == "large" else size
    _round_trip(start_client, topic_root + b"/p", _pattern(n))


@pytest.mark.parametrize("body", [127, 128, 16_383, 16_384])
def test_packet_at_a_remaining_length_boundary_round_trips(start_client, topic_root: bytes, body: int) -> None:
    # The PUBLISH body (topic, packet id, payload) is exactly `body` bytes, so its Remaining Length
    # sits on the edge where the encoding grows from one byte to two, or two to three.
    topic = topic_root + b"/b"
    _round_trip(start_client, topic, _pattern(body - QOS1_HEADER - len(topic)))
