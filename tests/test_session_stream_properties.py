"""A Session fed whole byte streams: hostile ones raise an MQTTException and nothing else, valid
ones give the same events however TCP splits them.

Drivers catch MQTTException and reconnect; any other exception (an IndexError from a decoder, say)
would take the program down, so the fuzzing here holds the session to that contract. The valid
streams are generated as packet specs so each test can predict the events exactly.
"""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import broker_codec, packet  # noqa: E402
from mqtt.errors import MQTTException  # noqa: E402
from mqtt.packet import (  # noqa: E402
    CONNACK, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, UNSUBACK,
)
from mqtt.session import Session  # noqa: E402
from sans_io import connack  # noqa: E402

# Enough examples to reach every decoder through framing, few enough for a few seconds.
STREAMS = settings(max_examples=200, deadline=None)

Event = tuple

# The packet fields (as in test_codec_properties.py, kept short: sizes are not the point here).
topic_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00+#"), min_size=1, max_size=24).map(
    str.encode
)
payloads = st.binary(max_size=64)
pids = st.integers(1, 65535)
qos_levels = st.integers(0, 2)
bits = st.integers(0, 1)


def fresh_session() -> Session:
    """A session that has sent CONNECT and waits for CONNACK."""
    s = Session("fuzz", keepalive=60)
    s.connect(0)
    return s


def busy_session() -> Session:
    """A connected session with state a broker can poke at: QoS 1/2 flows, a SUBSCRIBE, an UNSUBSCRIBE."""
    s = Session("fuzz", keepalive=60)
    s.connect(0, clean_session=False)
    s.receive_data(connack(), 0)
    assert s.next_event() == (CONNACK, 0)
    s.publish(0, "a", b"1", 1)
    s.publish(0, "b", b"2", 2)
    s.publish(0, "c", b"3", 2)
    s.subscribe(0, [("x/#", 1), ("y", 2)])
    s.unsubscribe(0, ["z"])
    return s


def feed(s: Session, chunks: Sequence[bytes]) -> Tuple[List[Event], Optional[MQTTException]]:
    """Events from chunks fed one by one, and the MQTTException that ended them, if one did.

    Any other exception propagates, failing the test. Each packet is at least two bytes, so the
    loop over next_event is bounded by the bytes fed so far.
    """
    events: List[Event] = []
    fed = 0
    for chunk in chunks:
        s.receive_data(chunk, 0)
        fed += len(chunk)
        for _ in range(fed // 2 + 1):
            try:
                ev = s.next_event()
            except MQTTException as e:
                return events, e
            if ev is None:
                break
            assert isinstance(ev, tuple)
            events.append(ev)
        else:
            raise AssertionError("more events than packets could fit in %d bytes" % fed)
    return events, None


@st.composite
def split(draw: st.DrawFn, data: bytes) -> List[bytes]:
    """data cut at random places (possibly into single bytes, possibly not at all)."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@st.composite
def framed_junk(draw: st.DrawFn) -> bytes:
    """Packets with a correct length but random type, flags and body: gets past framing into the decoders."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 6))):
        body = draw(st.binary(max_size=24))
        out.append(draw(st.integers(0, 255)))
        packet.put_varint(out, len(body))
        out.extend(body)
    return bytes(out)


# One server packet as a spec the test can both encode and predict the event of.
server_specs = st.one_of(
    st.tuples(st.just(PUBLISH), topic_names, payloads, qos_levels, bits, bits, pids),
    st.tuples(st.sampled_from([PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK]), pids),
    st.tuples(st.just(SUBACK), pids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=4)),
    st.tuples(st.just(PINGRESP)),
)
# Fewer QoS 2 messages than the session holds (MAX_HELD) so a valid stream never trips that limit.
server_streams = st.lists(server_specs, max_size=30)


def encode_packets(specs: Sequence[tuple]) -> List[bytes]:
    """CONNACK, then each spec as the bytes of one packet."""
    packets = [connack()]
    for spec in specs:
        out = bytearray()
        kind = spec[0]
        if kind == PUBLISH:
            _, topic, payload, qos, retain, dup, pid = spec
            broker_codec.encode_publish(out, dup << 3 | qos << 1 | retain, topic, payload, pid if qos else 0)
        elif kind == SUBACK:
            broker_codec.encode_suback(out, spec[1], spec[2])
        elif kind == PINGRESP:
            packet.encode_empty(out, PINGRESP)
        else:
            packet.encode_ack(out, kind, spec[1])
        packets.append(bytes(out))
    return packets


def encode_stream(specs: Sequence[tuple]) -> bytes:
    return b"".join(encode_packets(specs))


def predicted_events(specs: Sequence[tuple]) -> List[Event]:
    """What a fresh session must report: a QoS 2 id is delivered once until its PUBREL [MQTT-4.3.3-2]."""
    held = set()
    events: List[Event] = [(CONNACK, 0)]
    for spec in specs:
        kind = spec[0]
        if kind == PUBLISH:
            _, topic, payload, qos, retain, dup, pid = spec
            if qos == 2 and pid in held:
                events.append((PUBREC, pid))
                continue
            if qos == 2:
                held.add(pid)
            events.append((PUBLISH, topic, payload, qos, retain, dup))
        elif kind == SUBACK:
            events.append((SUBACK, spec[1], spec[2]))
        elif kind == PINGRESP:
            events.append((PINGRESP,))
        else:
            if kind == PUBREL:
                held.discard(spec[1])
            events.append((kind, spec[1]))
    return events


@st.composite
def one_byte_changed(draw: st.DrawFn) -> bytes:
    """A valid server stream with one byte overwritten: the corruption a fuzzer finds bugs with."""
    data = draw(server_streams.map(encode_stream))
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]


hostile_input = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: connack() + b),
    framed_junk(),
    framed_junk().map(lambda b: connack() + b),
    one_byte_changed(),
)
CLIENT_BOUND = {CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP}


@STREAMS
@given(st.booleans(), hostile_input.flatmap(split))
def test_any_byte_stream_gives_events_or_an_mqtt_exception(busy: bool, chunks: List[bytes]) -> None:
    """A broker (or a corrupted link) must never crash the client with, say, an IndexError:
    drivers catch MQTTException and reconnect, anything else takes down the program."""
    s = busy_session() if busy else fresh_session()
    events, _ = feed(s, chunks)  # feed() lets any exception but MQTTException escape: that fails the test
    assert all(ev[0] in CLIENT_BOUND for ev in events)


@STREAMS
@given(server_streams, st.data())
def test_truncated_valid_stream_gives_the_events_of_its_whole_packets_and_no_error(
        specs: List[tuple], data: st.DataObject) -> None:
    """A packet cut short is "need more bytes": never an error, never a partial event."""
    packets = encode_packets(specs)
    stream = b"".join(packets)
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    complete = 0
    end = 0
    for p in packets:
        end += len(p)
        if end > cut:
            break
        complete += 1
    assert feed(fresh_session(), [stream[:cut]]) == (predicted_events(specs)[:complete], None)


@STREAMS
@given(server_streams.flatmap(lambda specs: st.tuples(st.just(specs), split(encode_stream(specs)))))
def test_valid_stream_gives_the_same_events_however_it_is_split(case: Tuple[List[tuple], List[bytes]]) -> None:
    """TCP delivers bytes, not packets: every split must give the events and replies of the whole."""
    specs, chunks = case
    whole = fresh_session()
    events, error = feed(whole, [encode_stream(specs)])
    assert error is None
    assert events == predicted_events(specs)
    pieces = fresh_session()
    assert feed(pieces, chunks) == (events, None)
    assert pieces.out == whole.out
