"""100,000 QoS 1 messages through the MicroPython client on a board-sized heap leak nothing.

MicroPython only: the claim is about the GC heap a board has, which CPython does not model. The
client runs under `-X heapsize=64k` from lib/ compiled to .mpy (as a board holds it) and publishes
to the real mosquitto; nothing subscribes, since each publish already waits for its PUBACK. The
heap in use after gc.collect() is read once the first 1,000 messages are through (buffers grown,
every code path warmed up) and again at the end.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from compiled_lib import compile_lib, loaded_from
from reliability_log import record

MESSAGES = 100_000
WARM_UP = 1_000
CHUNK = 11_000  # messages per driver request: well under a second each at ~15k msg/s
MAX_GROWTH_BYTES = 1024
SMALL_HEAP = "64k"
CHUNK_CALL_TIMEOUT_S = 20.0


@pytest.mark.parametrize("runtime", ["micropython"], indirect=True)
def test_100k_qos1_messages_leave_the_heap_where_it_was_after_the_first_1000(
    start_client, runtime, topic_root: bytes, tmp_path: Path
) -> None:
    compiled = compile_lib(tmp_path / "mpy")
    assert loaded_from(compiled, SMALL_HEAP).endswith("client.mpy")
    c = start_client(heapsize=SMALL_HEAP, extra_path=[compiled])
    c.connect()
    topic = topic_root + b"/soak"
    start = time.monotonic()

    assert c._publish_many(topic, WARM_UP, 1) == []
    early = c.mem()
    sent = WARM_UP
    for _ in range(MESSAGES // CHUNK + 1):
        count = min(CHUNK, MESSAGES - sent)
        if count <= 0:
            break
        assert c._publish_many(topic, count, 1, first=sent, call_timeout=CHUNK_CALL_TIMEOUT_S) == []
        sent += count
    end = c.mem()
    seconds = time.monotonic() - start
    counters = c.counters()
    c.disconnect()
    record("soak/qos1_100k", runtime, messages=sent, seconds=round(seconds, 2), heap_early=early,
           heap_end=end, resends=counters["resends"], reconnects=counters["reconnects"])

    assert sent == MESSAGES
    assert end - early <= MAX_GROWTH_BYTES, "heap grew from %d to %d bytes" % (early, end)
    assert counters["reconnects"] == 0 and counters["inflight"] == 0
