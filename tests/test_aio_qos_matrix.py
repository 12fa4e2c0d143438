"""The asyncio client, publishing and subscribing, at every pair of QoS: the broker grants what
was asked, publish() returns True once its flow completes, and the message is delivered at the
lower of the two [MQTT-3.8.4-6].

Publisher and subscriber are two aio Clients in one driver process (one event loop).
"""
from __future__ import annotations

import pytest

QOS = (0, 1, 2)


@pytest.mark.parametrize("sub_qos", QOS, ids=lambda q: "sub%d" % q)
@pytest.mark.parametrize("pub_qos", QOS, ids=lambda q: "pub%d" % q)
def test_message_is_delivered_at_the_lower_of_publish_and_subscription_qos(
    run_aio, topic_root: bytes, pub_qos: int, sub_qos: int
) -> None:
    topic = topic_root + b"/m"
    payload = b"pub%d-sub%d" % (pub_qos, sub_qos)

    r = run_aio("pubsub", topic=topic, payloads=[payload], pub_qos=pub_qos, sub_qos=sub_qos)

    assert r["granted"] == sub_qos
    assert r["published"] == [True]
    assert r["received"] == [[topic, payload, min(pub_qos, sub_qos), 0, 0]]
