"""Numbered QoS 1 and QoS 2 traffic both ways through a faulty link, and the tally of what arrived:
the workload of the fault tests (test_fault_cut.py, test_stall_and_slow.py).

The node (the client under test, behind the fault proxy) publishes the numbers 0..n-1 on
<root>/up/q1 and <root>/up/q2; the peer, connected straight to the broker, receives them. The peer
publishes the same on <root>/down/q1 and <root>/down/q2, which the node receives through the
proxy. Both publish at the same time, so the node's link carries its own flows and the broker's
deliveries at once; and because each direction has its own topics, a lost or doubled message says
which way through the faulty link it went wrong.

The peer is paho-mqtt in the test process, not a second mqnode client: it is the reference the
node is measured against, so a miscount can only be the node's (or the broker's). A second
mqnode client as the peer would also trip over mosquitto 2.0.11 opening far more than
max_inflight_messages QoS 2 flows to a busy subscriber (see test_stall_and_slow.py).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from client_process import ClientProcess

UP = "up"  # node -> broker -> peer: the node's publishes cross the faulty link
DOWN = "down"  # peer -> broker -> node: the broker's deliveries cross it
ROUNDS = 20  # each side alternates QoS 1 and QoS 2 batches this many times (small batches keep the
# driver's replies small: under cuts the node can receive hundreds of duplicates per batch)
DRAIN_SLICE_S = 0.5  # one _wait_messages call while collecting
GRACE_S = 0.5  # after everything arrived, how long to keep listening for late duplicates
# Stop waiting when nothing new arrived for this long: longer than the client's backoff cap (1 s)
# plus its resend interval (timeout / 2 = 5 s by default), so only a message that will never
# come is given up on before the deadline.
IDLE_S = 7.0
CALL_MARGIN_S = 15.0
PEER_KEEPALIVE_S = 30
PEER_CONNECT_TIMEOUT_S = 5.0
PEER_RECONNECT_MIN_S = 0.05
PEER_RECONNECT_MAX_S = 0.2


class Peer:
    """paho-mqtt on its own network thread: the reference client a node is measured against.
    It reconnects by itself and keeps QoS 2 state across reconnects (clean_session=False)."""

    def __init__(self, host: str, port: int, client_id: str, clean_session: bool = True) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        self._client.max_queued_messages_set(0)  # unbounded: the run's numbers are all queued
        # paho reconnects by itself (loop_start); its default first delay is a whole second.
        self._client.reconnect_delay_set(PEER_RECONNECT_MIN_S, PEER_RECONNECT_MAX_S)
        self._lock = threading.Lock()
        self._messages: List[Tuple[bytes, bytes, int, int, int]] = []
        self._connected = threading.Event()
        self._client.on_connect = lambda _c, _u, _f, _rc, _p: self._connected.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=PEER_KEEPALIVE_S)
        self._client.loop_start()
        if not self._connected.wait(PEER_CONNECT_TIMEOUT_S):
            self.close()
            raise RuntimeError("paho peer: no CONNACK from %s:%d" % (host, port))

    def _on_message(self, _c: Any, _u: Any, m: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append((m.topic.encode(), bytes(m.payload), int(m.retain), m.qos, int(m.dup)))

    def subscribe(self, topic_filter: bytes, qos: int) -> None:
        granted = threading.Event()
        self._client.on_subscribe = lambda *_a: granted.set()
        self._client.subscribe(topic_filter.decode(), qos)
        if not granted.wait(PEER_CONNECT_TIMEOUT_S):
            raise RuntimeError("paho peer: no SUBACK")

    def publish(self, topic: bytes, payload: bytes, qos: int, timeout_s: float) -> bool:
        """Publish one message and wait until it is acknowledged; False if it was not in time."""
        info = self._client.publish(topic.decode(), payload, qos=qos)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            pass
        return info.is_published()

    def publish_many(self, topic: bytes, count: int, qos: int, first: int, timeout_s: float) -> List[int]:
        """Publish first..first+count-1 and wait until all are acknowledged; returns those not."""
        infos = [(i, self._client.publish(topic.decode(), str(i), qos=qos)) for i in range(first, first + count)]
        deadline = time.monotonic() + timeout_s
        missed = []
        for i, info in infos:
            try:
                info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
            except (RuntimeError, ValueError):
                pass
            if not info.is_published():
                missed.append(i)
        return missed

    def count(self) -> int:
        """Messages received and not yet taken by wait_messages()."""
        with self._lock:
            return len(self._messages)

    def wait_messages(self, n: int, timeout_s: float) -> List[Any]:
        """Like ClientProcess.wait_messages: what arrived since the last call, once >= n or timed out."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / 0.01) + 1):
            with self._lock:
                if len(self._messages) >= n or time.monotonic() >= deadline:
                    taken, self._messages = self._messages, []
                    return taken
            time.sleep(0.01)
        with self._lock:
            taken, self._messages = self._messages, []
        return taken

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class Flow:
    """One direction at one QoS: what was sent and what arrived."""

    direction: str
    qos: int
    sent: int
    arrivals: Counter = field(default_factory=Counter)  # number -> times delivered
    unexpected: List[bytes] = field(default_factory=list)  # payloads that are no number sent

    @property
    def received(self) -> int:
        return len(self.arrivals)

    @property
    def lost(self) -> List[int]:
        return [i for i in range(self.sent) if i not in self.arrivals]

    @property
    def doubled(self) -> List[int]:
        """The numbers that arrived more than once."""
        return sorted(n for n, times in self.arrivals.items() if times > 1)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.arrivals.values())

    def summary(self) -> str:
        lost = self.lost
        twice = self.doubled if self.qos == 2 else []
        return "%s QoS %d: sent %d, received %d, lost %d%s, duplicates %d%s%s" % (
            self.direction, self.qos, self.sent, self.received, len(lost),
            " %s" % lost[:20] if lost else "", self.duplicates,
            " %s" % twice[:20] if twice else "",
            ", unexpected %r" % self.unexpected[:5] if self.unexpected else "",
        )


@dataclass
class Result:
    flows: Dict[Tuple[str, int], Flow]
    not_confirmed: Dict[str, List[Any]]  # per side: publish() calls that returned False
    seconds: float

    def flow(self, direction: str, qos: int) -> Flow:
        return self.flows[(direction, qos)]

    def problems(self) -> List[str]:
        """Broken promises: a QoS 1/2 message lost, a QoS 2 message delivered twice."""
        found = []
        for f in self.flows.values():
            if f.lost or f.unexpected or (f.qos == 2 and f.duplicates):
                found.append(f.summary())
        return found

    def report(self) -> str:
        return "\n".join(f.summary() for f in self.flows.values())

    def counts(self) -> Dict[str, int]:
        """Totals for reliability_log.record(), per QoS over both directions."""
        out: Dict[str, int] = {}
        for qos in (1, 2):
            fs = [f for f in self.flows.values() if f.qos == qos]
            out["sent_q%d" % qos] = sum(f.sent for f in fs)
            out["received_q%d" % qos] = sum(f.received for f in fs)
            out["lost_q%d" % qos] = sum(len(f.lost) for f in fs)
            out["duplicates_q%d" % qos] = sum(f.duplicates for f in fs)
        return out


def topic(root: bytes, direction: str, qos: int) -> bytes:
    return b"%s/%s/q%d" % (root, direction.encode(), qos)


def connect_pair(node: ClientProcess, peer: Peer, root: bytes) -> None:
    """The peer subscribes to what the node sends and vice versa; the node keeps its session
    (clean_session=False), so the broker holds its deliveries across the link's failures."""
    peer.subscribe(root + b"/" + UP.encode() + b"/#", qos=2)
    node.connect(clean_session=False)
    assert node.subscribe(root + b"/" + DOWN.encode() + b"/#", qos=2) == 2


def run(node: ClientProcess, peer: Peer, root: bytes, q1: int, q2: int, *,
        deadline_s: float, started: Optional[Callable[[], None]] = None) -> Result:
    """Both sides publish q1 QoS 1 and q2 QoS 2 numbered messages at once, then both listen until
    every number arrived or deadline_s (from the start) passed. `started` runs just before."""
    t0 = time.monotonic()
    deadline = t0 + deadline_s
    flows = {(d, q): Flow(d, q, n) for d in (UP, DOWN) for q, n in ((1, q1), (2, q2))}
    not_confirmed: Dict[str, List[Any]] = {"node": [], "peer": []}
    errors: List[BaseException] = []
    down_topics = {topic(root, DOWN, q): flows[(DOWN, q)] for q in (1, 2)}

    def publish(side: Any, name: str, direction: str) -> None:
        try:
            for r in range(ROUNDS):
                for qos, n in ((1, q1), (2, q2)):
                    first, last = n * r // ROUNDS, n * (r + 1) // ROUNDS
                    left = max(deadline - time.monotonic(), 1.0)
                    t = topic(root, direction, qos)
                    if side is peer:
                        missed = peer.publish_many(t, last - first, qos, first, left)
                    else:
                        missed = side._publish_many(t, last - first, qos, first=first, call_timeout=left + CALL_MARGIN_S)
                        # What the node received meanwhile, taken now: a run's worth of
                        # duplicates in one reply would not fit a small MicroPython heap.
                        _tally(side.messages(), down_topics)
                    not_confirmed[name].extend((qos, i) for i in missed)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    def collect(side: Any, direction: str) -> None:
        try:
            _collect(side, root, direction, flows, deadline)
        except BaseException as e:
            errors.append(e)

    if started is not None:
        started()
    peer_thread = threading.Thread(target=publish, args=(peer, "peer", DOWN), daemon=True)
    peer_thread.start()
    publish(node, "node", UP)
    peer_thread.join(max(deadline - time.monotonic(), 0) + CALL_MARGIN_S)
    if errors:
        raise errors[0]
    peer_thread = threading.Thread(target=collect, args=(peer, UP), daemon=True)
    peer_thread.start()
    collect(node, DOWN)
    peer_thread.join(max(deadline - time.monotonic(), 0) + GRACE_S + CALL_MARGIN_S)
    if errors:
        raise errors[0]
    return Result(flows, not_confirmed, time.monotonic() - t0)


def _collect(side: Any, root: bytes, direction: str, flows: Dict[Tuple[str, int], Flow],
             deadline: float) -> None:
    """Service `side` and tally what it receives until all of `direction` arrived or the deadline,
    then for GRACE_S more, for duplicates that trail."""
    mine = [f for (d, _), f in flows.items() if d == direction]
    by_topic = {topic(root, f.direction, f.qos): f for f in mine}
    max_calls = int((deadline - time.monotonic()) / DRAIN_SLICE_S) + 2
    last_new = time.monotonic()
    for _ in range(max_calls):
        missing = sum(len(f.lost) for f in mine)
        left = deadline - time.monotonic()
        if not missing or left <= 0 or time.monotonic() - last_new > IDLE_S:
            break
        _tally(side.wait_messages(missing, min(DRAIN_SLICE_S, left)), by_topic)
        if sum(len(f.lost) for f in mine) < missing:
            last_new = time.monotonic()
    _tally(side.wait_messages(1 << 30, GRACE_S), by_topic)


def _tally(messages: List[Any], by_topic: Dict[bytes, Flow]) -> None:
    for m in messages:
        f = by_topic.get(m[0])
        if f is None:
            continue  # the other direction's topic: not this side's business
        try:
            n = int(m[1].rstrip(b"."))
        except ValueError:
            n = -1
        if 0 <= n < f.sent:
            f.arrivals[n] += 1
        else:
            f.unexpected.append(m[1])
