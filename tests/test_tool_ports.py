"""Finding the board's serial port, and saying why one will not open.

`--port auto` (deploy's default) takes the one USB serial port there is, and with none or
several says so and lists them. A port that will not open gets a reason a user can act on,
where mpremote says only "failed to access" and esptool "busy or doesn't exist": a port that is
not there (with the ports that are), one held by another program (a serial monitor), and one
the user may not open (the group to join). Real ports: a pseudo-terminal stands in for the
board's USB serial device, and the virtual board for the board; what the OS would list as USB
devices is simulated at the edge (pyserial's comports()).
"""
from __future__ import annotations

import grp
import os
import pty
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import serial
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from mqnode_tools.board_link import BoardError, BoardLink
from mqnode_tools.cli import main
from test_tool_flash import image, no_real_drives, uf2  # noqa: F401 (fixture)
from virtual_board import VirtualBoard, virtual_board  # noqa: F401 (fixture)


@pytest.fixture
def held_port() -> Iterator[Tuple[str, serial.Serial]]:
    """A pseudo-terminal's device, opened with an exclusive lock as a serial monitor holds it."""
    controller, device = pty.openpty()
    name = os.ttyname(device)
    monitor = serial.Serial(name, exclusive=True)
    try:
        yield name, monitor
    finally:
        monitor.close()
        os.close(device)
        os.close(controller)


def test_deploy_to_a_port_that_is_not_there_names_the_ports_that_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listing(monkeypatch, [usb_port("/dev/ttyUSB3", "CP2102")])
    missing = str(tmp_path / "ttyUSB7")
    assert main(["deploy", "--port", missing, "--board", "sim"]) == 1
    err = capsys.readouterr().err
    assert "mqnode deploy: %s: no such port (serial ports here: /dev/ttyS0, /dev/ttyUSB3)" % missing in err, err


def test_a_port_another_program_holds_is_named_as_in_use(held_port: Tuple[str, serial.Serial]) -> None:
    name, _ = held_port
    with pytest.raises(BoardError) as raised:
        BoardLink(name)
    assert str(raised.value) == (
        "%s: in use by another program (a serial monitor, Thonny, another mpremote): close it and try again" % name)


def test_a_port_the_user_may_not_open_names_the_group_to_join(
    held_port: Tuple[str, serial.Serial], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests run as root here, which may open any device: the kernel's refusal is simulated at
    the edge (os.access), on a port that really does fail to open."""
    name, _ = held_port
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if path == name else real_access(path, mode))
    group = grp.getgrgid(os.stat(name).st_gid).gr_name
    with pytest.raises(BoardError) as raised:
        BoardLink(name)
    assert str(raised.value) == (
        "%s: permission denied: add yourself to its group (sudo usermod -aG %s $USER), then log out and in again"
        % (name, group))


def test_flash_to_a_port_another_program_holds_says_it_is_in_use(
    held_port: Tuple[str, serial.Serial], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """esptool's own words ("busy or doesn't exist") leave the user to guess which."""
    name, _ = held_port
    firmware, _ = image(tmp_path)
    assert main(["flash", "--board", "esp32-devkitc", "--port", name, "--firmware", str(firmware)]) == 1
    err = capsys.readouterr().err
    assert "mqnode flash: cannot open %s: in use by another program" % name in err, err


def usb_port(device: str, description: str) -> ListPortInfo:
    """What pyserial lists for a USB serial device (a VID), e.g. an ESP32 board's CP2102."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = 0x10C4, 0xEA60, description
    return info


def listing(monkeypatch: pytest.MonkeyPatch, ports: List[ListPortInfo]) -> None:
    """The serial ports the OS lists, beside a built-in one that is never a board."""
    builtin = ListPortInfo("/dev/ttyS0", skip_link_detection=True)
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [builtin, *ports])


def test_deploy_without_a_port_finds_the_one_board_plugged_in(
    virtual_board: VirtualBoard, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listing(monkeypatch, [usb_port(virtual_board.port, "CP2102 USB to UART Bridge Controller")])
    status = main(["deploy", "--board", "sim", "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0, out + virtual_board.report()
    assert out.startswith("board on %s: MicroPython " % virtual_board.port), out
    assert "dry run: " in out


def test_with_no_usb_serial_port_deploy_and_flash_say_no_board_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listing(monkeypatch, [])
    assert main(["deploy", "--board", "sim"]) == 1
    firmware, _ = image(tmp_path)
    assert main(["flash", "--board", "esp32-devkitc", "--firmware", str(firmware)]) == 1
    err = capsys.readouterr().err
    assert "mqnode deploy: no board found: no USB serial port is there" in err, err
    assert "mqnode flash: board esp32-devkitc flashes through esptool: no board found" in err, err


def test_with_several_usb_serial_ports_auto_lists_them_and_picks_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listing(monkeypatch, [usb_port("/dev/ttyUSB0", "CP2102"), usb_port("/dev/ttyACM0", "Board in FS mode")])
    assert main(["provision", "--port", "auto", "--node-id", "n1", "--board", "sim", "--broker", "127.0.0.1",
                 "--no-input"]) == 1
    err = capsys.readouterr().err
    assert "2 USB serial ports, so give --port: /dev/ttyUSB0 (CP2102), /dev/ttyACM0 (Board in FS mode)" in err, err


def test_provision_to_port_auto_writes_to_the_one_board_and_names_its_port(
    virtual_board: VirtualBoard, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listing(monkeypatch, [usb_port(virtual_board.port, "Board in FS mode")])
    assert main(["provision", "--port", "auto", "--board", "sim", "--broker", "mqtt.lan", "--no-input",
                 "--no-reset"]) == 0
    out = capsys.readouterr().out
    assert "%s:/config.json" % virtual_board.port in out, out
    assert (virtual_board.root / "config.json").is_file()


def test_flash_to_a_pico_w_with_port_auto_asks_the_one_board_there_is(
    tmp_path: Path, no_real_drives: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No RPI-RP2 drive mounted: the bootloader is asked for on the resolved port, not on
    whatever mpremote's own `connect auto` would take first."""
    listing(monkeypatch, [usb_port("/dev/ttyACM3", "Board in FS mode")])
    firmware = tmp_path / "fw.uf2"
    firmware.write_bytes(uf2(bytes(1000)))
    assert main(["flash", "--board", "pico-w", "--firmware", str(firmware), "--port", "auto", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "connect /dev/ttyACM3 bootloader" in out, out


def test_a_board_that_goes_away_mid_job_is_a_board_error_and_closing_is_quiet(tmp_path: Path) -> None:
    """Unplugged, or a native-USB board reset by its watchdog: what the link was doing ends in a
    BoardError the tools print in one line (pyserial's errors came out as tracebacks; a lost port
    read as "no such file"), and close() does not mask it with one of its own."""
    board = VirtualBoard(tmp_path / "board").start()
    link = BoardLink(board.port)
    try:
        assert link.info().platform == "linux"
        board.stop()
        with pytest.raises(BoardError):
            link.info()
        with pytest.raises(BoardError):
            link.read("/config.json")
    finally:
        link.close()
        board.stop()
