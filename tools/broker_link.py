"""A broker handle for commands that ask a node something and wait for its answer (cmd, deploy):
a paho-mqtt client subscribed to a few topics, every message kept in arrival order.

Retained messages: after subscribing, the link publishes to a topic of its own and waits for it
to come back. The broker sends a subscription's retained messages before it handles the next
packet from the same client, so once that echo arrives every retained message is in (no guessed
grace period). Everything after `mark()` arrived live.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import paho.mqtt.client as paho

from mqnode_tools.settings import PASSWORD_ENV, Login

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


def connected_client(host: str, port: int, login: Login, timeout_s: float,
                     on_message: Callable[[paho.Client, object, paho.MQTTMessage], None],
                     on_connected: Optional[Callable[[paho.Client], None]] = None) -> paho.Client:
    """A paho client logged in as `login` says, its network loop running and its CONNACK in, or
    BrokerError: a broker that refuses the login must not look like one without nodes.
    on_connected runs at every accepted CONNACK, paho's own reconnects included."""
    address = "%s:%d" % (host, port)
    answers: "queue.Queue[int]" = queue.Queue()

    def on_connect(c: paho.Client, u: object, f: object, rc: paho.ReasonCode, p: object) -> None:
        if rc.value == 0 and on_connected:
            on_connected(c)
        answers.put(rc.value)

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
    client.on_connect = on_connect
    client.on_message = on_message
    try:
        if login.user is not None:
            client.username_pw_set(login.user, login.password)
        if login.tls:
            client.tls_set(ca_certs=login.ca)
        client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as e:  # ValueError: a CA file that is no certificate
        raise BrokerError("broker %s: %s" % (address, e))
    client.loop_start()
    try:
        code: Optional[int] = answers.get(timeout=timeout_s)
    except queue.Empty:
        code = None
    if code != 0:
        client.disconnect()
        client.loop_stop()
        raise BrokerError("broker %s: no connection (%s)" % (address, "no answer" if code is None else _refusal(code)))
    return client


def _refusal(code: int) -> str:
    """What a refused CONNACK means, for one line (paho reports MQTT 3.1.1's codes 4 and 5 as 134
    and 135)."""
    if code in (4, 5, 134, 135):
        return "refused: not authorised (give --user, and the password in $%s)" % PASSWORD_ENV
    return "refused, code %d" % code


class BrokerLink:
    def __init__(self, host: str, port: int, topics: Sequence[str], timeout_s: float = CONNECT_TIMEOUT_S,
                 login: Login = Login()) -> None:
        """Connected and subscribed (QoS 1) to `topics`, retained messages received, or BrokerError."""
        self.address = "%s:%d" % (host, port)
        self.messages: List[Message] = []
        self._changed = threading.Condition()
        self._echo = ECHO_PREFIX + uuid.uuid4().hex
        deadline = time.monotonic() + timeout_s
        self.client = connected_client(host, port, login, timeout_s, self._on_message)
        for topic in [*topics, self._echo]:
            self.client.subscribe(topic, qos=1)
        self.client.publish(self._echo, b"", qos=1)
        if not self._wait(lambda: any(m.topic == self._echo for m in self.messages), deadline):
            self.close()
            raise BrokerError("broker %s: the subscription was not confirmed in %.0f s" % (self.address, timeout_s))
        with self._changed:
            self.messages = [m for m in self.messages if m.topic != self._echo]

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
