"""Motion: a PIR edge (pin 15 on boards/sim.json) reaches `.../binary_sensor/motion/state` as
`ON` within 200 ms (the spec's bound, from the pin changing to the message arriving), and `OFF`
follows when the pin drops; every edge of a burst is reported, none is lost or repeated. Bad
stdin lines are skipped, and a node waiting for motion sleeps rather than polls.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from node_observer import on
from sim_node import NodeFactory, ObserverFactory, make_node, observe, wait_announced  # noqa: F401 (fixtures)

PIR_PIN = 15
MOTION_BOUND_S = 0.200  # spec
OFF_TIMEOUT_S = 2.0  # not bounded by the spec: generous
CYCLES = 3


def test_motion_is_reported_on_within_200_ms_and_off_when_it_ends(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    state = node.topic("binary_sensor/motion/state")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)  # a warm node: connected, tasks running
    assert [m.text for m in live.messages(on(state))] == ["OFF"]  # the announced idle state

    delays = []
    for _ in range(CYCLES):
        mark = live.mark()
        pressed = node.send("pin %d 1" % PIR_PIN)
        arrived = live.wait(on(state), 1.0, mark)
        assert arrived.text == "ON"
        delays.append(arrived.at - pressed)

        mark = live.mark()
        node.send("pin %d 0" % PIR_PIN)
        assert live.wait(on(state), OFF_TIMEOUT_S, mark).text == "OFF"

    assert max(delays) <= MOTION_BOUND_S, ["%.0f ms" % (d * 1000) for d in delays]
    texts = [m.text for m in live.messages(on(state))]
    assert texts == ["OFF"] + ["ON", "OFF"] * CYCLES  # nothing lost, nothing doubled
    assert node.running


def test_lines_the_simulated_board_cannot_use_are_reported_and_skipped(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """A typo at the terminal of `mqnode sim` (or a test's) must not end the board's stdin task,
    which would reboot the node: each bad line is reported, and the next good one still works."""
    node = make_node(start=False)
    state = node.topic("binary_sensor/motion/state")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    mark = live.mark()
    bad = ["pin x 1", "pin 15 on", "pin 99 1", "adc 4 broken", "led 1 1", "pin 15"]
    node.send("")  # an empty line is no command, and no complaint
    for line in bad:
        node.send(line)
    node.send("pin %d 1" % PIR_PIN)

    assert live.wait(on(state), 1.0, mark).text == "ON"
    out = node.stdout()
    assert out.count("sim: ignored") == len(bad), out
    assert "sim: ignored 'pin x 1'; the commands are: pin <n> 0|1, adc <channel> fail|ok" in out
    assert "rebooting" not in out and "Traceback" not in out + node.errors(), out
    assert node.running


IDLE_S = 2.0
STDIN_POLLS_PER_S = 50  # the simulated board reads its stdin every 20 ms
IDLE_WAKEUPS_PER_S = 3 * STDIN_POLLS_PER_S


def _sleeps(pid: int) -> int:
    """How often the process has given up the CPU of its own accord (poll, sleep) so far."""
    status = Path("/proc/%d/status" % pid).read_text()
    return int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="counts wakeups from Linux's /proc")
def test_a_node_waiting_for_motion_sleeps_until_something_happens(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """The motion task waits on the pin's flag. On a board that is a ThreadSafeFlag; in the Unix
    port a ThreadSafeFlag made poll() return every 1 ms while a task waited on it (about 1,000
    wakeups a second, 1% of a core per idle node, which left 200 simulated nodes no CPU on 2
    cores). Counted, not timed: the wakeups in IDLE_S, against the 50 a second the board's stdin
    polling costs."""
    node = make_node(start=False)
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    pid = node.run.process.pid
    before = _sleeps(pid)
    time.sleep(IDLE_S)
    wakeups_per_s = (_sleeps(pid) - before) / IDLE_S
    assert wakeups_per_s < IDLE_WAKEUPS_PER_S, "%.0f wakeups a second while idle" % wakeups_per_s
    assert node.running
