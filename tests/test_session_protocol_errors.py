"""What a broker must never send: each case is a ProtocolError, so the driver drops the connection
instead of acting on a packet it cannot trust.

Built with tests/sans_io.py; the ids in brackets are the MQTT 3.1.1 rules broken.
"""
from __future__ import annotations

import sys
from typing import List

import pytest

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import packet  # noqa: E402
from mqtt.errors import ProtocolError  # noqa: E402
from mqtt.packet import (  # noqa: E402
    CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, SUBACK, SUBSCRIBE, UNSUBSCRIBE,
)
from mqtt.session import Session  # noqa: E402
from sans_io import ack, connack, connected, empty, publish, receive, suback  # noqa: E402

# --- connection setup -----------------------------------------------------------------------------


@pytest.mark.parametrize("first", [publish(b"t", b"m"), ack(PUBACK, 1), suback(1, [0]), empty(PINGRESP),
                                   publish(b"t", b"x" * 40, 1, 1)],
                         ids=["publish", "puback", "suback", "pingresp", "publish_above_max_packet"])
def test_packet_before_connack_is_a_protocol_error(first: bytes) -> None:
    """[MQTT-3.2.0-1] the first packet from the server is CONNACK; a PUBLISH too large to take is no
    exception (it is not to be acknowledged and dropped as it would be once connected)."""
    s = Session("node", max_packet=16)
    s.connect(0)
    with pytest.raises(ProtocolError):
        receive(s, first)


def test_session_present_on_a_clean_session_is_a_protocol_error() -> None:
    """[MQTT-3.2.2-1] a broker claiming state we asked it to drop is confused about who we are."""
    s = Session("node")
    s.connect(0, clean_session=True)
    with pytest.raises(ProtocolError):
        receive(s, connack(1, 0))


def test_second_connack_is_a_protocol_error() -> None:
    """[MQTT-3.2.0-1] CONNACK comes once per connection."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, connack())


# --- the fixed header -----------------------------------------------------------------------------


@pytest.mark.parametrize("first_byte", [0x00, 0xF0])
def test_reserved_packet_types_are_protocol_errors(first_byte: int) -> None:
    """Types 0 and 15 are reserved [MQTT-2.2.1]."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, bytes([first_byte, 0]))


def _server_bound(kind: int) -> bytes:
    out = bytearray()
    if kind == CONNECT:
        packet.encode_connect(out, b"peer", 60, True, None, None, None)
    elif kind == SUBSCRIBE:
        packet.encode_subscribe(out, 1, [(b"a", 0)])
    elif kind == UNSUBSCRIBE:
        packet.encode_unsubscribe(out, 1, [b"a"])
    else:
        packet.encode_empty(out, kind)
    return bytes(out)


@pytest.mark.parametrize("kind", [CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT])
def test_packets_only_a_server_receives_are_protocol_errors(kind: int) -> None:
    """A broker never sends these; one that does is not speaking MQTT to us."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, _server_bound(kind))


@pytest.mark.parametrize("data", [b"\x42\x02\x00\x01", b"\x60\x02\x00\x01", b"\xd1\x00"])
def test_fixed_header_flags_other_than_the_spec_are_protocol_errors(data: bytes) -> None:
    """[MQTT-2.2.2-2] PUBACK flags 0, PUBREL flags 0b0010, PINGRESP flags 0: anything else is malformed."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, data)


def test_packet_over_max_packet_is_refused_as_soon_as_its_header_is_seen() -> None:
    """A board cannot buffer a body it has no room for, so the header alone must condemn any
    packet but a PUBLISH (which is dropped instead: test_session_oversized.py)."""
    s = connected(max_packet=100)
    at_limit = publish(b"t", b"x" * 97)  # body: topic length 2 + topic 1 + payload 97
    assert len(at_limit) == 2 + 100
    assert receive(s, at_limit)[0] == PUBLISH
    header = bytearray([SUBACK << 4])
    packet.put_varint(header, 101)
    s.receive_data(header, 0)  # the header only: no body byte has arrived
    with pytest.raises(ProtocolError):
        s.next_event()


# --- PUBLISH --------------------------------------------------------------------------------------


def test_incoming_publish_with_qos_3_is_a_protocol_error() -> None:
    """[MQTT-3.3.1-4] both QoS bits set is malformed."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, publish(b"t", b"m", 3, 1))


@pytest.mark.parametrize("qos", [1, 2])
def test_incoming_publish_with_packet_id_0_is_a_protocol_error(qos: int) -> None:
    """[MQTT-2.3.1-1] a QoS 1/2 PUBLISH needs a non-zero id: 0 could never be acknowledged."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, publish(b"t", b"m", qos, 0))


@pytest.mark.parametrize("topic", [b"a/+", b"a/#", b"#", b"+"])
def test_incoming_publish_to_a_wildcard_topic_is_a_protocol_error(topic: bytes) -> None:
    """[MQTT-3.3.2-2] a topic name has no wildcards; such a PUBLISH would match filters wrongly."""
    s = connected()
    with pytest.raises(ProtocolError):
        receive(s, publish(topic, b"m"))


# --- acknowledgements -----------------------------------------------------------------------------


def test_pubcomp_before_pubrec_is_a_protocol_error() -> None:
    """A broker completing a flow it never received cannot be trusted with the next one."""
    s = connected()
    pid = s.publish(0, "t", b"m", 2)
    with pytest.raises(ProtocolError):
        receive(s, ack(PUBCOMP, pid))


@pytest.mark.parametrize("codes", [[0], [0, 1, 2]])
def test_suback_with_the_wrong_number_of_codes_is_a_protocol_error(codes: List[int]) -> None:
    """[MQTT-3.9.3-1] one return code per filter: any other count leaves grants unknowable."""
    s = connected()
    pid = s.subscribe(0, [("a", 1), ("b", 2)])
    with pytest.raises(ProtocolError):
        receive(s, suback(pid, codes))
