"""The always-on node feeds the hardware watchdog only while it is healthy: the event loop runs
and the telemetry loop goes round. Here a broker gone wrong confirms no PUBLISH yet answers pings,
so the link looks alive and every QoS 1 publish waits for ever: the node stops feeding, says why,
and the watchdog resets it; a working node on the same board is fed for as long as it runs.

On a virtual board (tests/virtual_board.py) whose watchdog, kept by its launcher, resets a boot
that stops feeding; its timeout is cut to WATCHDOG_MS.
"""
from __future__ import annotations

import time
from pathlib import Path

from broker import Broker
from fake_broker import Expect, FakeBroker, Send, Serve, connack
from mqtt.packet import CONNECT  # noqa: E402 (fake_broker put lib/ on the path)
from sim_node import node_on_virtual_board
from virtual_board import START_TIMEOUT_S

WATCHDOG_MS = 2500
TELEMETRY_S = 0.5
# node.py stops feeding three telemetry periods after the loop's last round, plus its WDT_MS (8 s)
STUCK_S = 3 * TELEMETRY_S + 8.0
HEALTHY_S = STUCK_S + WATCHDOG_MS / 1000 + 2.0  # longer than a stuck node would last


def config(node_id: str, port: int) -> dict:
    return {"node_id": node_id, "board": "sim", "broker": {"host": "127.0.0.1", "port": port},
            "telemetry_s": TELEMETRY_S, "keepalive_s": 2}


def test_a_node_whose_publishes_never_complete_is_reset_by_the_watchdog(tmp_path: Path) -> None:
    script = [[Expect(CONNECT), Send(connack(0)), Serve(seconds=STUCK_S + 10, ack_publish=False)]]
    with FakeBroker(script) as fake:
        board = node_on_virtual_board(tmp_path / "board", config("vb-stuck", fake.port),
                                      watchdog_ms=WATCHDOG_MS, max_boots=2)
        started = time.monotonic()
        board.start()
        try:
            assert board.wait_boot("watchdog", 1, START_TIMEOUT_S + STUCK_S + 5), board.report()
            took = time.monotonic() - started
            log = board.serial_log
        finally:
            board.stop()
    assert b"telemetry stuck for " in log and b"the watchdog will reset the board" in log, board.report()
    assert took >= STUCK_S, took  # not before the telemetry loop had its three periods


def test_a_healthy_node_keeps_its_watchdog_fed(broker: Broker, tmp_path: Path) -> None:
    board = node_on_virtual_board(tmp_path / "board", config("vb-healthy-%d" % time.monotonic_ns(), broker.port),
                                  watchdog_ms=WATCHDOG_MS, max_boots=2)
    board.start()
    try:
        time.sleep(HEALTHY_S)
        assert board.boots == ["power"], board.report()
        assert b"telemetry stuck" not in board.serial_log, board.report()
    finally:
        board.stop()


def test_a_broker_outage_is_no_stuck_loop_for_the_watchdog(tmp_path: Path) -> None:
    """Without a broker, telemetry waits for its PUBACK (the message stays queued): that is an
    outage, which reboot_after_s handles, not a stuck loop. The broker takes the first reading
    without confirming it, goes away after 3 s, and then closes every connection at once, for
    longer than a stuck node would last: the node is not reset."""
    script = [[Expect(CONNECT), Send(connack(0)), Serve(seconds=3, ack_publish=False)]]
    with FakeBroker(script) as fake:
        board = node_on_virtual_board(tmp_path / "board", config("vb-outage", fake.port),
                                      watchdog_ms=WATCHDOG_MS, max_boots=2)
        board.start()
        try:
            time.sleep(HEALTHY_S + 3)
            assert board.boots == ["power"], board.report()
            assert b"telemetry stuck" not in board.serial_log, board.report()
            assert len(fake.connections) > 1, board.report()  # it kept trying to reconnect
        finally:
            board.stop()

