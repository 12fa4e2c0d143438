"""Battery mode: each wake reads the sensors, connects, publishes, takes the commands queued while
it slept, and deep-sleeps (the sim board prints `deepsleep <ms>` and exits 77). While the broker
is unreachable the readings wait in RTC memory (rtc.bin beside the config) and the sleeps get
longer; the first wake that reaches the broker delivers them.

A test "sleeps" the node by letting the process end and "wakes" it by starting it again in the
same folder, without waiting out the sleep.
"""
from __future__ import annotations

import json
from typing import List

import pytest

from broker import Broker, free_ports
from node_observer import on
from sim_node import (  # noqa: F401 (fixtures)
    EXIT_DEEPSLEEP, NodeFactory, NodeProcess, ObserverFactory, make_node, observe,
)

SLEEP_S = 1
AWAKE_S = 5
BATTERY = {"battery": True, "sleep_s": SLEEP_S, "awake_s": AWAKE_S}
WAKE_TIMEOUT_S = AWAKE_S + 5.0  # awake_s bounds the wake; the rest is process start and exit
DELIVERY_TIMEOUT_S = 5.0
ESP32_RTC_MEMORY_BYTES = 2048  # MICROPY_HW_RTC_USER_MEM_MAX, ports/esp32: RTC.memory() refuses more


def wake(node: NodeProcess) -> int:
    """One wake cycle, to its end: the sleep it announced, in ms."""
    node.start()
    code = node.wait_exit(WAKE_TIMEOUT_S)
    out = node.stdout()
    assert code == EXIT_DEEPSLEEP, "exit %s:\n%s%s" % (code, out, node.errors())
    assert "Traceback" not in out + node.errors()
    last = out.splitlines()[-1]
    assert last.startswith("deepsleep "), out
    return int(last.split()[1])


def point_at(node: NodeProcess, port: int) -> None:
    config = json.loads(node.config_path.read_text())
    config["broker"]["port"] = port
    node.write_config(config)


def test_wake_publishes_readings_then_deep_sleeps(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, **BATTERY)
    live = observe([node.topic("#")])

    assert wake(node) == SLEEP_S * 1000

    live.wait(on(node.topic("status"), "online"), DELIVERY_TIMEOUT_S)
    reading = live.wait(on(node.topic("sensor/temperature/state")), DELIVERY_TIMEOUT_S)
    float(reading.text)
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)


def test_readings_taken_while_the_broker_is_down_are_kept_and_delivered_later(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    closed_port = free_ports(1)[0]  # nothing listens there: every connect is refused
    node = make_node(start=False, port=closed_port, **BATTERY)
    state = node.topic("sensor/temperature/state")
    live = observe([node.topic("#")])

    sleeps: List[int] = []
    sizes: List[int] = []
    for _ in range(2):
        sleeps.append(wake(node))
        sizes.append(node.rtc_file.stat().st_size)
    assert sleeps == [2 * SLEEP_S * 1000, 4 * SLEEP_S * 1000]  # backing off while unreachable
    assert 0 < sizes[0] < sizes[1]  # each failed wake's reading is added to RTC memory
    assert live.messages() == []

    point_at(node, broker.port)
    assert wake(node) == SLEEP_S * 1000  # reachable again: back to the normal sleep
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)  # published after the readings
    delivered = live.messages(on(state))
    assert len(delivered) == 3, live.summary()  # two kept, one new
    assert all(float(m.text) for m in delivered)
    assert node.rtc_file.stat().st_size < sizes[0]  # emptied

    mark = live.mark()
    assert wake(node) == SLEEP_S * 1000
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S, mark)  # the wake is done by now
    assert len(live.messages(on(state), mark)) == 1  # the kept readings are not sent twice


def test_long_outage_caps_the_backoff_and_the_kept_readings(
    broker: Broker, make_node: NodeFactory, observe: ObserverFactory
) -> None:
    closed_port = free_ports(1)[0]
    node = make_node(start=False, port=closed_port, **BATTERY)
    state = node.topic("sensor/temperature/state")
    live = observe([state, node.topic("info")])

    failed_wakes = 20
    sleeps, sizes = [], []
    for _ in range(failed_wakes):
        sleeps.append(wake(node))
        sizes.append(node.rtc_file.stat().st_size)
    assert sleeps[:3] == [2000 * SLEEP_S, 4000 * SLEEP_S, 8000 * SLEEP_S]
    assert set(sleeps[3:]) == {8000 * SLEEP_S}  # stops doubling
    assert sizes[-1] == sizes[-2] == sizes[-3]  # RTC memory stops growing

    point_at(node, broker.port)
    wake(node)
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)  # published after the readings
    delivered = live.messages(on(state))
    # Some kept readings and the new one; not all twenty: the oldest were dropped, as bounded memory must.
    assert 2 <= len(delivered) < failed_wakes + 1, live.summary()


def test_kept_readings_fit_the_esp32_rtc_memory_with_the_longest_names(make_node: NodeFactory) -> None:
    node_id = make_node(start=False).node_id
    node_id = (node_id + "x" * 64)[:64]
    node = make_node(start=False, node_id=node_id, port=free_ports(1)[0], prefix="p" * 64, **BATTERY)

    for _ in range(18):
        wake(node)

    assert node.rtc_file.stat().st_size <= ESP32_RTC_MEMORY_BYTES


def test_command_sent_while_asleep_is_applied_at_next_wake(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, **BATTERY)
    live = observe([node.topic("#")])
    wake(node)  # the first wake makes the broker keep a session with the command subscription
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)

    live.publish(node.topic("switch/relay/set"), "ON", qos=1)  # the node is asleep
    mark = live.mark()
    wake(node)

    assert live.wait(on(node.topic("switch/relay/state")), DELIVERY_TIMEOUT_S, mark).text == "ON"
    assert "ignored command" not in node.stdout()


def test_switch_state_survives_deep_sleep(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, **BATTERY)
    state = node.topic("switch/relay/state")
    live = observe([node.topic("#")])
    wake(node)
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)

    answers = []
    for _ in range(2):
        live.publish(node.topic("switch/relay/set"), "TOGGLE", qos=1)
        mark = live.mark()
        wake(node)
        answers.append(live.wait(on(state), DELIVERY_TIMEOUT_S, mark).text)

    assert answers == ["ON", "OFF"]


def test_info_reports_deepsleep_as_reset_cause_after_a_wake(make_node: NodeFactory, observe: ObserverFactory) -> None:
    node = make_node(start=False, **BATTERY)
    info = node.topic("info")
    live = observe([info])
    wake(node)
    first = json.loads(live.wait(on(info), DELIVERY_TIMEOUT_S).payload)
    mark = live.mark()
    wake(node)
    second = json.loads(live.wait(on(info), DELIVERY_TIMEOUT_S, mark).payload)

    assert first["reset_cause"] == "power-on"
    assert second["reset_cause"] == "deepsleep"
