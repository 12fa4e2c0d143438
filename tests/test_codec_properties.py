"""Every MQTT 3.1.1 packet survives encode -> frame -> decode, at any length and with any valid string.

Round trips use the encoder for the side that sends a packet (packet.py for the client,
broker_codec.py for the broker) and the decoder for the side that receives it. Each one goes through
parse_header and check_flags, the path Session.next_event takes, so the framing is tested with the
bodies. What a Session makes of whole byte streams is in test_session_stream_properties.py.
"""
from __future__ import annotations

import sys
from typing import List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import broker_codec, packet  # noqa: E402
from mqtt.errors import ProtocolError  # noqa: E402
from mqtt.packet import (  # noqa: E402
    CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
    SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
)

# Enough examples to find a framing slip, few enough that the file runs in a few seconds.
ROUND_TRIP = settings(max_examples=150, deadline=None)

# --- strategies ------------------------------------------------------------------------------------

# MQTT strings: any Unicode scalar value but U+0000 [MQTT-1.5.3-1, -2]; short, since the length
# limit has tests of its own.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
strings = text.map(str.encode)
topic_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00+#"), min_size=1, max_size=24).map(
    str.encode
)
payloads = st.binary(max_size=64)
pids = st.integers(1, 65535)
qos_levels = st.integers(0, 2)
bits = st.integers(0, 1)

# ill-formed UTF-8 that CPython's decoder and the spec both reject [MQTT-1.5.3-1]
ILL_FORMED_UTF8 = [
    b"\xff",  # never valid
    b"\x80",  # continuation byte without a lead byte
    b"a\xe2\x82",  # sequence cut short
    b"\xc0\x80",  # overlong U+0000 ("modified UTF-8")
    b"\xe0\x80\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # U+D800, a surrogate
    b"\xf4\x90\x80\x80",  # above U+10FFFF
]


def whole_packet(buf: bytes | bytearray) -> Tuple[int, int, memoryview]:
    """(type, flags, body) of the single packet in buf, framed and checked as Session does."""
    data = bytes(buf)
    span = packet.parse_header(data, 0, len(data), packet.MAX_REMAINING)
    assert span is not None, "header incomplete"
    assert span[1] == len(data), "the encoder wrote %d bytes for a %d-byte packet" % (len(data), span[1])
    kind, flags = data[0] >> 4, data[0] & 15
    packet.check_flags(kind, flags)
    return kind, flags, memoryview(data)[span[0]:span[1]]


# --- the fourteen packets --------------------------------------------------------------------------

wills = st.none() | st.tuples(topic_names, payloads, qos_levels, st.booleans())
# a password only with a user name [MQTT-3.1.2-22]
credentials = st.one_of(st.just((None, None)), st.tuples(strings, st.none() | payloads))


@ROUND_TRIP
@given(strings, st.integers(0, 65535), st.booleans(), wills, credentials)
def test_connect_round_trips(client_id: bytes, keepalive: int, clean: bool,
                             will: Optional[Tuple[bytes, bytes, int, bool]],
                             creds: Tuple[Optional[bytes], Optional[bytes]]) -> None:
    """The client's first packet must reach a broker intact, will and credentials included."""
    user, password = creds
    out = bytearray()
    packet.encode_connect(out, client_id, keepalive, clean, will, user, password)
    kind, _, body = whole_packet(out)
    assert kind == CONNECT
    expected_will = None if will is None else (will[0], will[1], will[2], int(will[3]))
    assert broker_codec.decode_connect(body) == (client_id, keepalive, int(clean), expected_will, user, password)


@ROUND_TRIP
@given(bits, st.integers(0, 255))
def test_connack_round_trips(present: int, code: int) -> None:
    """Session present and every return code, defined or not, reach the client as sent."""
    out = bytearray()
    broker_codec.encode_connack(out, present, code)
    kind, _, body = whole_packet(out)
    assert kind == CONNACK
    assert packet.decode_connack(body) == (present, code)


@ROUND_TRIP
@given(topic_names, payloads, qos_levels, bits, bits, pids)
def test_publish_round_trips(topic: bytes, payload: bytes, qos: int, retain: int, dup: int, pid: int) -> None:
    """Topic, payload, QoS, id and the retain and DUP flags all survive; QoS 0 carries no id."""
    pid = pid if qos else 0
    out = bytearray()
    broker_codec.encode_publish(out, dup << 3 | qos << 1 | retain, topic, payload, pid)
    kind, flags, body = whole_packet(out)
    assert kind == PUBLISH
    assert (flags & 1, flags >> 3 & 1) == (retain, dup)
    assert packet.decode_publish(flags, body) == (topic, pid, payload, qos)


def test_publish_with_a_four_byte_remaining_length_round_trips() -> None:
    """A 2 MiB payload needs the fourth length byte; the body must still line up to the byte."""
    payload = bytes(range(256)) * 8192
    out = bytearray()
    broker_codec.encode_publish(out, 1 << 1, b"big", payload, 7)
    kind, flags, body = whole_packet(out)
    assert out[1:5] == b"\x87\x80\x80\x01"  # 2 + 3 + 2 + 2097152 = 2097159 = 1 << 21 | 7
    assert kind == PUBLISH
    assert packet.decode_publish(flags, body) == (b"big", 7, payload, 1)


@ROUND_TRIP
@given(st.sampled_from([PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK]), pids)
def test_packet_id_acks_round_trip(kind: int, pid: int) -> None:
    """PUBACK, PUBREC, PUBREL (flags 0b0010 [MQTT-3.6.1-1]), PUBCOMP and UNSUBACK keep their id."""
    out = bytearray()
    packet.encode_ack(out, kind, pid)
    got_kind, _, body = whole_packet(out)
    assert got_kind == kind
    assert packet.decode_ack(kind, body) == pid


@ROUND_TRIP
@given(pids, st.lists(st.tuples(strings, qos_levels), min_size=1, max_size=8))
def test_subscribe_round_trips(pid: int, filters: List[Tuple[bytes, int]]) -> None:
    """Every filter and requested QoS arrives in order, so SUBACK codes line up with them."""
    out = bytearray()
    packet.encode_subscribe(out, pid, filters)
    kind, _, body = whole_packet(out)
    assert kind == SUBSCRIBE
    assert broker_codec.decode_subscribe(body) == (pid, filters)


@ROUND_TRIP
@given(pids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=8))
def test_suback_round_trips(pid: int, codes: List[int]) -> None:
    """Granted QoS levels and the 0x80 failure code reach the client one per filter."""
    out = bytearray()
    broker_codec.encode_suback(out, pid, codes)
    kind, _, body = whole_packet(out)
    assert kind == SUBACK
    assert packet.decode_suback(body) == (pid, codes)


@ROUND_TRIP
@given(pids, st.lists(strings, min_size=1, max_size=8))
def test_unsubscribe_round_trips(pid: int, filters: List[bytes]) -> None:
    """Every filter arrives in order."""
    out = bytearray()
    packet.encode_unsubscribe(out, pid, filters)
    kind, _, body = whole_packet(out)
    assert kind == UNSUBSCRIBE
    assert broker_codec.decode_unsubscribe(body) == (pid, filters)


@pytest.mark.parametrize("kind", [PINGREQ, PINGRESP, DISCONNECT])
def test_bodiless_packets_round_trip(kind: int) -> None:
    """PINGREQ, PINGRESP and DISCONNECT are two bytes with a zero length and no flags."""
    out = bytearray()
    packet.encode_empty(out, kind)
    got_kind, flags, body = whole_packet(out)
    assert (got_kind, flags, len(out)) == (kind, 0, 2)
    packet.decode_empty(kind, body)


# --- remaining length ------------------------------------------------------------------------------

# [MQTT-2.2.3] table 2.4: where the variable-length integer needs one more byte.
BOUNDARIES = [(0, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (2097151, 3), (2097152, 4), (268435455, 4)]


@pytest.mark.parametrize("length,size", BOUNDARIES)
def test_remaining_length_boundaries_take_the_spec_number_of_bytes(length: int, size: int) -> None:
    """The edges of table 2.4 are where an off-by-one in the varint code would show."""
    header = bytearray([PUBLISH << 4])
    packet.put_varint(header, length)
    assert len(header) == 1 + size
    assert packet.parse_header(header, 0, len(header), packet.MAX_REMAINING) == (1 + size, 1 + size + length)


@ROUND_TRIP
@given(st.integers(0, packet.MAX_REMAINING))
def test_remaining_length_round_trips_and_needs_its_whole_header(length: int) -> None:
    """Any length decodes back; every cut inside the header means "need more bytes", never an error."""
    header = bytearray([PUBLISH << 4])
    packet.put_varint(header, length)
    assert packet.parse_header(header, 0, len(header), packet.MAX_REMAINING) == (len(header), len(header) + length)
    for cut in range(len(header)):
        assert packet.parse_header(header, 0, cut, packet.MAX_REMAINING) is None


@ROUND_TRIP
@given(st.integers(0, 1 << 20), st.integers(0, 1 << 20))
def test_remaining_length_over_max_size_is_refused_from_the_header(length: int, max_size: int) -> None:
    """The size limit must be enforced before the body is buffered, or a board runs out of heap."""
    header = bytearray([PUBLISH << 4])
    packet.put_varint(header, length)
    if length > max_size:
        with pytest.raises(ProtocolError):
            packet.parse_header(header, 0, len(header), max_size)
    else:
        assert packet.parse_header(header, 0, len(header), max_size) is not None


def test_remaining_length_above_268435455_is_refused_by_the_encoder() -> None:
    """Four 7-bit groups are all MQTT has; a fifth byte would be a packet no broker accepts."""
    with pytest.raises(ValueError):
        packet.put_varint(bytearray(), packet.MAX_REMAINING + 1)


@pytest.mark.parametrize("header", [b"\x30\xff\xff\xff\xff\x01", b"\x30\x80\x80\x80\x80\x00", b"\x30\xff\xff\xff\xff"])
def test_remaining_length_above_four_bytes_is_a_protocol_error(header: bytes) -> None:
    """A fourth byte with its continuation bit set is malformed [MQTT-2.2.3], even before a fifth arrives."""
    with pytest.raises(ProtocolError):
        packet.parse_header(header, 0, len(header), packet.MAX_REMAINING)


# --- strings ---------------------------------------------------------------------------------------


@ROUND_TRIP
@given(text)
def test_valid_utf8_round_trips_as_an_mqtt_string(s: str) -> None:
    """str and bytes inputs give the same wire bytes, and get_str reads back what put_str wrote."""
    b = packet.utf8(s, "s")
    assert b == s.encode() == packet.utf8(s.encode(), "s")
    out = bytearray()
    packet.put_str(out, b)
    assert packet.get_str(out, 0) == (b, len(out))


@ROUND_TRIP
@given(text, text)
def test_string_containing_nul_is_refused(before: str, after: str) -> None:
    """U+0000 is forbidden in MQTT strings [MQTT-1.5.3-2], as str or as bytes."""
    s = before + "\x00" + after
    with pytest.raises(ValueError):
        packet.utf8(s, "s")
    with pytest.raises(ValueError):
        packet.utf8(s.encode(), "s")


@pytest.mark.parametrize("bad", ILL_FORMED_UTF8)
def test_ill_formed_utf8_is_refused_both_ways(bad: bytes) -> None:
    """Sending it is a ValueError; receiving it is a ProtocolError, the connection must close [MQTT-1.5.3-1]."""
    with pytest.raises(ValueError):
        packet.utf8(bad, "s")
    with pytest.raises(ProtocolError):
        packet.get_str(len(bad).to_bytes(2, "big") + bad, 0)


def test_str_with_a_lone_surrogate_is_refused() -> None:
    """A Python str can hold U+D800, which has no UTF-8 form [MQTT-1.5.3-1]."""
    with pytest.raises(ValueError):
        packet.utf8("a\ud800", "s")


@pytest.mark.parametrize("s", ["x" * 65536, "\u20ac" * 21846, b"x" * 65536])
def test_string_over_65535_bytes_is_refused(s: str | bytes) -> None:
    """The length prefix is 16 bits; the limit counts encoded bytes, not characters."""
    with pytest.raises(ValueError):
        packet.utf8(s, "s")


def test_string_of_exactly_65535_bytes_is_accepted() -> None:
    """The limit is inclusive."""
    assert len(packet.utf8("x" * 65535, "s")) == 65535
