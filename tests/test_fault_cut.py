"""Cut links: the connection between a node and its broker dies at random points mid-stream, and
no QoS 1 or QoS 2 message is lost either way, and no QoS 2 message arrives twice.

The node (the client under test) sits behind tests/fault_proxy.py and keeps a persistent session
(clean_session=False, a fixed client id), so the broker holds what it owes the node while the
link is down, and the node resends what it had in flight with DUP=1 and resumes QoS 2 flows at
PUBREL [MQTT-4.4.0-1]. A cut resets both sides (RST), the way a dropped WiFi link or a NAT that
forgot the flow looks to the two ends; bytes in flight at that moment are gone.

The 50 cut points are byte offsets drawn from a seeded RNG: the seed is printed, and
MQNODE_FAULT_SEED=<seed> replays the same offsets (the timing around them differs).
"""
from __future__ import annotations

import os
import random
import time


from fault_proxy import DOWN, UP, FaultProxy, random_schedule
from reliability_log import record
import two_way_traffic
import wire_audit

SEED_ENV = "MQNODE_FAULT_SEED"
CUTS = 50
PER_QOS = 200  # messages per QoS per direction: 800 in all
# Each cut comes after a random number of bytes in a random direction, counted from the cut
# before. With this test's short topics each direction carries about 22 KB (measured without
# faults: 21.4 KB up, 22.2 KB down), but unevenly: while the node drains what the broker queued,
# client->broker carries little more than 4-byte acks. Counts up to 200 (mean 100) use the 50
# cuts up within the first quarter or so of the traffic, so they all land while the run is busy;
# a few land inside a reconnect's own CONNECT/CONNACK.
MAX_CUT_BYTES = 200
CUTS_SETTLE_S = 1.0  # for a last cut that falls on the acknowledgements trailing the final message
# The outbox must hold a whole run: a publish() that finds the link down inside its backoff
# window queues at once, and the driver's loop publishes the next number right away.
QUEUE = {"queue_count": 4 * PER_QOS, "queue_bytes": 1 << 20}
DELIVERY_DEADLINE_S = 20.0  # a run that completes takes 3-6 s
# Reconnect delays (MQTTClient backoff=): a connection that dies within 10 s counts as a failed
# attempt, so with the default (0.1, 1.0) fifty cuts would spend most of a minute backing off.
# What is tested here is what arrives, not how long the node waits between attempts.
BACKOFF = (0.01, 0.05)
# MicroPython's heap for the node's process: the test driver keeps every message the node
# receives until the host takes them, and under 50 cuts the broker resends its whole in-flight
# window on every reconnect, thousands of QoS 1 duplicates in all, more than the default 2 MB
# holds between two takes. (The client's own memory stays flat: about 60 KB in use throughout.)
DRIVER_HEAP = "16m"
REDELIVERY_S = 3.0  # a reconnect on loopback and the broker's resend take milliseconds
GRACE_S = 0.5
READ_CHUNK = 512  # bytes the client reads per recv (lib/mqtt/client.py _CHUNK)
POLL_S = 0.02




def _short_root(runtime: str) -> bytes:
    """A short topic root of this test's own, so packet sizes (and MAX_CUT_BYTES) do not depend
    on the length of the test's name."""
    return b"mqnode-test/cut-" + runtime.encode()


def _wait_for_cut(proxy: FaultProxy, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / POLL_S) + 1):
        if proxy.cut_log:
            return True
        time.sleep(POLL_S)
    return bool(proxy.cut_log)


def test_qos2_message_read_just_before_a_reset_is_still_delivered_once(start_client, broker, runtime: str) -> None:
    topic = _short_root(runtime) + b"/just-before-reset/q2"
    # The broker's PUBLISH to the node fills exactly one of the client's 512-byte reads
    # (client._CHUNK): MicroPython's socket.readinto() keeps reading until its buffer is full and
    # throws away what it read when a later read fails, so a shorter packet followed by the reset
    # would vanish with it there, and the broker's resend would hide the bug.
    rest = READ_CHUNK - 1 - 2  # after the first byte and the 2-byte remaining length
    payload = b"0" + b"." * (rest - 2 - len(topic) - 2 - 1)
    with FaultProxy(broker.host, broker.port) as proxy:
        node = start_client(port=proxy.port, **QUEUE)
        peer = two_way_traffic.Peer(broker.host, broker.port, "peer-" + runtime + "-just-before-reset")
        try:
            node.connect(clean_session=False)
            assert node.subscribe(topic, qos=2) == 2
            # While the node is idle, its socket receives the whole PUBLISH and then the reset.
            proxy.cut_after([(DOWN, READ_CHUNK)])
            assert peer.publish(topic, payload, 2, DELIVERY_DEADLINE_S)
            assert _wait_for_cut(proxy, DELIVERY_DEADLINE_S), "the broker's PUBLISH never reached the proxy"
            got = node.wait_messages(1, REDELIVERY_S)
            got += node.wait_messages(2, GRACE_S)  # and no second copy
            events = node._events()
        finally:
            peer.close()

    assert [(m[0], m[1], m[3]) for m in got] == [(topic, payload, 2)], events


def test_nothing_lost_both_ways_when_the_link_is_cut_at_50_random_points_mid_stream(
    start_client, broker, runtime: str
) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1 << 32))
    print("%s=%d" % (SEED_ENV, seed))
    cuts = random_schedule(random.Random(seed), CUTS, MAX_CUT_BYTES)
    root = _short_root(runtime) + b"/random"

    with FaultProxy(broker.host, broker.port, record=True) as proxy:
        node = start_client("fault-cut-random-" + runtime, port=proxy.port, heapsize=DRIVER_HEAP, backoff=BACKOFF,
                            **QUEUE)
        peer = two_way_traffic.Peer(broker.host, broker.port, "fault-cut-peer-" + runtime)
        try:
            two_way_traffic.connect_pair(node, peer, root)
            result = two_way_traffic.run(node, peer, root, PER_QOS, PER_QOS, deadline_s=DELIVERY_DEADLINE_S,
                                         started=lambda: proxy.cut_after(cuts))
        finally:
            peer.close()
        proxy.settle_cuts(CUTS_SETTLE_S)
        carried = proxy.counters()
        made = len(proxy.cut_log)
        made_up = sum(1 for c in proxy.cut_log if c.direction == UP)
        counters = node.counters()
        events = node._events()
        wire = wire_audit.qos2_events(proxy.recordings(), two_way_traffic.topic(root, DOWN, 2))

    down_q2 = result.flow(DOWN, 2)
    blame = wire_audit.blame(wire, down_q2.lost, down_q2.doubled)
    held_overflows = [e for e in events if e[0] == "disconnect" and e[1] == "ProtocolError" and "PUBREL" in e[2]]
    record("link faults/cut at 50 random points", runtime, seed=seed, cuts=made, cuts_up=made_up, reconnects=counters["reconnects"],
           resends=counters["resends"], seconds=round(result.seconds, 1), held_overflows=len(held_overflows),
           bytes_up=carried.bytes_up, bytes_down=carried.bytes_down,
           **{k: len(v) for k, v in blame.items()}, **result.counts())
    stories = "\n".join("  %d: %s" % (n, wire_audit.story_text(wire, n)) for ns in blame.values() for n in ns[:5])
    context = "%s=%d\n%s\nblame %r\n%s\nnode counters %r, %d cuts (%d client->broker), %.1f s\nlast events %r" % (
        SEED_ENV, seed, result.report(), blame, stories, counters, made, made_up, result.seconds, events[-6:])
    print(context)

    unexplained = [f.summary() for f in result.flows.values()
                   if f is not down_q2 and (f.lost or (f.qos == 2 and f.duplicates))]
    unexplained += ["down QoS 2 %s %r" % (k, blame[k]) for k in ("doubled_client", "lost_broker") if blame[k]]
    assert made == CUTS, "only %d of %d cuts happened before the traffic ended\n%s" % (made, CUTS, context)
    assert counters["dropped"] == 0, context
    assert not unexplained, context
    assert not blame["lost_client"], context  # the node lost a QoS 2 message it had read
    assert not held_overflows, context
    # Duplicates the broker made by resending a PUBLISH after its PUBREL (blame["doubled_broker"])
    # are mosquitto's (see wire_audit.py); they are counted in the reliability log, not here.
    assert counters["inflight"] == 0 and counters["queued"] == 0, context
