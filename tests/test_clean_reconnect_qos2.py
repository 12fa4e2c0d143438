"""A QoS 2 publish whose link drops mid-flow, and whose client reconnects with a clean session:
before PUBREC, or after PUBREC with the PUBREL sent and unanswered. The clean session ends the
flow on both sides [MQTT-3.1.2-6], and a broker may deliver a QoS 2 message only at the PUBREL
(mosquitto does), so in both cases the message may not have been delivered: it goes out again as
a new message, and publish() says False (not confirmed; it goes out by itself) at the reconnect.

Before, a message past PUBREC was dropped: lost whenever the PUBREL had not reached the broker.
And the blocking client's publish() waited out its whole timeout before saying False. The broker
is tests/fake_broker.py, so the link drops exactly where each case needs it.
"""
from __future__ import annotations

import time

import pytest

from fake_broker import (
    CONNECT, DISCONNECT, PUBLISH, PUBREC, PUBREL, Close, Expect, FakeBroker, Reply, Send, Serve, ack, connack,
)

TOPIC = b"mqnode/clean-reconnect"
TIMEOUT_S = 3.0  # the client's timeout: the blocking client used to wait this long before saying False
CALL_BOUND_S = 2.0  # the answer comes at the reconnect: backoff (<= 0.2 s) plus a round trip


def _script(pubrec: bool) -> list:
    """First connection: CONNACK, the QoS 2 PUBLISH (answered with PUBREC and the PUBREL awaited,
    or left unanswered), then the link drops. Second: a well-behaved broker."""
    first = [Expect(CONNECT), Send(connack(0)), Expect(PUBLISH)]
    if pubrec:
        first += [Reply(lambda p: ack(PUBREC, p.packet_id)), Expect(PUBREL)]
    return [first + [Close()], [Expect(CONNECT), Send(connack(0)), Serve()]]


def _publishes(fake: FakeBroker, connection: int) -> list:
    return [p.publish()[2] for p in fake.connections[connection].packets if p.kind == PUBLISH]


@pytest.mark.parametrize("pubrec", [True, False], ids=["past-pubrec", "before-pubrec"])
def test_blocking_publish_across_a_clean_reconnect(start_client, pubrec: bool) -> None:
    with FakeBroker(_script(pubrec)) as fake:
        c = start_client(port=fake.port, timeout=TIMEOUT_S, backoff=(0.05, 0.2))
        assert c.connect() == 0
        start = time.monotonic()
        first = c.publish(TOPIC, b"across", qos=2)
        elapsed = time.monotonic() - start
        after = c.publish(TOPIC, b"after", qos=1)
        reconnects = c.counters()["reconnects"]
        c.disconnect()
        assert fake.wait_done(TIMEOUT_S)

    assert first is False
    assert elapsed < CALL_BOUND_S
    assert after is True
    assert reconnects == 1
    assert _publishes(fake, 1) == [b"across", b"after"]
    assert fake.connections[1].kinds()[-1] == DISCONNECT
    fake.check()


@pytest.mark.parametrize("pubrec", [True, False], ids=["past-pubrec", "before-pubrec"])
def test_aio_publish_across_a_clean_reconnect(start_aio, pubrec: bool) -> None:
    with FakeBroker(_script(pubrec)) as fake:
        node = start_aio()
        r = node.run("publish_across_clean_reconnect", topic=TOPIC, fake_port=fake.port)
        assert fake.wait_done(TIMEOUT_S)

    assert r == {"first": False, "after": True, "reconnects": 1}
    assert _publishes(fake, 1) == [b"across", b"after"]
    fake.check()
