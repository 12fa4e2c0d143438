"""A sensor that stops answering: its state topic says `None` once (Home Assistant's MQTT sensor
shows that as unknown, not the last reading), the failures are counted in `.../info`
stats.sensor_errors, the node goes on with everything else (a relay command still works), and
readings come back as numbers when the sensor answers again. The simulated board's temperature
sensor is ADC channel 4; `adc 4 fail` / `adc 4 ok` on the node's stdin break and mend it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from node_observer import on
from runtime import REPO
from sim_node import (  # noqa: F401 (fixtures)
    NodeFactory, ObserverFactory, firmware_with_board, make_node, observe, wait_announced,
)

PERIOD_S = 0.2
NUMBER = re.compile(r"-?[0-9]+\.[0-9]{2}")
TIMEOUT_S = 10.0
FAILED_PERIODS = 5  # how long the sensor stays broken: None must come once, not every period


def test_a_failing_sensor_reports_none_once_is_counted_and_comes_back(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    node = make_node(start=False, telemetry_s=PERIOD_S)
    state, info = node.topic("sensor/temperature/state"), node.topic("info")
    command, relay = node.topic("switch/relay/set"), node.topic("switch/relay/state")
    live = observe([node.topic("#")])
    node.start()
    wait_announced(live, node)
    assert NUMBER.fullmatch(live.wait(on(state), TIMEOUT_S).text)

    broken = live.mark()
    node.send("adc 4 fail")
    none = live.wait(lambda m: on(state)(m) and m.text == "None", TIMEOUT_S, broken)
    switched = live.mark()
    live.publish(command, "ON")
    assert live.wait(on(relay), TIMEOUT_S, switched).text == "ON"  # the rest of the node goes on
    errors = live.wait(lambda m: on(info)(m) and json.loads(m.payload)["stats"]["sensor_errors"] >= FAILED_PERIODS,
                       TIMEOUT_S, broken)

    mended = live.mark()
    node.send("adc 4 ok")
    back = live.wait(on(state), TIMEOUT_S, mended)
    assert NUMBER.fullmatch(back.text), back.text
    before = [m.text for m in live.messages(on(state), broken) if m.at < none.at]
    assert all(NUMBER.fullmatch(t) for t in before), before  # a reading already under way, at most
    while_broken = [m.text for m in live.messages(on(state), broken) if none.at <= m.at < back.at]
    assert while_broken == ["None"], while_broken  # once, not every period
    assert json.loads(errors.payload)["stats"]["readings"] >= 1
    assert node.running


def test_a_failing_sensor_does_not_stop_another_sensor(
    make_node: NodeFactory, observe: ObserverFactory, tmp_path: Path
) -> None:
    """A board with two sensors (the sim board's ADC 4, and a second on ADC 3): while one fails,
    the other's readings go on every period."""
    board = json.loads((REPO / "boards" / "sim.json").read_text())
    board["name"] = "sim2"
    board["sensors"].append({"name": "second", "driver": "internal_temp", "adc": 3})
    main = firmware_with_board(tmp_path / "fw", "sim2", json.dumps(board))
    node = make_node(start=False, telemetry_s=PERIOD_S, board="sim2")
    first, second = node.topic("sensor/temperature/state"), node.topic("sensor/second/state")
    live = observe([node.topic("#")])
    node.start(main=main)
    wait_announced(live, node)

    broken = live.mark()
    node.send("adc 4 fail")
    none = live.wait(lambda m: on(first)(m) and m.text == "None", TIMEOUT_S, broken)
    after = live.wait_count(on(second), FAILED_PERIODS, TIMEOUT_S, live.mark())
    assert all(NUMBER.fullmatch(m.text) for m in after), [m.text for m in after]
    assert [m.text for m in live.messages(on(first), broken) if m.at >= none.at] == ["None"]
