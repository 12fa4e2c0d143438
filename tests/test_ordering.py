"""Ordering: QoS 1 messages from one publisher reach a subscriber in the order sent
[MQTT-4.6.0-5] (mosquitto treats each topic as an ordered topic), over 1,000 messages; also with
both clients on a 64 KB MicroPython heap, the size of a small board's.

On 64 KB the client runs from .mpy files, as on a board: compiling its source needs more heap
than that.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from compiled_lib import compile_lib, loaded_from

COUNT = 1000
BATCH = 100  # messages the driver collects per call
SMALL_HEAP_BATCH = 1  # on 64 KB the client takes ~36 KB and the driver ~10 KB: keep its JSON replies small
BATCH_DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = compile_lib(tmp_path_factory.mktemp("mpy"))
    assert loaded_from(folder).endswith(".mpy")
    return folder


def _sequence_numbers(start_client, topic: bytes, batch_size: int = BATCH, **client_kwargs) -> List[int]:
    subscriber, publisher = start_client(**client_kwargs), start_client(**client_kwargs)
    subscriber.connect()
    publisher.connect()
    subscriber.subscribe(topic, qos=1)

    for n in range(COUNT):
        publisher.publish(topic, b"%d" % n, qos=1)

    received: List[int] = []
    for _ in range(COUNT // batch_size):
        batch = subscriber.wait_messages(batch_size, BATCH_DEADLINE_S)
        assert all((t, qos) == (topic, 1) for t, _m, _r, qos, _d in batch)
        received.extend(int(m) for _t, m, *_ in batch)
        if len(batch) < batch_size:
            break
    return received


def test_thousand_qos1_messages_arrive_in_publish_order(start_client, topic_root: bytes) -> None:
    assert _sequence_numbers(start_client, topic_root + b"/seq") == list(range(COUNT))


@pytest.mark.parametrize("runtime", ["micropython"])  # the heap size only binds MicroPython
def test_thousand_qos1_messages_arrive_in_order_on_a_64k_heap(
    start_client, topic_root: bytes, compiled: Path
) -> None:
    numbers = _sequence_numbers(
        start_client, topic_root + b"/seq", SMALL_HEAP_BATCH, heapsize="64k", extra_path=[compiled]
    )
    assert numbers == list(range(COUNT))
