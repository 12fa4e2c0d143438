"""Payloads round-trip byte-identical through the asyncio client at QoS 1, at the sizes where
MQTT's Remaining Length grows a byte (127/128 and 16,383/16,384 [MQTT-2.2.3]) and beyond the
default max_packet, which both clients raise for this: 100 KB on CPython, 10 KB on MicroPython.
"""
from __future__ import annotations

import pytest

MAX_PACKET = 200_000
LARGE = {"cpython": 100 * 1024, "micropython": 10 * 1024}


def _pattern(n: int) -> bytes:
    """Bytes that differ with their offset, so a dropped or repeated span shows."""
    return bytes((i * 31 + (i >> 8)) & 0xFF for i in range(n))


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, "large"])
def test_payload_round_trips_byte_identical(run_aio, runtime: str, topic_root: bytes, size) -> None:
    topic = topic_root + b"/p"
    payload = _pattern(LARGE[runtime] if size == "large" else size)

    r = run_aio("pubsub", topic=topic, payloads=[payload], pub_qos=1, sub_qos=1, max_packet=MAX_PACKET)

    assert r["published"] == [True]
    assert len(r["received"]) == 1, "nothing arrived for a %d-byte payload" % len(payload)
    got_topic, got_payload, qos, retain, _dup = r["received"][0]
    assert (got_topic, qos, retain, len(got_payload)) == (topic, 1, 0, len(payload))
    assert got_payload == payload
