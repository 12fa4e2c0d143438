"""Telemetry: each sensor's reading goes to `<prefix>/<node>/sensor/<name>/state` as a plain
number (`21.37`) once every telemetry period, retained, so a dashboard opened later has a value.
"""
from __future__ import annotations

import re
import time

from node_observer import on
from sim_node import NodeFactory, ObserverFactory, TELEMETRY_S, make_node, observe  # noqa: F401 (fixtures)

FIRST_READING_TIMEOUT_S = 10.0
WINDOW_PERIODS = 4  # the window after the first reading, in telemetry periods
# Readings come at about 1, 2, 3, 4 periods after the first one (the loop sleeps telemetry_s
# after each round of publishing): four in the window; one fewer or more tolerates the window's
# edges falling on a slightly early or late reading.
EXPECTED_IN_WINDOW = range(WINDOW_PERIODS - 1, WINDOW_PERIODS + 2)
NUMBER = re.compile(r"-?[0-9]+\.[0-9]{2}")  # what `"%.2f" % v` gives: what Home Assistant parses
SIM_RANGE_C = (18.0, 24.0)  # lib/mqnode/hardware_sim.py keeps its temperature walk in here


def test_temperature_arrives_every_telemetry_period_as_plain_number(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False)
    state = node.topic("sensor/temperature/state")
    live = observe([state])
    node.start()

    first = live.wait(on(state), FIRST_READING_TIMEOUT_S)
    window = WINDOW_PERIODS * TELEMETRY_S + 0.5
    time.sleep(max(0.0, first.at + window - time.monotonic()))
    readings = live.messages(on(state))
    in_window = [m for m in readings[1:] if m.at - first.at <= window]

    assert len(in_window) in EXPECTED_IN_WINDOW, [(round(m.at - first.at, 2), m.text) for m in readings]
    for m in readings:
        assert NUMBER.fullmatch(m.text), m.text
        assert SIM_RANGE_C[0] <= float(m.text) <= SIM_RANGE_C[1], m.text


def test_latest_reading_is_retained_for_a_late_subscriber(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False)
    state = node.topic("sensor/temperature/state")
    live = observe([state])
    node.start()
    live.wait(on(state), FIRST_READING_TIMEOUT_S)

    late = observe([state])
    kept = late.wait(on(state), FIRST_READING_TIMEOUT_S)
    assert kept.retain
    assert NUMBER.fullmatch(kept.text)
    assert kept.text in [m.text for m in live.messages(on(state))]  # a reading the node sent
