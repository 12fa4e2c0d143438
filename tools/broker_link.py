"""A broker handle for commands that ask a node something and wait for its answer (cmd, deploy):
a paho-mqtt client subscribed to a few topics, every message kept in arrival order.

Retained messages: after subscribing, the link publishes to a topic of its own and waits for it
to come back. The broker sends a subscription's retained messages before it handles the next
packet from the same client, so once that echo arrives every retained message is in (no guessed
grace period). Everything after `mark()` arrived live.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import paho.mqtt.client as paho

from mqnode_tools.settings import Login, connect, refusal

CONNECT_TIMEOUT_S = 5.0
ECHO_PREFIX = "mqnode-tools/echo/"


class BrokerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic()

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


class BrokerLink:
    def __init__(self, host: str, port: int, topics: Sequence[str], timeout_s: float = CONNECT_TIMEOUT_S,
                 login: Login = Login()) -> None:
        """Connected and subscribed (QoS 1) to `topics`, retained messages received, or BrokerError."""
        self.address = "%s:%d" % (host, port)
        self.messages: List[Message] = []
        self._changed = threading.Condition()
        self._connected: Optional[int] = None
        self._echo = ECHO_PREFIX + uuid.uuid4().hex
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        try:
            connect(self.client, host, port, login)
        except (OSError, ValueError) as e:  # ValueError: a CA file that is no certificate
            raise BrokerError("broker %s: %s" % (self.address, e))
        self.client.loop_start()
        deadline = time.monotonic() + timeout_s
        if not self._wait(lambda: self._connected is not None, deadline) or self._connected != 0:
            self.close()
            raise BrokerError("broker %s: no connection (%s)" % (
                self.address, "no answer" if self._connected is None else refusal(self._connected)))
        for topic in [*topics, self._echo]:
            self.client.subscribe(topic, qos=1)
        self.client.publish(self._echo, b"", qos=1)
        if not self._wait(lambda: any(m.topic == self._echo for m in self.messages), deadline):
            self.close()
            raise BrokerError("broker %s: the subscription was not confirmed in %.0f s" % (self.address, timeout_s))
        with self._changed:
            self.messages = [m for m in self.messages if m.topic != self._echo]

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, rc: paho.ReasonCode, props: object) -> None:
        with self._changed:
            self._connected = rc.value
            self._changed.notify_all()

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Message(msg.topic, msg.payload, bool(msg.retain), time.monotonic()))
            self._changed.notify_all()

    def _wait(self, ready: Callable[[], bool], deadline: float) -> bool:
        with self._changed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.1))
            return True

    def mark(self) -> int:
        with self._changed:
            return len(self.messages)

    def retained(self, topic: str) -> Optional[Message]:
        """The newest retained message on `topic` received at subscription time."""
        with self._changed:
            found = [m for m in self.messages if m.topic == topic and m.retain]
        return found[-1] if found else None

    def wait_for(self, match: Callable[[Message], bool], since: int, timeout_s: float) -> Optional[Message]:
        """The first message after position `since` that matches, or None after timeout_s."""
        found: List[Message] = []

        def ready() -> bool:
            found[:] = [m for m in self.messages[since:] if match(m)][:1]
            return bool(found)

        self._wait(ready, time.monotonic() + timeout_s)
        return found[0] if found else None

    def publish(self, topic: str, payload: bytes, timeout_s: float, qos: int = 1) -> bool:
        """True once the broker acknowledged it (PUBACK for QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
