"""A broker that breaks MQTT 3.1.1 gets the client's specific error, within its deadline, and never
makes it allocate what a header merely declares.

The broker here is tests/fake_broker.py playing a script. With reconnect=False the error must
surface from the call that met it (connect, wait_msg, subscribe); with reconnect=True it reaches
on_disconnect instead and the client carries on with the script's next, well-behaved connection.
Acknowledgements for ids the client never used are the one documented exception: they are
ignored and the connection stays up. Each case's outcome also goes to tests/reliability_log.py.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import pytest

from client_process import ClientProcess, RemoteError
from compiled_lib import compile_lib, loaded_from
from fake_broker import (
    CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBSCRIBE,
    UNSUBSCRIBE, Close, Expect, FakeBroker, Reply, Send, Serve, Stall, Step, ack, connack, empty,
    publish, suback,
)
from mqtt import packet  # lib/ is on sys.path once fake_broker is imported
from reliability_log import record

TIMEOUT_S = 2.0  # the client's own `timeout`: every wait it makes is bounded by this
SLACK_S = 2.0  # what a call may take beyond its deadline: process round trip, a loaded machine
CALL_TIMEOUT_S = TIMEOUT_S + 10.0  # the driver call itself; passing this is a hang
KEEPALIVE_S = 1
RECONNECT_WAIT_S = 6.0
POLL_SLICE_S = 0.25
# Peak virtual memory of a client process: tens of MB for either runtime; one 256 MB buffer
# would push it far past this.
MAX_CLIENT_VM_KB = 160 * 1024
SMALL_HEAP = "64k"
MAX_HEAP_GROWTH_BYTES = 2048  # across the call that meets the 256 MB header
DELIVERY_S = 2.0  # a message right behind the dropped one arrives in milliseconds
# The [MQTT-3.2.2-3] return codes, written out here rather than taken from lib/mqtt/errors.py.
REFUSALS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
    6: "undefined return code",
}
TOPIC = b"mqnode/hostile"


def _start(start_client: Callable[..., ClientProcess], fake: FakeBroker, **kwargs) -> ClientProcess:
    options = {"port": fake.port, "reconnect": False, "timeout": TIMEOUT_S}
    options.update(kwargs)
    return start_client(**options)


def _raises(call: Callable[[], object]) -> Tuple[RemoteError, float]:
    """The client's exception from `call`, and how long the call took."""
    start = time.monotonic()
    with pytest.raises(RemoteError) as info:
        call()
    return info.value, time.monotonic() - start


def _log(case: str, runtime: str, error: Optional[RemoteError], elapsed_s: float, fake: FakeBroker) -> None:
    record("hostile_broker/" + case, runtime, error=None if error is None else error.name,
           elapsed_ms=int(elapsed_s * 1000), connections=len(fake.connections))


def _after_connack(hostile: Sequence[Step]) -> List[List[Step]]:
    """One connection: a normal CONNECT/CONNACK, then `hostile`, then silence."""
    return [[Expect(CONNECT), Send(connack(0)), *hostile, Stall()]]


def _vm_peak_kb(client: ClientProcess) -> int:
    with open("/proc/%d/status" % client.process.pid) as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1])
    raise AssertionError("no VmPeak in /proc/%d/status" % client.process.pid)


# --- before CONNACK: connect() raises --------------------------------------------------------------


def test_no_connack_raises_mqtt_timeout_within_the_timeout(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Stall()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("no_connack", runtime, err, elapsed, fake)
    assert err.name == "MQTTTimeout" and "CONNACK" in err.msg
    assert TIMEOUT_S - 0.1 <= elapsed < TIMEOUT_S + SLACK_S
    fake.check()


def test_close_right_after_connect_raises_oserror(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Close()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("close_after_connect", runtime, err, elapsed, fake)
    assert err.name == "OSError" and "closed" in err.msg
    assert elapsed < TIMEOUT_S
    fake.check()


def test_eof_inside_the_connack_raises_oserror(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Send(connack(0)[:3]), Close()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("eof_inside_connack", runtime, err, elapsed, fake)
    assert err.name == "OSError"
    assert elapsed < TIMEOUT_S


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_connack_refusal_raises_connection_refused_with_its_code_and_name(
    start_client, runtime, code: int
) -> None:
    with FakeBroker([[Expect(CONNECT), Send(connack(code)), Stall()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("connack_refused_%d" % code, runtime, err, elapsed, fake)
    assert err.name == "ConnectionRefused"
    assert err.remote_args == [code, REFUSALS[code]]  # args[0] is the code, as in umqtt.simple
    assert elapsed < TIMEOUT_S
    fake.check()


def test_first_connect_refused_raises_even_with_reconnect_on(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Send(connack(5)), Stall()]]) as fake:
        c = _start(start_client, fake, reconnect=True)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("connack_refused_with_reconnect", runtime, err, elapsed, fake)
    assert err.name == "ConnectionRefused" and err.remote_args[0] == 5
    assert len(fake.connections) == 1  # the first connection is the caller's: no retry behind its back


def test_packet_before_connack_is_a_protocol_error(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Send(empty(PINGRESP) + connack(0)), Stall()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(call_timeout=CALL_TIMEOUT_S))
        _log("packet_before_connack", runtime, err, elapsed, fake)
    assert err.name == "ProtocolError" and "before CONNACK" in err.msg
    assert elapsed < TIMEOUT_S


def test_session_present_on_a_clean_session_is_a_protocol_error(start_client, runtime) -> None:
    with FakeBroker([[Expect(CONNECT), Send(connack(0, session_present=1)), Stall()]]) as fake:
        c = _start(start_client, fake)
        err, elapsed = _raises(lambda: c.connect(clean_session=True, call_timeout=CALL_TIMEOUT_S))
        _log("session_present_on_clean_session", runtime, err, elapsed, fake)
    assert err.name == "ProtocolError" and "MQTT-3.2.2-1" in err.msg
    assert elapsed < TIMEOUT_S


# --- after CONNACK: the call that reads the packet raises ------------------------------------------


def _connected_then(start_client, hostile: Sequence[Step], **kwargs) -> Tuple[FakeBroker, ClientProcess]:
    """A client connected to a fake broker that then plays `hostile`; the caller stops the broker."""
    fake = FakeBroker(_after_connack(hostile)).start()
    try:
        c = _start(start_client, fake, **kwargs)
        assert c.connect() == 0
    except BaseException:
        fake.stop()
        raise
    return fake, c


def _wait_msg_raises(start_client, runtime: str, case: str, hostile: Sequence[Step],
                     **kwargs) -> Tuple[RemoteError, float, FakeBroker, ClientProcess]:
    fake, c = _connected_then(start_client, hostile, **kwargs)
    try:
        err, elapsed = _raises(lambda: c.wait_msg(timeout=TIMEOUT_S, call_timeout=CALL_TIMEOUT_S))
        _log(case, runtime, err, elapsed, fake)
    finally:
        fake.stop()
    fake.check()
    return err, elapsed, fake, c


def test_remaining_length_of_five_bytes_is_a_protocol_error(start_client, runtime) -> None:
    err, elapsed, _, _ = _wait_msg_raises(
        start_client, runtime, "five_byte_length", [Send(b"\x30\xff\xff\xff\xff\x01")]
    )
    assert err.name == "ProtocolError" and "longer than 4 bytes" in err.msg
    assert elapsed < TIMEOUT_S


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_lib(tmp_path_factory.mktemp("mpy"))


def test_declared_256mb_packet_is_refused_from_its_header_without_allocating_it(
    start_client, runtime, compiled: Path
) -> None:
    """Any packet but a PUBLISH above max_packet is a protocol error, raised from its header."""
    # On MicroPython the client gets a board's 64 KB heap: a 256 MB buffer would be a MemoryError.
    small = {"heapsize": SMALL_HEAP, "extra_path": [compiled]} if runtime == "micropython" else {}
    if small:
        assert loaded_from(compiled).endswith("client.mpy")
    header = b"\x90\xff\xff\xff\x7f"  # SUBACK of 268,435,455 bytes, the largest length MQTT has
    fake, c = _connected_then(start_client, [Send(header)], **small)
    try:
        before = c.mem()
        err, elapsed = _raises(lambda: c.wait_msg(timeout=TIMEOUT_S, call_timeout=CALL_TIMEOUT_S))
        after = c.mem()
        _log("declared_256mb", runtime, err, elapsed, fake)
    finally:
        fake.stop()

    # The body never comes (the broker stalls): only the header can have raised this.
    assert err.name == "ProtocolError" and "268435455" in err.msg and "max_packet" in err.msg
    assert elapsed < TIMEOUT_S
    assert fake.connections[0].closed_by_client
    if runtime == "micropython":  # its GC heap; CPython has no such figure (VmPeak covers it)
        assert after - before < MAX_HEAP_GROWTH_BYTES
    assert _vm_peak_kb(c) < MAX_CLIENT_VM_KB
    fake.check()


def test_declared_256mb_publish_is_acknowledged_and_dropped_without_allocating_it(
    start_client, runtime, compiled: Path
) -> None:
    """A PUBLISH above max_packet is acknowledged as soon as its packet id has arrived and its
    body is dropped as it comes: refusing it would only have the broker send it again after every
    reconnect. The client reports it (wait_msg returns its event, counters() counts it)."""
    small = {"heapsize": SMALL_HEAP, "extra_path": [compiled]} if runtime == "micropython" else {}
    # QoS 1 PUBLISH of 268,435,455 bytes: topic "t", packet id 7, then a few payload bytes.
    head = b"\x32\xff\xff\xff\x7f" + b"\x00\x01t" + b"\x00\x07" + b"x" * 100
    fake, c = _connected_then(start_client, [Send(head), Expect(PUBACK)], **small)
    try:
        before = c.mem()
        kind = c.wait_msg(timeout=TIMEOUT_S, call_timeout=CALL_TIMEOUT_S)
        more = c.wait_msg(timeout=0.3, call_timeout=CALL_TIMEOUT_S)  # the body: dropped, not buffered
        after = c.mem()
        counters = c.counters()
        acked = fake.kinds(0)
        _log("declared_256mb_publish", runtime, None, 0.0, fake)
    finally:
        fake.stop()

    assert kind == 16 and more is None  # mqtt.session.DROPPED; then nothing
    assert counters["too_large"] == 1
    assert acked[-1] == PUBACK and ack(PUBACK, 7) in fake.connections[0].received
    assert not fake.connections[0].closed_by_client
    if runtime == "micropython":  # its GC heap; CPython has no such figure (VmPeak covers it)
        assert after - before < MAX_HEAP_GROWTH_BYTES
    assert _vm_peak_kb(c) < MAX_CLIENT_VM_KB
    fake.check()


def test_publish_above_max_packet_is_dropped_and_the_next_one_delivered(start_client, runtime) -> None:
    too_big = publish(TOPIC, b"x" * 2000)
    fake, c = _connected_then(start_client, [Send(too_big), Send(publish(TOPIC, b"next"))], max_packet=1024)
    try:
        got = c.wait_messages(1, DELIVERY_S)
        counters = c.counters()
    finally:
        fake.stop()
    assert got == [(TOPIC, b"next", 0, 0, 0)]  # the callback saw only the message after it
    assert counters["too_large"] == 1
    assert not fake.connections[0].closed_by_client
    fake.check()


def _client_packet(kind: int) -> bytes:
    """A well-formed packet of a type only clients send."""
    out = bytearray()
    if kind == CONNECT:
        packet.encode_connect(out, b"evil", 0, 1, None, None, None)
    elif kind == SUBSCRIBE:
        packet.encode_subscribe(out, 1, [(b"a/#", 1)])
    elif kind == UNSUBSCRIBE:
        packet.encode_unsubscribe(out, 1, [b"a/#"])
    else:
        packet.encode_empty(out, kind)
    return bytes(out)


FORBIDDEN = {
    "reserved_0": (b"\x00\x00", "reserved packet type 0"),
    "reserved_15": (b"\xf0\x00", "reserved packet type 15"),
    "connect": (_client_packet(CONNECT), "never sent to a client"),
    "subscribe": (_client_packet(SUBSCRIBE), "never sent to a client"),
    "unsubscribe": (_client_packet(UNSUBSCRIBE), "never sent to a client"),
    "pingreq": (_client_packet(PINGREQ), "never sent to a client"),
    "disconnect": (_client_packet(DISCONNECT), "never sent to a client"),
}


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_packet_type_never_sent_to_a_client_is_a_protocol_error(start_client, runtime, name: str) -> None:
    data, words = FORBIDDEN[name]
    err, elapsed, _, _ = _wait_msg_raises(start_client, runtime, "forbidden_" + name, [Send(data)])
    assert err.name == "ProtocolError" and words in err.msg
    assert elapsed < TIMEOUT_S


MALFORMED_PUBLISH = {
    # 0x36: PUBLISH with both QoS bits set; topic "a/b", packet id 1, payload "x".
    "qos_3": (b"\x36\x08\x00\x03a/b\x00\x01x", "QoS 3"),
    "packet_id_0": (publish(TOPIC, b"x", qos=1, pid=0), "packet id 0"),
    "plus_in_topic": (publish(b"a/+/c", b"x"), "wildcard"),
    "hash_in_topic": (publish(b"a/#", b"x"), "wildcard"),
}


@pytest.mark.parametrize("name", list(MALFORMED_PUBLISH))
def test_malformed_publish_is_a_protocol_error(start_client, runtime, name: str) -> None:
    data, words = MALFORMED_PUBLISH[name]
    err, elapsed, _, _ = _wait_msg_raises(start_client, runtime, "publish_" + name, [Send(data)])
    assert err.name == "ProtocolError" and words in err.msg
    assert elapsed < TIMEOUT_S


def test_second_connack_is_a_protocol_error(start_client, runtime) -> None:
    err, elapsed, _, _ = _wait_msg_raises(start_client, runtime, "second_connack", [Send(connack(0))])
    assert err.name == "ProtocolError" and "second CONNACK" in err.msg
    assert elapsed < TIMEOUT_S


def test_suback_with_the_wrong_number_of_codes_is_a_protocol_error(start_client, runtime) -> None:
    script = [[Expect(CONNECT), Send(connack(0)), Expect(SUBSCRIBE),
               Reply(lambda p: suback(p.packet_id, [1, 1])), Stall()]]
    with FakeBroker(script) as fake:
        c = _start(start_client, fake)
        c.connect()
        err, elapsed = _raises(lambda: c.subscribe(TOPIC, qos=1, call_timeout=CALL_TIMEOUT_S))
        _log("suback_code_count", runtime, err, elapsed, fake)
    assert err.name == "ProtocolError" and "2 codes for 1 filters" in err.msg
    assert elapsed < TIMEOUT_S
    fake.check()


def test_unanswered_pingreq_raises_mqtt_timeout_from_wait_msg_within_one_and_a_half_keepalives(
    start_client, runtime
) -> None:
    fake, c = _connected_then(start_client, [], keepalive=KEEPALIVE_S)
    try:
        # No timeout given: only keepalive bounds this wait.
        err, elapsed = _raises(lambda: c.wait_msg(call_timeout=CALL_TIMEOUT_S))
        _log("pingreq_unanswered", runtime, err, elapsed, fake)
    finally:
        fake.stop()
    assert err.name == "MQTTTimeout" and "keepalive" in err.msg
    assert elapsed < 1.5 * KEEPALIVE_S + 1.0
    assert PINGREQ in fake.connections[0].kinds()
    fake.check()


def test_eof_mid_packet_raises_oserror(start_client, runtime) -> None:
    half = publish(TOPIC, b"x" * 100)[:20]
    err, elapsed, _, _ = _wait_msg_raises(start_client, runtime, "eof_mid_packet", [Send(half), Close()])
    assert err.name == "OSError" and "closed" in err.msg
    assert elapsed < TIMEOUT_S


# --- the documented exception: acks for unknown ids -------------------------------------------------


@pytest.mark.parametrize("kind", [PUBACK, PUBREC, PUBCOMP], ids=["puback", "pubrec", "pubcomp"])
def test_ack_for_an_unknown_id_is_ignored_and_the_connection_kept(start_client, runtime, kind: int) -> None:
    script = [[Expect(CONNECT), Send(connack(0) + ack(kind, 999)), Serve()]]
    with FakeBroker(script) as fake:
        c = _start(start_client, fake)
        c.connect()
        start = time.monotonic()
        assert c.wait_msg(timeout=TIMEOUT_S) == kind  # read and handled, not left unread
        assert c.publish(TOPIC, b"after", qos=1) is True  # the same connection still completes a flow
        elapsed = time.monotonic() - start
        c.disconnect()
        assert fake.wait_done(TIMEOUT_S)
        _log("unknown_id_%d_ignored" % kind, runtime, None, elapsed, fake)
    assert len(fake.connections) == 1
    assert fake.connections[0].kinds() == [CONNECT, PUBLISH, DISCONNECT]  # nothing sent in reply
    fake.check()


def test_pubrel_for_an_unknown_id_is_answered_with_pubcomp(start_client, runtime) -> None:
    script = [[Expect(CONNECT), Send(connack(0) + ack(PUBREL, 999)), Expect(PUBCOMP), Serve()]]
    with FakeBroker(script) as fake:
        c = _start(start_client, fake)
        c.connect()
        start = time.monotonic()
        assert c.wait_msg(timeout=TIMEOUT_S) == PUBREL
        assert c.publish(TOPIC, b"after", qos=1) is True
        elapsed = time.monotonic() - start
        c.disconnect()
        assert fake.wait_done(TIMEOUT_S)
        _log("unknown_pubrel_answered", runtime, None, elapsed, fake)
    fake.check()
    assert len(fake.connections) == 1
    # [MQTT-4.3.3-2]: PUBCOMP, type 7 flags 0, length 2, the same id 999 = 0x03E7.
    assert fake.connections[0].packets[1].raw == b"\x70\x02\x03\xe7"


# --- with reconnect on ----------------------------------------------------------------------------------


RECOVERABLE = {
    "protocol_error": ([Send(MALFORMED_PUBLISH["qos_3"][0])], "ProtocolError", {}),
    "eof_mid_packet": ([Send(publish(TOPIC, b"x" * 100)[:20]), Close()], "OSError", {}),
    "silent_broker": ([], "MQTTTimeout", {"keepalive": KEEPALIVE_S}),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_with_reconnect_on_the_error_goes_to_on_disconnect_and_the_next_connection_works(
    start_client, runtime, name: str
) -> None:
    hostile, error, kwargs = RECOVERABLE[name]
    script = _after_connack(hostile) + [[Serve()]]
    with FakeBroker(script) as fake:
        c = _start(start_client, fake, reconnect=True, backoff=(0.05, 0.2), **kwargs)
        assert c.connect() == 0
        start = time.monotonic()
        events: List[list] = c._events()
        for _ in range(int(RECONNECT_WAIT_S / POLL_SLICE_S)):
            c._poll_for(POLL_SLICE_S)
            events += c._events()
            if [e[0] for e in events].count("connect") >= 2:
                break
        elapsed = time.monotonic() - start
        assert c.publish(TOPIC, b"after reconnect", qos=1) is True
        counters = c.counters()
        c.disconnect()
        assert fake.wait_done(TIMEOUT_S)
        _log("reconnect_after_" + name, runtime, None, elapsed, fake)

    assert [e[:2] for e in events] == [["connect", 0], ["disconnect", error], ["connect", 0]], events
    assert counters["reconnects"] == 1
    assert len(fake.connections) == 2
    assert fake.connections[1].kinds() == [CONNECT, PUBLISH, DISCONNECT]
    fake.check()
