"""Battery mode: each wake reads the sensors, connects, publishes, takes the commands queued while
it slept, and deep-sleeps (the sim board prints `deepsleep <ms>` and exits 77). While the broker
is unreachable the readings wait in RTC memory (rtc.bin beside the config) and the sleeps get
longer; the first wake that reaches the broker delivers them.

A test "sleeps" the node by letting the process end and "wakes" it by starting it again in the
same folder, without waiting out the sleep.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List

from broker import Broker, free_ports
from fake_broker import Close, Expect, FakeBroker, Reply, Send, Serve, Stall, Step, ack, connack, suback
from fake_broker import publish as fake_publish
from mqtt.packet import CONNECT, DISCONNECT, PUBACK, PUBLISH, SUBSCRIBE  # noqa: E402 (fake_broker put lib/ on the path)
from node_observer import on
from test_node_discovery import as_home_assistant_reads, config_filter, configs_by_entity
from sim_node import (  # noqa: F401 (fixtures)
    EXIT_DEEPSLEEP, NodeFactory, NodeProcess, ObserverFactory, make_node, node_on_virtual_board, observe,
)
from virtual_board import START_TIMEOUT_S, VirtualBoard

SLEEP_S = 1
AWAKE_S = 5
BATTERY = {"battery": True, "sleep_s": SLEEP_S, "awake_s": AWAKE_S}
WAKE_TIMEOUT_S = AWAKE_S + 5.0  # awake_s bounds the wake; the rest is process start and exit
DELIVERY_TIMEOUT_S = 5.0
ESP32_RTC_MEMORY_BYTES = 2048  # MICROPY_HW_RTC_USER_MEM_MAX, ports/esp32: RTC.memory() refuses more
HANG_S = 60  # a simulated WiFi call that hangs: far past any budget here; the test ends it first
# The virtual board's watchdog: battery.py asks for WAKE_WDT_MS (10 s) and feeds every second;
# the board cuts the timeout to this, so a hung wake is reset within 2.5 s.
WATCHDOG_MS = 2500


def hang_next_wifi_join(folder: Path) -> None:
    """The next wifi_connect of the sim board in this folder blocks its interpreter for HANG_S
    (lib/mqnode/hardware_sim.py), as a WiFi driver call that never returns does."""
    (folder / "hang_wifi").write_text(str(HANG_S))


def kept_readings(rtc_file: Path) -> List[List[str]]:
    try:
        return json.loads(rtc_file.read_bytes() or b"{}").get("readings", [])
    except (OSError, ValueError):
        return []  # not there yet, or caught half-written


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


def announced_before(node: NodeProcess, broker: Broker, port: int) -> None:
    """RTC memory as an earlier wake leaves it once its subscription and discovery have gone (one
    wake against the session's mosquitto): with the session present, a wake then does neither
    (scripted brokers need not expect them). Then the node is pointed at `port`."""
    point_at(node, broker.port)
    assert wake(node) == SLEEP_S * 1000, node.stdout()
    point_at(node, port)


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


def test_a_reading_the_broker_never_acknowledged_stays_kept(make_node: NodeFactory, broker: Broker) -> None:
    """The link drops after the reading's PUBLISH and before its PUBACK: publish() then returns
    False (not confirmed), the wake counts as failed and the reading stays in RTC memory for the
    next wake. A scripted broker does it: session present after an announced wake (so no
    SUBSCRIBE or discovery), the status acknowledged, the reading not."""
    script = [[
        Expect(CONNECT), Send(connack(0, session_present=1)),
        Expect(PUBLISH), Reply(lambda p: ack(PUBACK, p.packet_id)),  # online
        Expect(PUBLISH), Close(),  # the reading: no PUBACK, the connection goes
    ]]
    with FakeBroker(script) as fake:
        node = make_node(start=False, port=fake.port, **BATTERY)
        announced_before(node, broker, fake.port)
        slept = wake(node)
        fake.check()
        sent = fake.connections[0].packets[-1].publish()
    assert sent[0] == node.topic("sensor/temperature/state").encode()
    assert slept == 2 * SLEEP_S * 1000, node.stdout()  # a failed wake: the longer sleep
    assert "wake failed" in node.stdout()
    kept = kept_readings(node.rtc_file)
    assert [r[0] for r in kept] == ["sensor/temperature/state"] and float(kept[0][1]) == float(sent[2])


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


def command_at_relay_state(pid: int, acknowledged: bool, tail: List[Step]) -> List[List[Step]]:
    """A scripted wake (session present after an announced wake: no SUBSCRIBE or discovery;
    announced_before()): the status, the reading and
    info acknowledged; then, in answer to the relay's state, a QoS 1 command on the topic beside it
    (.../switch/relay/set), that state acknowledged or not; the node's PUBACK for the command; tail."""
    command = Reply(lambda p: fake_publish(p.publish()[0][: -len("state")] + b"set", b"ON", qos=1, pid=pid))
    puback = Reply(lambda p: ack(PUBACK, p.packet_id))
    return [[
        Expect(CONNECT), Send(connack(0, session_present=1)),
        Expect(PUBLISH), puback,  # online
        Expect(PUBLISH), puback,  # the reading
        Expect(PUBLISH), puback,  # info
        Expect(PUBLISH), command, *([puback] if acknowledged else []),  # the relay's state, OFF
        Expect(PUBACK),  # the node takes the command
        *tail,
    ]]


def test_a_command_arriving_as_the_wake_ends_is_obeyed_not_dropped(make_node: NodeFactory, broker: Broker) -> None:
    """The node acknowledges a QoS 1 command as it arrives, so the broker will not send it again:
    one that comes in after the collection window, while the node reports its switch states,
    must still be obeyed before the disconnect. A scripted broker sends it in answer to the
    relay's state."""
    script = command_at_relay_state(77, acknowledged=True, tail=[Serve()])
    with FakeBroker(script) as fake:
        node = make_node(start=False, port=fake.port, **BATTERY)
        announced_before(node, broker, fake.port)
        assert wake(node) == SLEEP_S * 1000, node.stdout()
        fake.check()
        packets = fake.connections[0].packets
    states = [p.publish()[2] for p in packets if p.kind == PUBLISH and p.publish()[0] == node.topic("switch/relay/state").encode()]
    assert [p.packet_id for p in packets if p.kind == PUBACK] == [77]
    assert states == [b"OFF", b"ON"], node.stdout()  # obeyed, and its state reported before sleeping
    assert packets[-1].kind == DISCONNECT
    assert json.loads(node.rtc_file.read_bytes())["switches"] == {"relay": True}


def test_a_command_taken_in_before_the_wake_runs_out_of_time_is_still_obeyed(make_node: NodeFactory, broker: Broker) -> None:
    """As above, but the broker then answers nothing, and the keepalive is longer than the wake:
    the wake fails at awake_s, waiting for the relay state's PUBACK. The command was acknowledged
    all the same, so the relay is switched (and kept over the sleep); its state goes out at the
    next wake."""
    script = command_at_relay_state(78, acknowledged=False, tail=[Stall(AWAKE_S + 2)])
    with FakeBroker(script) as fake:
        node = make_node(start=False, port=fake.port, keepalive_s=60, **BATTERY)
        announced_before(node, broker, fake.port)
        assert wake(node) == 2 * SLEEP_S * 1000
        fake.check()
        packets = fake.connections[0].packets
    assert [p.packet_id for p in packets if p.kind == PUBACK] == [78]
    assert "wake failed" in node.stdout()
    assert json.loads(node.rtc_file.read_bytes())["switches"] == {"relay": True}, node.stdout()


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


def test_readings_are_in_rtc_memory_before_the_connect_and_survive_a_reset_there(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """Written ahead: while the wake is stuck joining WiFi, RTC memory already holds its reading.
    The process is killed there (a reset, a brown-out), and the next wake delivers it."""
    node = make_node(start=False, **BATTERY)
    state = node.topic("sensor/temperature/state")
    live = observe([state, node.topic("info")])
    hang_next_wifi_join(node.folder)
    node.start()

    deadline = time.monotonic() + WAKE_TIMEOUT_S
    while not kept_readings(node.rtc_file) and time.monotonic() < deadline and node.running:
        time.sleep(0.05)
    kept = kept_readings(node.rtc_file)
    assert [topic for topic, _ in kept] == ["sensor/temperature/state"], node.stdout() + node.errors()
    assert "wifi_connect: hanging" in node.stdout()  # it is before the connect
    assert node.running
    node.run.process.kill()  # the reset in the middle of the wake
    node.run.process.wait(5)

    assert wake(node) == SLEEP_S * 1000
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)  # published after the readings
    delivered = [m.text for m in live.messages(on(state))]
    assert len(delivered) == 2 and delivered[0] == kept[0][1], live.summary()  # the lost wake's first
    assert kept_readings(node.rtc_file) == []


def battery_board(root: Path, broker: Broker, node_id: str) -> VirtualBoard:
    """A virtual board with a hardware watchdog, holding the battery node."""
    config = {"node_id": node_id, "board": "sim", "broker": {"host": broker.host, "port": broker.port},
              "keepalive_s": 5, **BATTERY}
    # boots: the hung wake, the one after the watchdog's reset, the wake that delivers; no more
    return node_on_virtual_board(root, config, watchdog_ms=WATCHDOG_MS, max_boots=3)


def test_a_wake_that_blocks_the_event_loop_is_reset_by_the_watchdog_and_nothing_is_lost(
    broker: Broker, tmp_path: Path, observe: ObserverFactory
) -> None:
    """wait_for cannot end a wake whose event loop is blocked (a WiFi call that hangs): the
    hardware watchdog does, within its timeout, far inside the hang. The boot after the
    watchdog's reset goes straight back to sleep (the backoff of a failed wake), and the next
    wake sends the hung wake's reading and its own."""
    node_id = "vb-battery-%d" % time.monotonic_ns()
    root = tmp_path / "board"
    board = battery_board(root, broker, node_id)
    state = "mqnode/%s/sensor/temperature/state" % node_id
    live = observe([state, "mqnode/%s/info" % node_id])
    hang_next_wifi_join(root)
    started = time.monotonic()
    board.start()
    try:
        assert board.wait_boot("watchdog", 1, START_TIMEOUT_S + AWAKE_S), board.report()
        assert time.monotonic() - started < AWAKE_S + WATCHDOG_MS / 1000 + 3, board.report()  # not HANG_S
        assert board.wait_boots(3, WAKE_TIMEOUT_S), board.report()
        assert board.boots == ["power", "watchdog", "deepsleep"], board.report()
        assert b"deepsleep %d" % (2 * SLEEP_S * 1000) in board.serial_log, board.report()  # backing off
        live.wait(on("mqnode/%s/info" % node_id), WAKE_TIMEOUT_S)
        delivered = live.messages(on(state))
        assert len(delivered) == 2, live.summary() + board.report()  # the hung wake's and this one's
        assert board.wait_output(b"deepsleep %d" % (SLEEP_S * 1000), WAKE_TIMEOUT_S), board.report()
    finally:
        board.stop()
    assert kept_readings(root / "rtc.bin") == []


class _Rtc:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def rtc_memory(self) -> bytes:
        return self.data


def test_rtc_memory_of_the_wrong_shape_is_trimmed_to_what_a_wake_can_use() -> None:
    """Valid JSON that _save did not write (an older layout, a flipped bit) must not end a wake
    in an exception: out-of-range fails are clamped, readings that are no (topic, text) pair go."""
    from mqnode import battery

    kept = battery._load_rtc(_Rtc(b'{"fails": -1, "readings": [["x"], [1, 2], ["sensor/t/state", "21.50"]]}'))
    assert kept == {"fails": 0, "announced": 0, "readings": [["sensor/t/state", "21.50"]], "switches": {}}
    assert battery._load_rtc(_Rtc(b'{"fails": 9}'))["fails"] == 3
    assert battery._load_rtc(_Rtc(b"\xff not json"))["readings"] == []


def test_a_dead_sensors_none_is_kept_only_until_its_next_value() -> None:
    """While the broker is away, each wake adds its readings; a dead sensor's "None" from an earlier
    wake gives way to the next one, so the kept readings are not Nones in place of values."""
    from mqnode import battery

    readings = [["sensor/t/state", "21.50"], ["sensor/h/state", "None"]]
    battery._add_readings(readings, [("sensor/t/state", "21.60"), ("sensor/h/state", "None")])
    battery._add_readings(readings, [("sensor/t/state", "21.70"), ("sensor/h/state", "40.00")])
    assert [tuple(r) for r in readings] == [
        ("sensor/t/state", "21.50"), ("sensor/t/state", "21.60"), ("sensor/t/state", "21.70"),
        ("sensor/h/state", "40.00"),
    ]


def test_a_wake_cut_short_in_discovery_announces_again_on_the_next(make_node: NodeFactory) -> None:
    """The broker keeps the session from the first CONNACK on. When that wake's link drops during
    discovery, the next wake finds a session present and must still subscribe and publish
    discovery: before, it took the session for a finished announcement, and the node's entities
    never appeared in Home Assistant."""
    script = [
        [Expect(CONNECT), Send(connack(0)),
         Expect(PUBLISH), Reply(lambda p: ack(PUBACK, p.packet_id)),  # online
         Expect(SUBSCRIBE), Reply(lambda p: suback(p.packet_id, [1])),
         Expect(PUBLISH), Close()],  # the first discovery config: no PUBACK, the link goes
        [Expect(CONNECT), Send(connack(0, session_present=1)), Serve(seconds=WAKE_TIMEOUT_S)],
    ]
    with FakeBroker(script) as fake:
        node = make_node(start=False, port=fake.port, **BATTERY)
        assert wake(node) == 2 * SLEEP_S * 1000, node.stdout()  # a failed wake
        assert wake(node) == SLEEP_S * 1000, node.stdout()
        fake.check()
        second = fake.connections[1]
    configs = [p.publish()[0] for p in second.packets if p.kind == PUBLISH and p.publish()[0].endswith(b"/config")]
    assert SUBSCRIBE in second.kinds()
    assert len(configs) == 2, configs  # the sim board's temperature and relay (no motion on a battery node)


def test_a_changed_configuration_is_announced_again_though_the_broker_kept_the_session(
    make_node: NodeFactory, observe: ObserverFactory
) -> None:
    """RTC memory outlives a reset (and on the Pico W, where it is a flash file, a reflash), and
    the broker keeps the session, so a wake used to skip discovery and the subscription for good
    once one had announced: a new discovery prefix (or prefix, sleep, firmware, board part) never
    reached Home Assistant. A wake now announces when what it would announce has changed."""
    node = make_node(start=False, **BATTERY)
    assert wake(node) == SLEEP_S * 1000, node.stdout()
    config = json.loads(node.config_path.read_text())
    config["discovery_prefix"] = "ha-moved"
    node.write_config(config)
    moved = "ha-moved/+/%s/+/config" % node.node_id
    live = observe([moved])
    assert wake(node) == SLEEP_S * 1000, node.stdout()  # the broker kept the session
    assert len(live.wait_count(on(moved), 2, DELIVERY_TIMEOUT_S)) == 2  # temperature and relay
    again = observe([node.topic("info")])
    assert wake(node) == SLEEP_S * 1000, node.stdout()  # unchanged: not announced a third time
    again.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)
    assert len(live.messages(on(moved))) == 2


def test_a_battery_nodes_readings_expire_in_home_assistant(make_node: NodeFactory, observe: ObserverFactory) -> None:
    """A battery node disconnects cleanly: its will never fires, and its status stays "online"
    while it sleeps, or after its battery died. Its sensors' configs carry expire_after instead,
    long enough for one missed wake: wake, sleep, failed wake, doubled sleep, wake (3 x (sleep_s
    + awake_s)). A battery wake reads no motion, so there is no binary sensor: it would stay
    "unknown" in Home Assistant for ever."""
    node = make_node(start=False, **BATTERY)
    live = observe([config_filter(node), node.topic("info")])
    wake(node)
    live.wait(on(node.topic("info")), DELIVERY_TIMEOUT_S)  # published after discovery
    configs = {k: as_home_assistant_reads(m.payload) for k, m in configs_by_entity(live.messages(
        lambda m: m.topic.endswith("/config"))).items()}
    assert set(configs) == {("sensor", "temperature"), ("switch", "relay")}
    assert configs[("sensor", "temperature")]["expire_after"] == 3 * (SLEEP_S + AWAKE_S)
    assert "expire_after" not in configs[("switch", "relay")]  # a switch has no such key
