"""Ordering through the asyncio client: 1,000 QoS 1 messages from one publisher reach a subscriber
in the order published [MQTT-4.6.0-5], all acknowledged; and on a 64 KB MicroPython heap, the
size of a small board's, with lib/mqtt and the driver loaded as .mpy files, as a board holds
them (compiling their source needs more heap than that).

On 64 KB the scenario is aio_small.echo: one client that publishes to itself, no test helpers;
the two-client scenarios with aio_kit's helpers need about 96 KB.

The subscriber's queue holds every message here (incoming=count), so this is about order alone;
what a small queue does is test_aio_backpressure's subject.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiled_lib import COMPILE_TIMEOUT_S, compile_lib, loaded_from, mpy_cross
from runtime import AIO_DRIVER

COUNT = 1000
# Each of these round trips costs ~40 ms on MicroPython, whose asyncio streams leave Nagle's
# algorithm on (the aio client does not set TCP_NODELAY): the client's second small write in a
# row waits for the broker's delayed ACK of the first. Fifty make the point.
SMALL_HEAP_COUNT = 50
SMALL_HEAP = "64k"
SMALL_HEAP_MODULES = ("aio_driver", "aio_wire", "aio_small")


def test_thousand_qos1_messages_arrive_in_publish_order(run_aio, topic_root: bytes) -> None:
    r = run_aio("in_order", topic=topic_root + b"/seq", count=COUNT, qos=1)

    assert r["not_true"] == []
    assert r["dropped_in"] == 0
    assert r["received"] == list(range(COUNT))


@pytest.mark.parametrize("runtime", ["micropython"])  # the heap size only binds MicroPython
def test_qos1_messages_arrive_in_order_on_a_64k_heap(start_aio, topic_root: bytes, tmp_path: Path) -> None:
    compiled = compile_lib(tmp_path / "mpy")
    for name in SMALL_HEAP_MODULES:
        source, target = AIO_DRIVER.parent / (name + ".py"), compiled / (name + ".mpy")
        subprocess.run([str(mpy_cross()), "-o", str(target), str(source)],
                       check=True, capture_output=True, timeout=COMPILE_TIMEOUT_S)
    assert loaded_from(compiled, SMALL_HEAP).endswith("client.mpy")
    process = start_aio(heapsize=SMALL_HEAP, extra_path=[compiled], module="aio_driver")

    r = process.run("echo", module="aio_small", topic=topic_root + b"/seq", count=SMALL_HEAP_COUNT, qos=1)

    assert r["not_true"] == 0
    assert r["received"] == list(range(SMALL_HEAP_COUNT))
