"""Keepalive: an idle client pings before its keepalive runs out, so the broker, which drops a
client silent for 1.5 x keepalive [MQTT-3.1.2-24], keeps it connected however long it idles.

The second scenario watches the wire through tests/tcp_relay.py to see the PINGREQ itself.
"""
from __future__ import annotations

import time

from mqtt_frames import CONNECT, PINGREQ, PINGRESP, split_frames
from tcp_relay import TcpRelay

KEEPALIVE_S = 2
IDLE_SLICE_S = 0.5


def _idle(client, seconds: float) -> None:
    """Let the client wait for messages that never come, as a node's main loop does."""
    for _ in range(int(seconds / IDLE_SLICE_S)):
        assert client.wait_msg(timeout=IDLE_SLICE_S) in (None, PINGRESP)


def test_idle_client_stays_connected_past_twice_its_keepalive(start_client, topic_root: bytes) -> None:
    # reconnect=False: a dropped connection must raise here, not be mended behind the test's back.
    client = start_client(keepalive=KEEPALIVE_S, reconnect=False)
    client.connect()

    _idle(client, 2.5 * KEEPALIVE_S)  # past the broker's 1.5 x keepalive deadline, twice over

    client.publish(topic_root + b"/alive", b"yes", qos=1)  # returns on PUBACK


def test_a_call_after_a_long_pause_reads_what_waits_before_calling_the_link_dead(start_client, topic_root: bytes) -> None:
    """A umqtt-style program calls check_msg() now and then. The client counts the broker silent
    from the last packet it read; when a call comes after 1.5 x keepalive of that, the broker's
    answer to the last ping may be waiting in the socket, and then the link is alive."""
    client = start_client(keepalive=KEEPALIVE_S, reconnect=False)
    client.connect()
    time.sleep(0.5 * KEEPALIVE_S)
    client.ping()  # the PINGRESP waits in the socket: nothing reads until the next call
    time.sleep(1.2 * KEEPALIVE_S)  # 1.7 x keepalive since the CONNACK, the last packet read

    assert client.check_msg() == PINGRESP
    client.publish(topic_root + b"/alive", b"yes", qos=1)  # returns on PUBACK: still connected


def test_idle_client_sends_pingreq_before_its_keepalive_expires(start_client, broker) -> None:
    with TcpRelay(broker.host, broker.port) as relay:
        client = start_client(keepalive=KEEPALIVE_S, port=relay.port)
        client.connect()
        _idle(client, 1.25 * KEEPALIVE_S)
        client.disconnect()
        assert len(relay.connections) == 1  # no reconnect hid a dropped connection
        connection = relay.connections[0]
        sent = split_frames(connection.upstream.chunks())
        answered = split_frames(connection.downstream.chunks())

    assert sent[0].kind == CONNECT
    pings = [f for f in sent if f.kind == PINGREQ]
    assert pings, "no PINGREQ in %.1f s of idleness; client sent %r" % (1.25 * KEEPALIVE_S, [f.kind for f in sent])
    assert (pings[0].flags, pings[0].body) == (0, b"")  # the two bytes C0 00
    assert pings[0].at - sent[0].at < KEEPALIVE_S
    # Never silent for a whole keepalive: the gap between consecutive packets stays below it.
    assert max(b.at - a.at for a, b in zip(sent, sent[1:])) < KEEPALIVE_S
    assert any(f.kind == PINGRESP for f in answered)
