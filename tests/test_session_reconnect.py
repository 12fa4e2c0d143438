"""What a Session carries across a reconnect: unacknowledged flows, resent in their original order
with their ids for a persistent session, as new messages for a clean one; and pending subscriptions.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from runtime import LIB, driver_environment, micropython_executable

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import broker_codec, packet  # noqa: E402
from mqtt.packet import CONNACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBSCRIBE, UNSUBSCRIBE  # noqa: E402
from sans_io import ack, connack, connected, publish, receive, sent, sent_ack, sent_publish, suback  # noqa: E402


def test_reconnect_resends_unacknowledged_flows_in_original_order() -> None:
    """[MQTT-4.4.0-1] after a reconnect with CleanSession=0, unacknowledged PUBLISH go out again
    with DUP=1 and their ids, and a QoS 2 flow that got PUBREC resumes with PUBREL; [MQTT-4.6.0-1]
    in the order first sent."""
    s = connected(clean_session=False)
    a = s.publish(0, "a", b"1", 1)
    b = s.publish(0, "b", b"2", 2)
    c = s.publish(0, "c", b"3", 2)
    d = s.publish(0, "d", b"4", 1)
    receive(s, ack(PUBREC, b))
    s.connection_lost()
    s.connect(100, clean_session=False)
    (connect_packet,) = sent(s)
    assert broker_codec.decode_connect(connect_packet[2])[2] == 0  # CleanSession=0
    assert receive(s, connack(1, 0), now=100) == (CONNACK, 1)
    assert sent(s) == [
        sent_publish(b"a", b"1", 1, a, 1),
        sent_ack(PUBREL, b),
        sent_publish(b"c", b"3", 2, c, 1),
        sent_publish(b"d", b"4", 1, d, 1),
    ]
    assert len(s.flows) == 4


def test_clean_reconnect_sends_every_message_in_flight_again_as_a_new_one() -> None:
    """[MQTT-3.1.2-6] CleanSession=1 drops the protocol state on both sides, so old ids mean nothing:
    every message in flight goes out as a new PUBLISH (new id, DUP=0), in order. That includes one
    past PUBREC: mosquitto delivers a QoS 2 message at the PUBREL, and the clean session discards
    its copy, so it may never have been delivered."""
    s = connected()
    ids = [s.publish(0, "a", b"1", 1), s.publish(0, "b", b"2", 2), s.publish(0, "c", b"3", 2)]
    receive(s, ack(PUBREC, ids[1]))
    sent(s)
    s.connection_lost()
    s.connect(100, clean_session=True)
    s.out[0:] = b""
    assert receive(s, connack(0, 0), now=100) == (CONNACK, 0)
    resent = sent(s)
    assert [(kind, flags) for kind, flags, _ in resent] == [(PUBLISH, 1 << 1), (PUBLISH, 2 << 1), (PUBLISH, 2 << 1)]
    decoded = [packet.decode_publish(flags, body) for _, flags, body in resent]
    assert [(d[0], d[2]) for d in decoded] == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    assert not {d[1] for d in decoded} & set(ids)  # new ids
    assert len(s.flows) == 3


def test_a_released_qos2_flow_is_published_again_when_the_broker_lost_the_session() -> None:
    """Persistent session asked for, none present (a broker restarted without persistence): a
    PUBREL would release nothing there, and mosquitto delivers at the PUBREL, so the flow goes
    back to its PUBLISH (same id, DUP=1) and completes as a new QoS 2 flow. With the session
    present, the PUBREL goes again as before."""
    for present in (0, 1):
        s = connected(clean_session=False)
        pid = s.publish(0, "t", b"payload", 2)
        receive(s, ack(PUBREC, pid))
        assert sent(s)[-1] == sent_ack(PUBREL, pid)
        s.connection_lost()
        s.connect(100, clean_session=False)
        s.out[0:] = b""
        s.dirty = False  # as a store's sync leaves it
        assert receive(s, connack(present, 0), now=100) == (CONNACK, present)
        if present:
            assert sent(s) == [sent_ack(PUBREL, pid)]
            continue
        assert s.dirty  # the flow's new state is saved before its PUBLISH leaves
        assert sent(s) == [sent_publish(b"t", b"payload", 2, pid, 1)]
        assert receive(s, ack(PUBREC, pid), now=110) == (PUBREC, pid)
        assert sent(s) == [sent_ack(PUBREL, pid)]
        assert receive(s, ack(PUBCOMP, pid), now=120) == (PUBCOMP, pid)
        assert s.flows == []


def test_reconnect_never_sends_a_subscribe_without_filters() -> None:
    """[MQTT-3.8.3-3] a SUBSCRIBE has at least one filter; a broker closes the connection otherwise.
    Case: SUBSCRIBE then UNSUBSCRIBE of the same filter, link lost before either ack, persistent
    session resumed."""
    s = connected(clean_session=False)
    s.subscribe(0, [("a", 1)])
    s.unsubscribe(0, ["a"])
    s.connection_lost()
    s.connect(100, clean_session=False)
    s.out[0:] = b""
    assert receive(s, connack(1, 0), now=100) == (CONNACK, 1)
    subscribes = [body for kind, _, body in sent(s) if kind == SUBSCRIBE]
    assert all(len(body) > 2 for body in subscribes), "SUBSCRIBE with a packet id and no filters"


@pytest.mark.parametrize("present", [1, 0], ids=["session-present", "session-lost"])
def test_requests_left_unanswered_go_again_under_their_own_ids(present: int) -> None:
    """A SUBSCRIBE and an UNSUBSCRIBE the old connection took with it unanswered are sent again
    with the packet ids their callers wait on, so the SUBACK and UNSUBACK reach those callers
    (an asyncio node's subscribe used to time out after a reconnect). Without a session on the
    broker's side, the subscriptions not pending go in one more SUBSCRIBE under a new id."""
    s = connected(clean_session=False)
    kept = s.subscribe(0, [("kept", 0)])
    receive(s, suback(kept, [0]))
    sub = s.subscribe(0, [("a", 1)])
    unsub = s.unsubscribe(0, ["b"])
    s.connection_lost()
    s.connect(100, clean_session=False)
    s.out[0:] = b""
    assert receive(s, connack(present, 0), now=100) == (CONNACK, present)
    requests = {(kind, packet.get_u16(body, 0)): body for kind, _, body in sent(s)}
    assert (SUBSCRIBE, sub) in requests and (UNSUBSCRIBE, unsub) in requests
    assert broker_codec.decode_subscribe(requests[(SUBSCRIBE, sub)])[1] == [(b"a", 1)]
    others = [k for k in requests if k[0] == SUBSCRIBE and k[1] != sub]
    if present:
        assert others == []
    else:
        assert [broker_codec.decode_subscribe(requests[k])[1] for k in others] == [[(b"kept", 0)]]


def test_held_qos2_ids_are_let_go_when_the_broker_kept_no_session() -> None:
    """A broker without our session numbers its messages from scratch: an id held from the old
    session's unreleased QoS 2 message must not make a new message with that id a redelivery."""
    s = connected(clean_session=False)
    assert receive(s, publish(b"t", b"A", 2, 7)) == (PUBLISH, b"t", b"A", 2, 0, 0)
    s.connection_lost()
    s.connect(100, clean_session=False)
    assert receive(s, connack(0, 0), now=100) == (CONNACK, 0)
    sent(s)
    assert receive(s, publish(b"t", b"B", 2, 7)) == (PUBLISH, b"t", b"B", 2, 0, 0)
    assert sent(s) == [sent_ack(PUBREC, 7)]


def test_held_qos2_ids_stay_held_when_the_broker_kept_the_session() -> None:
    """The other side of the rule above: with the session present, the same id is the old message
    again, acknowledged but not delivered twice [MQTT-4.3.3-2]."""
    s = connected(clean_session=False)
    receive(s, publish(b"t", b"A", 2, 7))
    s.connection_lost()
    s.connect(100, clean_session=False)
    assert receive(s, connack(1, 0), now=100) == (CONNACK, 1)
    sent(s)
    assert receive(s, publish(b"t", b"A", 2, 7, dup=1)) == (PUBREC, 7)


# Run by each runtime: MicroPython's dicts are unordered, so the order a Session keeps must not
# come from one. Ids 1 and 2 go to publishes so that the two requests get ids 3 and 4, which a
# small MicroPython dict iterates as 4, 3.
_ORDER_SCRIPT = """
from mqtt import broker_codec, packet
from mqtt.session import Session

def feed(s, data):
    s.receive_data(data, 0)
    return s.next_event()

def kinds(s):
    data = bytes(s.out)
    s.out[0:] = b""
    found, i = [], 0
    while i < len(data):
        found.append(data[i] >> 4)
        i = packet.parse_header(data, i, len(data), packet.MAX_REMAINING)[1]
    return found

def connack(present):
    b = bytearray()
    broker_codec.encode_connack(b, present, 0)
    return bytes(b)

s = Session("n")
s.connect(0, clean_session=False)
feed(s, connack(0))
s.publish(0, "t", b"1", 1)
s.publish(0, "t", b"2", 1)
s.unsubscribe(0, ["f"])
s.subscribe(0, [("f", 1)])
s.connection_lost()
s.connect(0, clean_session=False)
kinds(s)
feed(s, connack(1))
print(kinds(s))
"""


def test_unanswered_requests_go_again_in_the_order_first_sent(runtime: str) -> None:
    """An UNSUBSCRIBE and then a SUBSCRIBE of one filter, both unanswered when the link dropped:
    swapped on the new connection, the broker would end up unsubscribed while the client counts
    the filter as subscribed (and restores it no more)."""
    command = [sys.executable] if runtime == "cpython" else [micropython_executable()]
    out = subprocess.run([*command, "-c", _ORDER_SCRIPT], env=driver_environment(runtime), capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[3,", "3,", "10,", "8]"]  # two PUBLISH resends, UNSUBSCRIBE, SUBSCRIBE
