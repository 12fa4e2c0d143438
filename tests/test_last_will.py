"""The last will: published by the broker when the client goes without DISCONNECT, with the qos and
retain it was set with [MQTT-3.1.2-8], and discarded after a DISCONNECT [MQTT-3.1.2-10].
"""
from __future__ import annotations

import pytest

DELIVERY_DEADLINE_S = 5.0
NO_WILL_WAIT_S = 1.0  # mosquitto handles a DISCONNECT in well under this


def _node_with_will(start_client, topic: bytes, qos: int, retain: bool):
    node = start_client()
    node.set_last_will(topic, b"gone", retain=retain, qos=qos)
    node.connect()
    return node


def _observer(start_client, topic: bytes):
    observer = start_client()
    observer.connect()
    observer.subscribe(topic, qos=2)
    return observer


@pytest.mark.parametrize("end", ["close", "kill"], ids=["socket_closed", "process_killed"])
def test_will_is_published_when_the_client_goes_without_disconnect(start_client, topic_root: bytes, end: str) -> None:
    topic = topic_root + b"/will"
    node = _node_with_will(start_client, topic, qos=1, retain=False)
    observer = _observer(start_client, topic)

    if end == "close":
        node.close()  # the socket closes, no DISCONNECT sent
    else:
        node.kill()  # the process dies; the kernel closes its socket

    assert observer.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"gone", 0, 1, 0)]


def test_will_keeps_its_qos_and_retain_flag(start_client, topic_root: bytes) -> None:
    topic = topic_root + b"/will"
    node = _node_with_will(start_client, topic, qos=2, retain=True)
    observer = _observer(start_client, topic)

    node.close()
    try:
        # Live subscribers see RETAIN 0 [MQTT-3.3.1-9]; the will's retain shows to a later one.
        assert observer.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"gone", 0, 2, 0)]
        late = _observer(start_client, topic)
        assert late.wait_messages(1, DELIVERY_DEADLINE_S) == [(topic, b"gone", 1, 2, 0)]
    finally:
        observer.publish(topic, b"", retain=True, qos=1)


def test_will_is_not_published_after_disconnect(start_client, topic_root: bytes) -> None:
    topic = topic_root + b"/will"
    node = _node_with_will(start_client, topic, qos=1, retain=True)
    observer = _observer(start_client, topic)

    node.disconnect()

    assert observer.wait_messages(1, NO_WILL_WAIT_S) == []
    late = _observer(start_client, topic)  # nor was it retained
    assert late.wait_messages(1, 0.3) == []
