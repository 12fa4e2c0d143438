"""`mqnode flash`: ESP32-family boards through esptool against a fake serial loader on 127.0.0.1,
RP2040 boards by copying a .uf2 to a folder made to look like the RPI-RP2 drive.

What these cannot show: a real chip's ROM and flash, USB-serial resets (every run here says
`--before no-reset`; esptool cannot reset over a socket anyway), the flasher stub itself (the
fake acknowledges its upload and then answers as it would, so the default erase-all path is
exercised at the protocol level only), a real RPI-RP2 drive taking the file and rebooting, and a
real MicroPython board answering `mpremote bootloader`.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest
from esptool.targets import CHIP_DEFS

from fake_esp_rom import FakeEspRom
from mqnode_tools import flash_uf2
from mqnode_tools.cli import main
from mqnode_tools.commands import flash as flash_command
from mqnode_tools.flash_esp import check_image, split_extra

ROM_ONLY = ["--", "--before", "no-reset", "--no-stub"]
ONE_TRY = ["--connect-attempts", "1"]  # where nothing will answer: esptool's default is 7 tries
POLL_S = 0.05
INTERRUPT_TIMEOUT_S = 15.0
ERASED_BY_NOTHING = 0x5A  # the fake's flash starts as this pattern; an erase makes 0xFF


def flash(*args: str) -> int:
    return main(["flash", *args])


def image(tmp_path: Path, size: int = 40_000, name: str = "img.bin", chip: str = "esp32") -> Tuple[Path, bytes]:
    """An ESP image header for `chip` (what mqnode checks: the magic and the chip id), then random
    bytes and zeros (so a compressed write shrinks). No segment and no checksum, so esptool finds
    no valid image in it to patch or to check against the chip's revision."""
    header = struct.pack("<BBBBIBBBBHBHHIB", 0xE9, 0, 2, 0x20, 0x40080000, 0xEE, 0, 0, 0,
                         CHIP_DEFS[chip].IMAGE_CHIP_ID, 0, 0, 0, 0, 0)
    data = header + os.urandom(size // 2) + bytes(size - size // 2 - len(header))
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def only_line(text: str) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---- ESP32 family, through esptool ---------------------------------------------------------------

@pytest.mark.parametrize("chip, board, offset", [
    ("esp32", "esp32-devkitc", 0x1000),
    ("esp32c3", "esp32-c3-devkitm", 0x0),
    ("esp32s3", "esp32-s3-devkitc", 0x0),
])
def test_esp_image_is_byte_identical_at_the_boards_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chip: str, board: str, offset: int
) -> None:
    path, data = image(tmp_path, chip=chip)
    with FakeEspRom(chip) as rom:
        status = flash("--board", board, "--port", rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY)
    out = capsys.readouterr()
    assert status == 0, out
    assert rom.flash[offset : offset + len(data)] == data
    assert set(rom.flash[:offset]) <= {ERASED_BY_NOTHING}  # nothing written below the offset
    assert "Verified: the flash's MD5 matches img.bin." in out.out
    assert 0x13 in rom.commands  # SPI_FLASH_MD5: write-flash's own verification ran


def test_esp_default_erases_the_whole_flash_then_writes_and_verifies(tmp_path: Path) -> None:
    """Without --no-stub esptool runs its flasher stub, which the fake only pretends to be: this
    shows the commands mqnode has esptool send (erase all, compressed write, MD5), in order."""
    path, data = image(tmp_path)
    with FakeEspRom("esp32") as rom:
        rom.flash[0x300000:0x300004] = b"junk"
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--", "--before", "no-reset")
    assert status == 0
    assert rom.flash[0x1000 : 0x1000 + len(data)] == data
    assert rom.flash[0x300000:0x300004] == b"\xff" * 4
    erase, write, md5 = (rom.commands.index(op) for op in (0xD0, 0x10, 0x13))  # ERASE_FLASH, FLASH_DEFL_BEGIN
    assert erase < write < md5


def test_esp_compressed_write_and_write_flash_options_pass_through(tmp_path: Path) -> None:
    path, data = image(tmp_path, 100_000)
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--no-erase",
                       *ROM_ONLY, "--compress", "--flash-size", "4MB")
    assert status == 0
    assert 0x10 in rom.commands and 0x11 in rom.commands  # FLASH_DEFL_BEGIN, FLASH_DEFL_DATA
    assert rom.flash[0x1000 : 0x1000 + len(data)] == data


def test_esp_chip_mismatch_is_one_line_naming_both_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = image(tmp_path, chip="esp32c3")  # right for the board; the board's chip is not
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-c3-devkitm", "--port", rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY)
    line = only_line(capsys.readouterr().err)
    assert status == 1
    assert "is an ESP32, but board esp32-c3-devkitm has an ESP32-C3" in line
    assert set(rom.flash) == {ERASED_BY_NOTHING}
    assert 0x02 not in rom.commands  # no FLASH_BEGIN


@pytest.mark.parametrize("content, says", [
    (b"UF2\n" + bytes(60), "it starts with 0x55, not 0xe9"),  # a Pico's .uf2
    (b"\x7fELF" + bytes(60), "it starts with 0x7f, not 0xe9"),
    (b"", "it starts with nothing"),
    (b"\xe9\x03\x02\x20", "4 bytes, shorter than its header"),
], ids=["uf2", "elf", "empty", "short"])
def test_esp_file_that_is_no_esp_image_is_refused_before_the_port_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "fw.bin"
    path.write_bytes(content)
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY)
    line = only_line(capsys.readouterr().err)
    assert status == 2
    assert line.startswith("mqnode flash: %s is not an ESP firmware image" % path) and says in line, line
    assert rom.received == 0 and set(rom.flash) == {ERASED_BY_NOTHING}


def test_esp_image_built_for_another_chip_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = image(tmp_path, chip="esp32s3")
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY)
    assert status == 2
    assert only_line(capsys.readouterr().err) == (
        "mqnode flash: %s is built for ESP32-S3, not for this board's ESP32" % path)
    assert rom.received == 0


def test_an_esp8266_image_has_no_chip_id_to_check(tmp_path: Path) -> None:
    path = tmp_path / "esp8266.bin"
    path.write_bytes(b"\xe9\x03\x00\x20" + bytes(60))  # the 8-byte header, no extended one
    assert check_image(path, "esp8266") is None  # refused before: "built for an unknown chip"


def test_esp_port_that_refuses_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = image(tmp_path)
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        url = "socket://127.0.0.1:%d" % s.getsockname()[1]
    status = flash("--board", "esp32-devkitc", "--port", url, "--firmware", str(path), "--no-erase", *ROM_ONLY, *ONE_TRY)
    line = only_line(capsys.readouterr().err)
    assert status == 1
    assert line.startswith("mqnode flash: cannot open %s" % url) and "Connection refused" in line


def test_esp_port_that_never_answers_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = image(tmp_path)
    with FakeEspRom("esp32", silent=True) as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY, *ONE_TRY)
    line = only_line(capsys.readouterr().err)
    assert status == 1
    assert "no ESP bootloader answered on %s" % rom.url in line and "No serial data received" in line


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_esp_flash_interrupted_while_connecting_exits_130(tmp_path: Path, sig: int) -> None:
    """Ctrl-C (or SIGTERM) while esptool waits for the chip: mqnode's "interrupted" and 130, as
    documented. esptool's click command, run standalone, turned it into "Aborted!" and status 1,
    which flash then reported as esptool refusing its options (status 2)."""
    path, _ = image(tmp_path)
    with FakeEspRom("esp32", silent=True) as rom:
        job = subprocess.Popen([sys.executable, "-m", "mqnode_tools", "flash", "--board", "esp32-devkitc", "--port",
                                rom.url, "--firmware", str(path), "--no-erase", *ROM_ONLY],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(int(INTERRUPT_TIMEOUT_S / POLL_S)):  # until esptool sends its SYNCs
                if rom.received or job.poll() is not None:
                    break
                time.sleep(POLL_S)
            assert rom.received, "esptool never wrote to the port"
            job.send_signal(sig)
            out, err = job.communicate(timeout=INTERRUPT_TIMEOUT_S)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    assert job.returncode == 130, out + err
    assert "mqnode: interrupted" in err and "refused the options" not in err, err


def test_esp_no_stub_without_no_erase_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = image(tmp_path)
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), *ROM_ONLY)
    line = only_line(capsys.readouterr().err)
    assert status == 2
    assert "--no-stub needs --no-erase" in line
    assert rom.commands == []


def test_esp_dry_run_prints_the_esptool_command_and_connects_to_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = image(tmp_path)
    with FakeEspRom("esp32") as rom:
        status = flash("--board", "esp32-devkitc", "--port", rom.url, "--firmware", str(path), "--baud", "115200",
                       "--dry-run", "--", "--after", "no-reset", "--flash-mode", "dio")
    out = capsys.readouterr().out
    assert status == 0
    assert only_line(out) == (
        "would run: esptool --chip esp32 --port %s --baud 115200 --after no-reset write-flash --erase-all "
        "--flash-mode dio 0x1000 %s" % (rom.url, path))
    assert rom.commands == []


def test_missing_firmware_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = flash("--board", "esp32-devkitc", "--port", "socket://127.0.0.1:9", "--firmware", str(tmp_path / "nope.bin"))
    assert status == 2
    assert only_line(capsys.readouterr().err) == "mqnode flash: firmware file %s: no such file" % (tmp_path / "nope.bin")


def test_esptool_options_mqnode_sets_itself_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = image(tmp_path)
    status = flash("--board", "esp32-devkitc", "--port", "socket://127.0.0.1:9", "--firmware", str(path),
                   "--dry-run", "--", "--chip", "esp32s3")
    assert status == 2
    assert "--chip comes from mqnode's own" in only_line(capsys.readouterr().err)


def test_extra_options_split_into_global_and_write_flash_ones() -> None:
    before, after = split_extra(["--before", "no-reset", "--flash-size", "4MB", "--no-stub", "--after=no-reset", "-z"])
    assert before == ["--before", "no-reset", "--no-stub", "--after=no-reset"]
    assert after == ["--flash-size", "4MB", "-z"]


# ---- RP2040, by UF2 copy -------------------------------------------------------------------------

RP2040 = 0xE48BFF56
RP2350_ARM_S = 0xE48BFF59
INFO = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def uf2(payload: bytes, family: int = RP2040, base: int = 0x10000000, chunk: int = 256) -> bytes:
    """UF2 blocks as microsoft/uf2 specifies: 32-byte header, 476 data bytes, the end magic."""
    pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    blocks = []
    for n, piece in enumerate(pieces):
        header = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x00002000, base + n * chunk, len(piece),
                             n, len(pieces), family)
        blocks.append(header + piece.ljust(476, b"\x00") + struct.pack("<I", 0x0AB16F30))
    return b"".join(blocks)


def fake_drive(root: Path, name: str = "RPI-RP2") -> Path:
    drive = root / name
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text(INFO)
    return drive


@pytest.fixture
def no_real_drives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the drive search at a folder of the test's own: a Pico in BOOTSEL on this machine
    must never receive a test's file."""
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.setattr(flash_command, "find_drives", lambda: flash_uf2.find_drives([media], tmp_path / "no-mounts"))
    return media


def test_uf2_copied_byte_identical_to_the_drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drive = fake_drive(tmp_path)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(5000)))
    assert flash("--board", "pico-w", "--firmware", str(fw), "--drive", str(drive)) == 0
    assert (drive / "fw.uf2").read_bytes() == fw.read_bytes()
    assert "Copied to %s" % (drive / "fw.uf2") in capsys.readouterr().out


def test_uf2_drive_is_found_under_the_automount_folder(tmp_path: Path, no_real_drives: Path) -> None:
    drive = fake_drive(no_real_drives)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    assert flash("--board", "pico-w", "--firmware", str(fw)) == 0
    assert (drive / "fw.uf2").read_bytes() == fw.read_bytes()


def test_find_drives_reads_the_mount_table_and_skips_other_volumes(tmp_path: Path) -> None:
    mounted = fake_drive(tmp_path / "mnt", "RPI-RP2 1")
    decoy = tmp_path / "mnt" / "RPI-RP2-decoy"  # the right name, but no INFO_UF2.TXT
    decoy.mkdir()
    rp2350 = fake_drive(tmp_path / "mnt", "RPI-RP2350")
    (rp2350 / "INFO_UF2.TXT").write_text("UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n")
    mounts = tmp_path / "mounts"
    mounts.write_text("".join("/dev/sdb1 %s vfat rw 0 0\n" % str(p).replace(" ", "\\040") for p in (mounted, decoy, rp2350)))
    assert flash_uf2.find_drives([tmp_path / "nothing-here"], mounts) == [mounted]


def test_uf2_bootloader_through_mpremote_then_the_drive_appears(
    tmp_path: Path, no_real_drives: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mpremote stands in here: a script that makes the drive appear a moment later, as the
    board does after machine.bootloader()."""
    appear = ("import pathlib, threading, time, sys\n"
              "d = pathlib.Path(sys.argv[1]) / 'RPI-RP2'\n"
              "d.mkdir(); (d / 'INFO_UF2.TXT').write_text(%r)\n" % INFO)
    seen: List[str] = []

    def fake_mpremote(port: str) -> List[str]:
        seen.append(port)
        return [sys.executable, "-c", appear, str(no_real_drives)]

    monkeypatch.setattr(flash_uf2, "bootloader_command", fake_mpremote)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    assert flash("--board", "pico-w", "--firmware", str(fw), "--port", "/dev/ttyACM7") == 0
    assert seen == ["/dev/ttyACM7"]  # asked once, for the board's port
    assert (no_real_drives / "RPI-RP2" / "fw.uf2").read_bytes() == fw.read_bytes()


def test_uf2_bootloader_command_is_mpremotes() -> None:
    cmd = flash_uf2.bootloader_command("/dev/ttyACM7")
    assert Path(cmd[0]).name == "mpremote" and cmd[1:] == ["connect", "/dev/ttyACM7", "bootloader"]


def test_uf2_mpremote_failure_is_one_line(tmp_path: Path, no_real_drives: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    port = str(tmp_path / "ttyACM-none")  # the real mpremote, on a port that does not exist
    assert flash("--board", "pico-w", "--firmware", str(fw), "--port", port) == 1
    assert "mpremote could not put %s into the bootloader" % port in only_line(capsys.readouterr().err)


def test_uf2_no_drive_and_no_port_is_one_line(tmp_path: Path, no_real_drives: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    assert flash("--board", "pico-w", "--firmware", str(fw)) == 1
    assert "no RPI-RP2 drive is mounted" in only_line(capsys.readouterr().err)


@pytest.mark.parametrize("content, expected", [
    (os.urandom(2048), "is not a UF2 file (block 0 has no UF2 magic numbers)"),
    (os.urandom(1000), "is not a UF2 file (1000 bytes: not a whole number of 512-byte blocks)"),
    (uf2(os.urandom(1000), family=RP2350_ARM_S), "is a UF2 file for RP2350 (Arm, secure) (0xe48bff59), not the RP2040 (0xe48bff56)"),
    (uf2(os.urandom(1000))[:-512], "is damaged: its RP2040 (0xe48bff56) blocks are not numbered 0..2"),
])
def test_uf2_that_is_not_for_the_rp2040_is_one_line_and_copies_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    drive = fake_drive(tmp_path)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(content)
    assert flash("--board", "pico-w", "--firmware", str(fw), "--drive", str(drive)) == 2
    assert only_line(capsys.readouterr().err) == "mqnode flash: %s %s" % (fw, expected)
    assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]


def test_uf2_missing_firmware_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drive = fake_drive(tmp_path)
    assert flash("--board", "pico-w", "--firmware", str(tmp_path / "none.uf2"), "--drive", str(drive)) == 2
    assert only_line(capsys.readouterr().err) == "mqnode flash: firmware file %s: no such file" % (tmp_path / "none.uf2")


def test_uf2_folder_without_info_file_is_not_a_drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    folder = tmp_path / "stick"
    folder.mkdir()
    assert flash("--board", "pico-w", "--firmware", str(fw), "--drive", str(folder)) == 2
    assert only_line(capsys.readouterr().err) == "mqnode flash: %s is not an RPI-RP2 drive (no INFO_UF2.TXT in it)" % folder
    assert list(folder.iterdir()) == []


def test_uf2_dry_run_changes_nothing(tmp_path: Path, no_real_drives: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drive = fake_drive(tmp_path)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2(os.urandom(1000)))
    assert flash("--board", "pico-w", "--firmware", str(fw), "--drive", str(drive), "--dry-run") == 0
    assert only_line(capsys.readouterr().out) == (
        "would copy %s (4 blocks, 0x10000000..0x100003e8) to %s" % (fw, drive / "fw.uf2"))
    assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]
    # With no drive but a port: what would run, and nothing is run.
    assert flash("--board", "pico-w", "--firmware", str(fw), "--port", "/dev/ttyACM7", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would run: " in out and "connect /dev/ttyACM7 bootloader" in out
    assert list(no_real_drives.iterdir()) == []


def test_board_without_flash_method_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"x")
    assert flash("--board", "sim", "--firmware", str(fw)) == 2
    assert only_line(capsys.readouterr().err) == "mqnode flash: board sim has no firmware to flash (flash method 'none')"
