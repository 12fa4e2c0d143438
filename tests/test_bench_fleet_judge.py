"""The fleet step's verdict checks delivery message by message: a count that adds up (one message
lost, another delivered twice) still fails the step, and the report names the missing message.
judge() runs on what the node processes reported and what the subscriber collected; the
subscriber here is that collection alone, since judge() reads nothing else of it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from mqnode_tools import bench_fleet
from mqnode_tools.bench_fleet import Step, judge


def _results(acked_by_node: dict) -> list:
    """One node process's report: node -> bit mask of its acknowledged messages, latencies."""
    acked = sum(bin(mask).count("1") for mask in acked_by_node.values())
    return [{"acked_by_node": {str(n): m for n, m in acked_by_node.items()}, "lat_us": [1000] * acked}]


@pytest.fixture(autouse=True)
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_fleet, "DELIVERY_GRACE_S", 0.05)  # what is missing stays missing here


def test_a_lost_message_fails_the_step_even_when_a_duplicate_makes_the_count_add_up() -> None:
    step = Step(nodes=2, processes=1, expected=4)
    sub = SimpleNamespace(got={(0, 0), (0, 1), (1, 0)}, copies=4)  # (1, 1) lost, (0, 0) twice
    judge(step, _results({0: 0b11, 1: 0b11}), sub)
    assert (step.acked, step.delivered, step.duplicates) == (4, 3, 1)
    assert step.problem == "3 of 4 acknowledged messages delivered (first missing: node 1, message 1)"


def test_a_step_whose_every_message_arrived_once_holds() -> None:
    step = Step(nodes=2, processes=1, expected=4)
    judge(step, _results({0: 0b11, 1: 0b11}), SimpleNamespace(got={(0, 0), (0, 1), (1, 0), (1, 1)}, copies=4))
    assert (step.acked, step.delivered, step.duplicates, step.problem) == (4, 4, 0, "")
    assert step.ok


def test_a_message_that_arrived_unacknowledged_is_not_counted_as_delivered() -> None:
    step = Step(nodes=2, processes=1, expected=4)
    sub = SimpleNamespace(got={(0, 0), (0, 1), (1, 0), (1, 1)}, copies=4)
    judge(step, _results({0: 0b11, 1: 0b01}), sub)  # (1, 1) arrived, but its PUBACK never came
    assert (step.acked, step.delivered) == (3, 3)
    assert step.problem == "3 of 4 messages acknowledged"
