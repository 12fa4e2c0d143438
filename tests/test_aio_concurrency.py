"""Many publishers in one event loop: 100 QoS 1 publishes started at once from 10 tasks (far
beyond the in-flight window of 16) are all acknowledged, each publish() returning True, and a
subscriber receives every one of the 100 distinct payloads.
"""
from __future__ import annotations

TASKS = 10
PER_TASK = 10


def test_hundred_concurrent_qos1_publishes_from_ten_tasks_are_all_acknowledged(run_aio, topic_root: bytes) -> None:
    r = run_aio("concurrent", topic=topic_root + b"/c", tasks=TASKS, per_task=PER_TASK, qos=1)

    assert r["published"] == [True] * (TASKS * PER_TASK)
    assert r["inflight"] == 0
    expected = {b"%d-%d" % (k, i) for k in range(TASKS) for i in range(PER_TASK)}
    assert len(r["received"]) == len(expected)
    assert set(r["received"]) == expected
