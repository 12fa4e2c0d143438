"""Stalled and slow links: a link that goes silent is noticed within 1.5 x keepalive and
reconnected once it moves again; a publish to a peer that stopped reading gives up instead of
blocking; and every QoS 1/2 message still arrives, both ways, when the link delivers one byte
at a time or delays every chunk.

The node (the client under test) sits behind tests/fault_proxy.py; the peer is paho-mqtt
connected straight to the broker (tests/two_way_traffic.py).
"""
from __future__ import annotations

import time
from typing import Any, Callable, List, Tuple

import pytest

from client_process import ClientProcess, RemoteError
from fake_broker import CONNECT, PUBLISH, Expect, FakeBroker, Send, Trickle, connack
from fault_proxy import FaultProxy
from private_mosquitto import PrivateMosquitto
from reliability_log import record
import two_way_traffic

KEEPALIVE_S = 2
# [the brief's claim] a silent broker is noticed within 1.5 x keepalive (the client's dead-link
# rule) plus 1 s for the call that notices to be running and the host to see it.
DETECTION_BOUND_S = 1.5 * KEEPALIVE_S + 1.0
SMALL_TIMEOUT_S = 1  # MQTTClient(timeout=): every wait, including a send to a peer not reading
CALL_SLACK_S = 0.25  # how late a call may end past its deadline: a poll that wakes late, clock steps
# Large enough that the send to a proxy reading nothing hits its deadline: the first copy still
# fits the loopback socket buffers (the client's send buffer grows to megabytes), the resend the
# client makes at timeout / 2 no longer does. Not larger: building it costs MicroPython time.
PROXY_RCVBUF = 4096
BLOCKING_PAYLOAD = 2_000_000
BIG_HEAP = "32m"  # MicroPython: the payload, its bytes and the encoded packet, at once
NOT_FOREVER_S = 10.0  # "does not block for good": far above any of the call's own deadlines
RECONNECT_DEADLINE_S = 15.0
POLL_SLICE_S = 0.5
DELIVERY_DEADLINE_S = 30.0
BYTE_AT_A_TIME_PER_QOS = 100
SLOW_CHUNK_DELAY_S = 0.02
# Each QoS 1 flow waits out 2 delayed chunks and each QoS 2 flow 4, one after another: 25 + 25
# each way already take about 4 s at 20 ms per chunk.
SLOW_PER_QOS = 25
# A resend larger than loopback's largest send buffer (tcp_wmem's 4 MiB) waits for a reader that
# takes TRICKLE_RATE bytes a second: about 0.3 s a copy, well within RESEND_TIMEOUT_S / 2.
RESEND_PAYLOAD = 5_000_000
TRICKLE_RATE = 16_000_000
TRICKLE_RCVBUF = 65536
RESEND_TIMEOUT_S = 2
RESEND_WAIT_S = 6.0
MAX_CHECKS = 20_000  # check_msg() calls while waiting for the second resend (each is a round trip)
HELD_BURST = 100  # QoS 2 messages the broker may have in flight to the node at once below
BURST_DELIVERY_S = 3.0  

def _start_node(start_client: Callable[..., ClientProcess], runtime: str, name: str, port: int,
                **kwargs: Any) -> ClientProcess:
    return start_client("%s-%s" % (name, runtime), port=port, **kwargs)


def _timeline_after(node: ClientProcess, since_ns: int, kind: str, limit_s: float) -> List[list]:
    """Service the node until its driver recorded a `kind` event after since_ns; those events."""
    found: List[list] = []
    for _ in range(int(limit_s / POLL_SLICE_S) + 1):
        found += [e for e in node._timeline() if e[0] >= since_ns]
        if any(e[1] == kind for e in found):
            break
        node._poll_for(POLL_SLICE_S)
    return found


def test_stalled_link_is_noticed_within_one_and_a_half_keepalives_and_reconnected_after_it_resumes(
    start_client, broker, runtime: str
) -> None:
    topic = b"mqnode-test/stall/" + runtime.encode()
    with FaultProxy(broker.host, broker.port) as proxy:
        node = _start_node(start_client, runtime, "stall", proxy.port, keepalive=KEEPALIVE_S, timeout=2)
        node.connect()
        assert node.publish(topic, b"before", qos=1) is True
        node._timeline()

        stalled_at = time.time_ns()
        proxy.stall()
        node._poll_for(DETECTION_BOUND_S + 1.0)  # the node's own loop, as wait_msg() runs it
        seen = [e for e in node._timeline() if e[0] >= stalled_at]

        resumed_at = time.time_ns()
        proxy.resume()
        after = _timeline_after(node, resumed_at, "connect", RECONNECT_DEADLINE_S)
        confirmed = node.publish(topic, b"after", qos=1)

    losses = [e for e in seen if e[1] == "disconnect"]
    assert losses, "no disconnect within %.1f s of the stall: %r" % (DETECTION_BOUND_S + 1.0, seen)
    detected_s = (losses[0][0] - stalled_at) / 1e9
    reconnect_s = next(((e[0] - resumed_at) / 1e9 for e in after if e[1] == "connect"), None)
    record("link faults/stalled link", runtime, keepalive_s=KEEPALIVE_S, detected_after_s=round(detected_s, 2),
           reconnected_after_resume_s=None if reconnect_s is None else round(reconnect_s, 2))
    assert losses[0][2] == "MQTTTimeout", seen
    assert detected_s <= DETECTION_BOUND_S, "noticed %.2f s after the stall, bound %.1f s" % (detected_s, DETECTION_BOUND_S)
    assert reconnect_s is not None, "no reconnect within %.0f s of the link resuming: %r" % (RECONNECT_DEADLINE_S, after)
    assert confirmed is True


def test_publish_to_a_peer_that_stopped_reading_raises_instead_of_blocking(
    start_client, broker, runtime: str
) -> None:
    with FaultProxy(broker.host, broker.port, client_rcvbuf=PROXY_RCVBUF) as proxy:
        node = _start_node(start_client, runtime, "unread-raise", proxy.port, timeout=SMALL_TIMEOUT_S, reconnect=False,
                           heapsize=BIG_HEAP)
        node.connect()
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(RemoteError) as raised:
            node._publish_many(b"mqnode-test/unread", 1, 1, payload_size=BLOCKING_PAYLOAD)
        took = time.monotonic() - started

    record("link faults/publish to a peer not reading", runtime, reconnect=False, timeout_s=SMALL_TIMEOUT_S,
           returned_after_s=round(took, 2))
    assert raised.value.name == "MQTTTimeout", raised.value
    # Not blocked for good. (How long it takes is the next test's claim; measured 1.5-2.3 x timeout
    # here: the PUBLISH fits the socket buffers, the PUBACK wait resends it at timeout / 2, and that
    # send runs into its own deadline.)
    assert took <= NOT_FOREVER_S, "publish() took %.2f s with timeout=%d" % (took, SMALL_TIMEOUT_S)


def test_publish_to_a_peer_that_stopped_reading_returns_false_within_its_timeout_and_goes_out_later(
    start_client, broker, runtime: str
) -> None:
    topic = b"mqnode-test/unread/" + runtime.encode()
    with FaultProxy(broker.host, broker.port, client_rcvbuf=PROXY_RCVBUF) as proxy:
        node = _start_node(start_client, runtime, "unread-false", proxy.port, timeout=SMALL_TIMEOUT_S, heapsize=BIG_HEAP)
        peer = two_way_traffic.Peer(broker.host, broker.port, "unread-peer-" + runtime)
        try:
            peer.subscribe(topic, 1)
            node.connect(clean_session=False)
            proxy.stall()
            result, took_ms = node._publish_timed(topic, 1, BLOCKING_PAYLOAD)
            took = took_ms / 1000
            events = node._events()
            proxy.cut()  # the stalled connections are past saving (and hold stale CONNECTs)
            proxy.resume()
            arrived = []
            for _ in range(int(DELIVERY_DEADLINE_S / POLL_SLICE_S)):
                node._poll_for(POLL_SLICE_S)  # the node reconnects and resends while serviced
                arrived += peer.wait_messages(1, 0.01)
                if arrived:
                    break
        finally:
            peer.close()

    record("link faults/publish to a peer not reading", runtime, reconnect=True, timeout_s=SMALL_TIMEOUT_S,
           returned_after_s=round(took, 2), delivered_later=len(arrived))
    assert result is False  # not confirmed, kept in flight
    assert [(m[0], len(m[1])) for m in arrived][:1] == [(topic, BLOCKING_PAYLOAD)]
    assert took <= SMALL_TIMEOUT_S + CALL_SLACK_S, "publish() took %.2f s with timeout=%d; events %r" % (
        took, SMALL_TIMEOUT_S, events)


def test_a_resend_due_during_check_msg_goes_out_whole_over_a_slow_link(start_client, runtime: str) -> None:
    # check_msg() has no time of its own when a resend of an unanswered message falls due in it. A
    # send cannot stop halfway without breaking the stream, so it gets the time a slow link needs
    # (up to timeout / 2) instead of cutting the link and starting over.
    topic = b"mqnode-test/resend/" + runtime.encode()
    script = [[Expect(CONNECT), Send(connack(0)), Trickle(TRICKLE_RATE, RESEND_WAIT_S * 3)]]
    with FakeBroker(script, rcvbuf=TRICKLE_RCVBUF) as fake:
        node = _start_node(start_client, runtime, "resend", fake.port, timeout=RESEND_TIMEOUT_S,
                              heapsize=BIG_HEAP)
        node.connect()
        node._events()  # the connect
        result, _ = node._publish_timed(topic, 1, RESEND_PAYLOAD)  # never acknowledged: resent at timeout / 2
        events = node._events()
        deadline = time.monotonic() + RESEND_WAIT_S
        for _ in range(MAX_CHECKS):
            if events or node.counters()["resends"] >= 2 or time.monotonic() > deadline:
                break
            node.check_msg()
            events += node._events()
        fake.wait_for(lambda f: len(_copies(f)) >= 3, RESEND_WAIT_S)
        counters = node.counters()
        events += node._events()
        copies = _copies(fake)
    fake.check()
    record("link faults/resend during check_msg, slow link", runtime, resends=counters["resends"],
           reconnects=counters["reconnects"], copies_received=len(copies))
    assert result is False  # no PUBACK ever came
    assert events == [] and counters["reconnects"] == 0 and len(fake.connections) == 1, (events, counters)
    assert counters["resends"] >= 2
    # The first copy, the resend made inside publish(), and the one made inside check_msg(), whole.
    assert [(p.flags & 8, len(p.publish()[2])) for p in copies[:3]] == [
        (0, RESEND_PAYLOAD), (8, RESEND_PAYLOAD), (8, RESEND_PAYLOAD)]


def _copies(fake: FakeBroker) -> list:
    return [p for p in fake.connections[0].packets if p.kind == PUBLISH] if fake.connections else []


def _two_way_case(start_client: Callable[..., ClientProcess], broker: Any, runtime: str, name: str, per_qos: int,
                  fault: Callable[[FaultProxy], None]) -> Tuple[two_way_traffic.Result, List[list]]:
    root = b"mqnode-test/%s/%s" % (name.encode(), runtime.encode())
    with FaultProxy(broker.host, broker.port) as proxy:
        node = _start_node(start_client, runtime, name, proxy.port)
        peer = two_way_traffic.Peer(broker.host, broker.port, "%s-peer-%s" % (name, runtime))
        try:
            two_way_traffic.connect_pair(node, peer, root)
            result = two_way_traffic.run(node, peer, root, per_qos, per_qos, deadline_s=DELIVERY_DEADLINE_S,
                                         started=lambda: fault(proxy))
        finally:
            peer.close()
        events = node._events()
    print(result.report())
    return result, events


def test_every_qos1_and_qos2_message_arrives_both_ways_one_byte_at_a_time(start_client, broker, runtime: str) -> None:
    result, events = _two_way_case(start_client, broker, runtime, "byte-at-a-time", BYTE_AT_A_TIME_PER_QOS,
                                   lambda proxy: proxy.byte_at_a_time(True))
    record("link faults/one byte at a time", runtime, seconds=round(result.seconds, 1), **result.counts())
    assert not result.problems(), "%s\nnode events %r" % (result.report(), events)


def test_every_qos1_and_qos2_message_arrives_both_ways_over_a_slow_link(start_client, broker, runtime: str) -> None:
    result, events = _two_way_case(start_client, broker, runtime, "slow-link", SLOW_PER_QOS,
                                   lambda proxy: proxy.slow(SLOW_CHUNK_DELAY_S))
    record("link faults/20 ms per chunk", runtime, seconds=round(result.seconds, 1), **result.counts())
    assert not result.problems(), "%s\nnode events %r" % (result.report(), events)


def test_busy_node_gets_every_qos2_message_of_a_burst_of_100_in_flight(start_client, tmp_path, runtime: str) -> None:
    # MQTT 3.1.1 lets a broker have any number of QoS 2 messages in flight to a client;
    # mosquitto's max_inflight_messages sets how many (20 by default, and 2.0.11 overshoots it
    # under load: eclipse/mosquitto#2301). A broker configured for 100 shows it deterministically.
    topic = b"mqnode-test/burst/" + runtime.encode()
    with PrivateMosquitto(tmp_path, "max_inflight_messages %d\n" % HELD_BURST) as broker:
        node = start_client("burst-" + runtime, port=broker.port)
        peer = two_way_traffic.Peer(broker.host, broker.port, "burst-peer-" + runtime)
        try:
            node.connect()
            assert node.subscribe(topic, qos=2) == 2
            # The node is busy (not reading) while the whole burst reaches its socket, so it
            # meets every PUBLISH before the broker's first PUBREL.
            assert peer.publish_many(topic, HELD_BURST, 2, 0, DELIVERY_DEADLINE_S) == []
        finally:
            peer.close()
        got = node.wait_messages(HELD_BURST, BURST_DELIVERY_S)
        events = node._events()

    numbers = sorted(int(m[1]) for m in got)
    record("link faults/busy node, 100 QoS 2 in flight", runtime, sent=HELD_BURST, received=len(set(numbers)),
           lost=HELD_BURST - len(set(numbers)), disconnects=sum(1 for e in events if e[0] == "disconnect"))
    assert [e for e in events if e[0] == "disconnect"] == []
    assert numbers == list(range(HELD_BURST))
