"""A QoS 2 publish whose link drops after the broker's PUBREC, and whose client reconnects with a
clean session: the broker has the message (PUBREC made it the broker's [MQTT-4.3.3]) and the
clean session ends the flow [MQTT-3.1.2-6], so no PUBCOMP will come. publish() reports it
delivered (True) and it is not sent again. A message the broker had not confirmed is re-queued
under a new id instead, and publish() says so (False) at the reconnect, not after its timeout.

Before, both clients reported False for the taken message, and a program that publishes again
on False (as umqtt users do) delivered it twice. The broker is tests/fake_broker.py, so the link
drops exactly between PUBREC and PUBCOMP.
"""
from __future__ import annotations

import time

import pytest

from fake_broker import (
    CONNECT, DISCONNECT, PUBLISH, PUBREC, PUBREL, Close, Expect, FakeBroker, Reply, Send, Serve, ack, connack,
)

TOPIC = b"mqnode/clean-reconnect"
TIMEOUT_S = 3.0  # the client's timeout: the old behaviour waited this long, then said False
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


@pytest.mark.parametrize("pubrec", [True, False], ids=["taken", "unconfirmed"])
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

    assert first is pubrec
    assert elapsed < CALL_BOUND_S
    assert after is True
    assert reconnects == 1
    expected = [b"after"] if pubrec else [b"across", b"after"]
    assert _publishes(fake, 1) == expected
    assert fake.connections[1].kinds()[-1] == DISCONNECT
    fake.check()


@pytest.mark.parametrize("pubrec", [True, False], ids=["taken", "unconfirmed"])
def test_aio_publish_across_a_clean_reconnect(start_aio, pubrec: bool) -> None:
    with FakeBroker(_script(pubrec)) as fake:
        node = start_aio()
        r = node.run("publish_across_clean_reconnect", topic=TOPIC, fake_port=fake.port)
        assert fake.wait_done(TIMEOUT_S)

    assert r == {"first": pubrec, "after": True, "reconnects": 1}
    expected = [b"after"] if pubrec else [b"across", b"after"]
    assert _publishes(fake, 1) == expected
    fake.check()
