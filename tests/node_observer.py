"""Watching simulated nodes from the test process: a paho-mqtt subscriber that keeps every message
with the time it arrived, and bounded waits over that log.

Home Assistant, the monitor and a person with mosquitto_sub all see a node only through the broker,
so the node tests do too: nothing here reaches into the node process.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Union

import paho.mqtt.client as mqtt

CONNECT_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 5.0
SUMMARY_MESSAGES = 30  # how much of the log a failed wait shows


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float  # time.monotonic() when paho handed it over

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


Predicate = Callable[[Message], bool]


def on(topic: str, payload: Union[None, str, bytes] = None) -> Predicate:
    """A predicate: the topic (wildcards allowed) and, if given, exactly this payload."""
    want = payload.encode() if isinstance(payload, str) else payload

    def match(m: Message) -> bool:
        return mqtt.topic_matches_sub(topic, m.topic) and (want is None or m.payload == want)

    return match


class Observer:
    """Subscribed (QoS 1) to `filters` before the constructor returns; every message goes into
    `log` in arrival order. Use `mark()` to look only at what comes after a point."""

    def __init__(self, host: str, port: int, filters: Sequence[str], name: str = "observer") -> None:
        self.filters = list(filters)
        self.log: List[Message] = []
        self._cond = threading.Condition()
        self._pending_subacks = -1
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="%s-%s" % (name, uuid.uuid4().hex[:8]))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending_subacks == 0, CONNECT_TIMEOUT_S):
                self.close()
                raise AssertionError("observer: not subscribed to %s on %s:%d within %.0f s"
                                     % (self.filters, host, port, CONNECT_TIMEOUT_S))

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:
        with self._cond:
            self._pending_subacks = len(self.filters)
        for f in self.filters:
            client.subscribe(f, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: object,
                      properties: object) -> None:
        with self._cond:
            self._pending_subacks -= 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.monotonic())
        with self._cond:
            self.log.append(m)
            self._cond.notify_all()

    def mark(self) -> int:
        """A position in the log: waits and queries given it look only at later messages."""
        with self._cond:
            return len(self.log)

    def messages(self, match: Optional[Predicate] = None, start: int = 0) -> List[Message]:
        with self._cond:
            return [m for m in self.log[start:] if match is None or match(m)]

    def wait_count(self, match: Predicate, count: int, timeout: float, start: int = 0) -> List[Message]:
        """The first `count` matching messages after `start`; AssertionError if they do not all
        arrive within `timeout` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: len([m for m in self.log[start:] if match(m)]) >= count, timeout)
            found = [m for m in self.log[start:] if match(m)]
        if len(found) < count:
            raise AssertionError("expected %d matching messages within %.1f s, got %d; the log:\n%s"
                                 % (count, timeout, len(found), self.summary(start)))
        return found[:count]

    def wait(self, match: Predicate, timeout: float, start: int = 0) -> Message:
        return self.wait_count(match, 1, timeout, start)[0]

    def publish(self, topic: str, payload: Union[str, bytes], qos: int = 1, retain: bool = False) -> float:
        """Publish and wait until the broker has it (PUBACK for QoS 1); returns when it was sent."""
        sent = time.monotonic()
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise AssertionError("observer: publish to %s not confirmed within %.0f s" % (topic, PUBLISH_TIMEOUT_S))
        return sent

    def summary(self, start: int = 0) -> str:
        with self._cond:
            tail = self.log[start:][-SUMMARY_MESSAGES:]
        return "\n".join("  %.3f %s %r%s" % (m.at, m.topic, m.payload[:120], " (retained)" if m.retain else "")
                         for m in tail) or "  (nothing)"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
