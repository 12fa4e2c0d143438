"""Every publish QoS against every subscription QoS: the broker grants what was asked, and a
message is delivered at the lower of the two [MQTT-3.8.4-6] ("the QoS of Payload Messages sent
in response to a Subscription MUST be the minimum of the QoS of the originally published message
and the maximum QoS granted by the Server").

Publisher and subscriber are both the client under test, each in its own process.
"""
from __future__ import annotations

import pytest

QOS = (0, 1, 2)
DELIVERY_DEADLINE_S = 5.0


@pytest.mark.parametrize("sub_qos", QOS, ids=lambda q: "sub%d" % q)
@pytest.mark.parametrize("pub_qos", QOS, ids=lambda q: "pub%d" % q)
def test_message_is_delivered_at_the_lower_of_publish_and_subscription_qos(
    start_client, topic_root: bytes, pub_qos: int, sub_qos: int
) -> None:
    topic = topic_root + b"/m"
    subscriber, publisher = start_client(), start_client()
    subscriber.connect()
    publisher.connect()

    assert subscriber.subscribe(topic, qos=sub_qos) == sub_qos

    payload = b"pub%d-sub%d" % (pub_qos, sub_qos)
    publisher.publish(topic, payload, qos=pub_qos)
    received = subscriber.wait_messages(1, DELIVERY_DEADLINE_S)

    assert received == [(topic, payload, 0, min(pub_qos, sub_qos), 0)]
