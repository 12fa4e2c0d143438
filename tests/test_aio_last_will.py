"""The last will of an asyncio client: published when its connection ends without DISCONNECT
(the socket closed under it, or its process killed) [MQTT-3.1.2-8], and discarded after a
clean disconnect() [MQTT-3.1.2-10].
"""
from __future__ import annotations

WILL = b"gone"


def test_will_is_published_when_the_socket_closes_without_disconnect(run_aio, topic_root: bytes) -> None:
    topic = topic_root + b"/will"

    received = run_aio("will", topic=topic, end="abort")

    assert received == [[topic, WILL, 1, 0, 0]]


def test_will_is_published_when_the_client_process_is_killed(start_aio, topic_root: bytes) -> None:
    topic = topic_root + b"/will"
    observer, node = start_aio(), start_aio()
    observer.start("observe", topic=topic, n=1)
    observer.wait_pause("subscribed")
    observer.proceed("subscribed")
    node.start("hold_will", topic=topic)
    node.wait_pause("connected")

    node.kill()

    assert observer.result() == [[topic, WILL, 1, 0, 0]]


def test_will_is_not_published_after_disconnect(run_aio, topic_root: bytes) -> None:
    topic = topic_root + b"/will"

    received = run_aio("will", topic=topic, end="disconnect", quiet_s=1.0)

    assert received == []
