"""The sans-I/O Session keeps MQTT 3.1.1's books for one client: packet ids, QoS 1 and 2 flows in
both directions, subscriptions, the CONNACK answer, and what it refuses from the program.

No sockets and no clock: tests/sans_io.py builds the broker's packets and reads back what the
session queued. Malformed input, timers and reconnects have files of their own
(test_session_protocol_errors.py, test_session_timers.py, test_session_reconnect.py).
"""
from __future__ import annotations

import binascii
import gc
import struct
import sys
import tracemalloc
import weakref

import pytest

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import packet  # noqa: E402
from mqtt.errors import ConnectionRefused  # noqa: E402
from mqtt.packet import CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK  # noqa: E402
from mqtt.session import Session  # noqa: E402
from mqtt.store import FileStore  # noqa: E402
from sans_io import (  # noqa: E402
    ack, connack, connected, publish, receive, sent, sent_ack, sent_publish, suback,
)

# --- packet ids -----------------------------------------------------------------------------------


def test_packet_ids_run_from_1_to_65535_then_wrap_skipping_ids_in_flight() -> None:
    """[MQTT-2.3.1-1] ids are non-zero 16-bit; [MQTT-2.3.1-2] an id is not reused while its flow is
    open, whether a PUBLISH or a SUBSCRIBE holds it. Walks the whole id space (about 0.3 s)."""
    s = connected()
    held_by_publish = s.publish(0, "t", b"", 1)
    held_by_subscribe = s.subscribe(0, [("f", 0)])
    assert (held_by_publish, held_by_subscribe) == (1, 2)
    seen = []
    for _ in range(65533):  # ids 3..65535, each acknowledged at once
        pid = s.publish(0, "t", b"", 1)
        seen.append(pid)
        receive(s, ack(PUBACK, pid))
        s.out[0:] = b""
    assert seen == list(range(3, 65536))
    assert s.publish(0, "t", b"", 1) == 3  # wrapped past 0, 1 and 2


def test_qos0_publish_has_no_packet_id_and_no_flow() -> None:
    """QoS 0 is fire and forget: nothing to acknowledge, nothing to resend."""
    s = connected()
    assert s.publish(0, "t", b"m", 0) == 0
    assert len(s.flows) == 0
    assert sent(s) == [sent_publish(b"t", b"m", 0, 0, 0)]


# --- outgoing flows -------------------------------------------------------------------------------


def test_qos1_publish_completes_on_puback() -> None:
    """[MQTT-4.3.2] the flow stays open until PUBACK, whose event tells the driver it is done."""
    s = connected()
    pid = s.publish(0, "t", b"m", 1)
    assert sent(s) == [sent_publish(b"t", b"m", 1, pid, 0)]
    assert len(s.flows) == 1
    assert receive(s, ack(PUBACK, pid)) == (PUBACK, pid)
    assert len(s.flows) == 0
    assert sent(s) == []


def test_qos2_publish_completes_after_pubrec_pubrel_pubcomp() -> None:
    """[MQTT-4.3.3-1] PUBREC is answered with PUBREL; only PUBCOMP ends the flow."""
    s = connected()
    pid = s.publish(0, "t", b"m", 2)
    assert sent(s) == [sent_publish(b"t", b"m", 2, pid, 0)]
    assert receive(s, ack(PUBREC, pid)) == (PUBREC, pid)
    assert sent(s) == [sent_ack(PUBREL, pid)]
    assert len(s.flows) == 1
    assert receive(s, ack(PUBCOMP, pid)) == (PUBCOMP, pid)
    assert len(s.flows) == 0
    assert sent(s) == []


def test_pubrec_is_saved_by_the_store_before_the_pubrel_leaves(tmp_path) -> None:
    """After PUBREC the store records the flow as released, payload kept: a reset between PUBREL
    and PUBCOMP then resumes with the PUBREL on a persistent session (a second PUBLISH with the
    same id would be a new message to a broker that already released it: delivered twice). On a
    clean session, which discards the broker's copy, it goes out again as a new message."""
    s = connected(clean_session=False)
    store = FileStore(str(tmp_path / "mqtt.dat"), s)
    pid = s.publish(0, "t", b"m", 2)
    store.sync()
    assert [r[2] for r in store.load()] == [0]  # sent, awaiting PUBREC
    receive(s, ack(PUBREC, pid))
    store.sync()  # what a driver does before writing the PUBREL
    assert [(r[0], r[2], r[4]) for r in store.load()] == [(pid, 1, b"m")]  # released

    for clean in (False, True):
        after_reset = Session("node")
        FileStore(str(tmp_path / "mqtt.dat"), after_reset)
        after_reset.connect(0, clean_session=clean)
        sent(after_reset)  # the CONNECT
        assert receive(after_reset, connack(0 if clean else 1)) == (CONNACK, 0 if clean else 1)
        if clean:
            (again,) = sent(after_reset)
            assert again[0] == PUBLISH and packet.decode_publish(again[1], again[2])[0::2] == (b"t", b"m")
        else:
            assert sent(after_reset) == [sent_ack(PUBREL, pid)]


def test_released_flows_are_restored_even_past_a_smaller_window(tmp_path) -> None:
    """A store saved with two QoS 2 flows past PUBREC, restored into a session whose in-flight
    window is 1: both come back as flows and resume with PUBREL. Before, the one past the window
    was dropped: its message was lost whenever the PUBREL had not reached the broker."""
    s = connected(clean_session=False)
    store = FileStore(str(tmp_path / "mqtt.dat"), s)
    pids = [s.publish(0, "t", b"a", 2), s.publish(0, "t", b"b", 2)]
    for pid in pids:
        receive(s, ack(PUBREC, pid))
    store.sync()

    after_reset = Session("node", max_inflight=1)
    FileStore(str(tmp_path / "mqtt.dat"), after_reset)
    after_reset.connect(0, clean_session=False)
    sent(after_reset)  # the CONNECT
    assert receive(after_reset, connack(1)) == (CONNACK, 1)
    assert sent(after_reset) == [sent_ack(PUBREL, pids[0]), sent_ack(PUBREL, pids[1])]


def _as_old_store(path) -> None:
    """Rewrite a store file as the format before payloads were kept past PUBREC (b"MQS1")."""
    data = b"MQS1" + path.read_bytes()[4:-4]
    path.write_bytes(data + struct.pack(">I", binascii.crc32(data) & 0xFFFFFFFF))


def test_a_released_flow_from_an_older_store_without_its_payload_is_never_sent_empty(tmp_path) -> None:
    """b"MQS1" files saved a released QoS 2 flow without its payload. Restored, such a flow
    resumes with PUBREL when the broker kept the session; without one it cannot be published
    again (an empty PUBLISH would be a different message, and a retained one would clear the
    topic): it is counted as dropped on a clean session, and still PUBRELed on a lost one."""
    path = tmp_path / "mqtt.dat"
    FileStore(str(path)).save([(7, 2, 1, b"t", b"", 1)])
    _as_old_store(path)
    assert FileStore(str(path)).load() == [(7, 2, 1, b"t", None, 1)]

    for clean, present in ((False, 1), (False, 0), (True, 0)):
        after_reset = Session("node")
        FileStore(str(path), after_reset)
        after_reset.connect(0, clean_session=clean)
        sent(after_reset)  # the CONNECT
        assert receive(after_reset, connack(present)) == (CONNACK, present)
        assert sent(after_reset) == ([] if clean else [sent_ack(PUBREL, 7)])
        assert after_reset.outbox.dropped == (1 if clean else 0)


def test_a_flow_without_its_payload_keeps_that_mark_through_a_save(tmp_path) -> None:
    """Saved again (b"MQS2"), a payload-less released flow stays without one: read back as an
    empty payload, it would be published empty if the broker lost the session."""
    path = str(tmp_path / "mqtt.dat")
    FileStore(path).save([(7, 2, 1, b"t", None, 0), (8, 2, 1, b"t", b"", 0)])
    assert [r[4] for r in FileStore(path).load()] == [None, b""]


@pytest.mark.parametrize("payload", [None, 21.5, ["a"]], ids=["none", "float", "list"])
def test_a_payload_that_is_neither_bytes_nor_str_is_refused_before_anything_changes(payload) -> None:
    """Before, publish(topic, None, qos=1) added the flow and then failed on len(None): the flow
    stayed, every reconnect's resend raised TypeError, and a store brought it back at every boot."""
    s = connected(clean_session=False)
    with pytest.raises(TypeError, match="payload must be bytes or str"):
        s.publish(0, "t", payload, 1)
    assert (s.flows, bytes(s.out), s.dirty) == ([], b"", False)


def test_a_store_record_marked_without_payload_must_be_a_released_qos2_flow(tmp_path) -> None:
    path = tmp_path / "mqtt.dat"
    FileStore(str(path)).save([(7, 1, 0, b"t", None, 0)])  # a QoS 1 flow cannot lack its payload
    store = FileStore(str(path))
    assert store.load() == [] and "bad record" in store.problem


def test_a_completed_flows_record_carries_the_next_message_and_only_that() -> None:
    """A completed flow's record is filled again by the next flow (no allocation per message):
    here a QoS 1 flow's, by a QoS 2 one whose resend after a reconnect must be its own packet,
    with nothing of the first left in it; the finished record keeps no message alive."""
    s = connected(clean_session=False)

    class Payload(bytearray):  # bytes cannot be weakly referenced, nor can its subclasses
        pass

    first = Payload(b"first")
    a = s.publish(0, "a", first, 1)
    record = s.flows[0]
    receive(s, ack(PUBACK, a))
    probe = weakref.ref(first)
    del first
    gc.collect()
    assert probe() is None  # the completed record let go of the payload
    s.out[0:] = b""
    b = s.publish(5, "b", b"second", 2)
    assert s.flows == [[b, 2, 0, b"b", b"second", False, 5]]
    assert s.flows[0] is record  # the same list, filled again
    s.connection_lost()
    s.connect(10, clean_session=False)
    s.out[0:] = b""
    receive(s, connack(1, 0), now=10)
    assert sent(s) == [sent_publish(b"b", b"second", 2, b, 1)]


@pytest.mark.parametrize("kind", [PUBACK, PUBREC, PUBCOMP])
def test_acks_for_unknown_ids_are_returned_and_change_nothing(kind: int) -> None:
    """Brokers repeat acks after a reconnect; an ack for an id not in flight is no error and must
    not touch the flows that are."""
    s = connected()
    qos1 = s.publish(0, "a", b"1", 1)
    qos2 = s.publish(0, "b", b"2", 2)
    s.out[0:] = b""
    assert receive(s, ack(kind, 999)) == (kind, 999)
    assert sent(s) == []
    assert len(s.flows) == 2
    receive(s, ack(PUBACK, qos1))
    receive(s, ack(PUBREC, qos2))
    receive(s, ack(PUBCOMP, qos2))
    assert len(s.flows) == 0


@pytest.mark.parametrize("qos,wrong", [(1, PUBREC), (1, PUBCOMP), (2, PUBACK)])
def test_ack_of_the_wrong_kind_leaves_the_flow_open(qos: int, wrong: int) -> None:
    """A PUBACK cannot finish a QoS 2 flow, nor a PUBREC or PUBCOMP a QoS 1 flow."""
    s = connected()
    pid = s.publish(0, "t", b"m", qos)
    s.out[0:] = b""
    assert receive(s, ack(wrong, pid)) == (wrong, pid)
    assert sent(s) == []
    assert len(s.flows) == 1


# --- incoming messages ----------------------------------------------------------------------------


def test_incoming_qos1_is_delivered_and_acknowledged() -> None:
    """[MQTT-4.3.2-2] the receiver answers PUBLISH QoS 1 with a PUBACK carrying its id."""
    s = connected()
    assert receive(s, publish(b"t", b"m", 1, 5, retain=1)) == (PUBLISH, b"t", b"m", 1, 1, 0)
    assert sent(s) == [sent_ack(PUBACK, 5)]


def test_incoming_qos2_is_delivered_once_until_pubrel() -> None:
    """[MQTT-4.3.3-2] method B: the id is held from PUBLISH to PUBREL, and a redelivery in between is
    acknowledged again (the broker may have lost our PUBREC) but not delivered twice."""
    s = connected()
    assert receive(s, publish(b"t", b"m", 2, 7)) == (PUBLISH, b"t", b"m", 2, 0, 0)
    assert sent(s) == [sent_ack(PUBREC, 7)]
    assert receive(s, publish(b"t", b"m", 2, 7, dup=1)) == (PUBREC, 7)
    assert sent(s) == [sent_ack(PUBREC, 7)]
    assert receive(s, ack(PUBREL, 7)) == (PUBREL, 7)
    assert sent(s) == [sent_ack(PUBCOMP, 7)]
    # released: the id now names a new message
    assert receive(s, publish(b"t", b"n", 2, 7)) == (PUBLISH, b"t", b"n", 2, 0, 0)


def test_pubrel_for_an_unknown_id_is_answered_with_pubcomp() -> None:
    """After a reconnect the broker may release a message we already completed; it must get its
    PUBCOMP or it resends PUBREL forever."""
    s = connected()
    assert receive(s, ack(PUBREL, 42)) == (PUBREL, 42)
    assert sent(s) == [sent_ack(PUBCOMP, 42)]


def test_consumed_input_is_released_while_a_partial_packet_is_pending() -> None:
    """A board reads fixed-size chunks; if packets never end on a chunk boundary (here: a 50-byte
    packet, then 100-byte packets, read 100 bytes at a time) memory must still stay bounded."""
    s = connected()
    first = publish(b"t", b"x" * 45)
    later = publish(b"t", b"x" * 95)
    assert (len(first), len(later)) == (50, 100)
    stream = first + later * 5000
    chunks = [stream[i:i + 100] for i in range(0, len(stream), 100)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        delivered = 0
        for chunk in chunks:
            s.receive_data(chunk, 0)
            for _ in range(3):  # at most two packets end in a 100-byte chunk
                if s.next_event() is None:
                    break
                delivered += 1
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert delivered == 5001
    assert peak < 64 * 1024, "%d bytes held after delivering %d packets" % (peak, delivered)


# --- subscriptions --------------------------------------------------------------------------------


def test_suback_with_one_code_per_filter_is_returned() -> None:
    """The event carries the granted QoS of each filter, in order [MQTT-3.9.3-1]."""
    s = connected()
    pid = s.subscribe(0, [("a", 1), ("b/#", 2)])
    assert receive(s, suback(pid, [1, 0x80])) == (SUBACK, pid, [1, 0x80])


# --- CONNACK --------------------------------------------------------------------------------------


REFUSALS = [
    (1, "unacceptable protocol version"),
    (2, "identifier rejected"),
    (3, "server unavailable"),
    (4, "bad user name or password"),
    (5, "not authorized"),
    (6, "undefined return code"),
    (0x80, "undefined return code"),
]


@pytest.mark.parametrize("code,name", REFUSALS)
def test_connack_refusal_raises_connection_refused_with_code_and_name(code: int, name: str) -> None:
    """[MQTT-3.2.2-3] table 3.1: the program needs the code to act and the name to log."""
    s = Session("node")
    s.connect(0)
    with pytest.raises(ConnectionRefused) as refused:
        receive(s, connack(0, code))
    assert refused.value.code == code
    assert refused.value.args == (code, name)
    assert not s.connected


# --- commands -------------------------------------------------------------------------------------


def test_will_message_over_65535_bytes_is_refused_by_set_will() -> None:
    """The will message is length-prefixed binary data with a 16-bit length [MQTT-3.1.3-9]."""
    s = Session("node")
    with pytest.raises(ValueError):
        s.set_will("status", b"x" * 65536)


def test_password_over_65535_bytes_is_refused_before_anything_is_queued() -> None:
    """The password is binary data with a 16-bit length [MQTT-3.1.3-11]; a refused connect must
    not leave half a packet for the driver to send."""
    s = Session("node")
    with pytest.raises(ValueError):
        s.connect(0, user="u", password=b"x" * 65536)
    assert s.out == bytearray()
