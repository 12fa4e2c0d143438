"""A fake ESP32 serial loader on a loopback TCP socket, for esptool's `--port socket://...`.

It speaks the ROM loader's side of esptool's serial protocol: SLIP frames, SYNC, READ_REG and
WRITE_REG (with the registers esptool reads to tell the chips apart, and a flash ID behind the
SPI "user command" registers), SPI_SET_PARAMS, SPI_ATTACH, FLASH_BEGIN/DATA/END and the deflate
variants, SPI_FLASH_MD5, and keeps what it is sent in `flash`. It pretends to be an ESP32, an
ESP32-C3 or an ESP32-S3 (CHIPS). That is enough for `--before no-reset --no-stub` read-mac,
flash-id, write-flash and verify-flash.

Without --no-stub esptool uploads its flasher stub (MEM_BEGIN/DATA/END) and waits for "OHAI";
the fake acknowledges the upload, says OHAI, and from then on answers as the stub does (two
status bytes, a raw MD5, ERASE_FLASH and ERASE_REGION). The uploaded code is never looked at:
this shows that esptool is driven through the stub's commands, not that the stub works.

Protocol reference: esptool's loader.py (command(), check_command(), run_stub()) and the serial
protocol chapter of esptool's documentation. A response: 0x01, op, data length, a 32-bit value,
then the data and the status bytes (status, error; the ROM adds two reserved zero bytes).
"""
from __future__ import annotations

import functools
import hashlib
import operator
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

FLASH_SIZE = 4 * 1024 * 1024
SECTOR = 0x1000
JEDEC_ID = 0x1640EF  # Winbond W25Q32 as RDID returns it: 0xEF, 0x40, 0x16 (0x16: 4 MB)
SYNC_VALUE = 0x20120707  # any non-zero value: esptool takes 0 for the flasher stub
CHIP_DETECT_MAGIC_REG = 0x40001000  # ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR
INVALID_MESSAGE = 0x05  # ROM error codes, esptool's FatalError.WithResult table
FAILED_TO_ACT = 0x06
INVALID_CRC = 0x07
CHECKSUM_SEED = 0xEF  # ESPLoader.ESP_CHECKSUM_MAGIC: data blocks carry the XOR of their bytes
SPI_CMD_USR = 1 << 18
MAX_FRAME = 0x4000 + 64  # FLASH_DATA blocks: 0x400 bytes to the ROM, 0x4000 to the stub; more is a framing bug
STOP_POLL_S = 0.05


@dataclass(frozen=True)
class Chip:
    """What one chip's ROM answers, at the addresses esptool's targets/<chip>.py read."""

    name: str
    magic: Optional[int]  # at CHIP_DETECT_MAGIC_REG: ESP32 and older are told apart by it
    chip_id: Optional[int]  # GET_SECURITY_INFO's chip id: ESP32-S3/C3 and later
    spi_base: int
    spi_usr2: int
    spi_w0: int
    mac_regs: Tuple[int, int]  # (high word, low word) of the base MAC in eFuse
    uart_clkdiv: int  # UART_CLKDIV_REG: esptool estimates the crystal from it and the baud rate
    long_flash_begin: bool  # FLASH_BEGIN carries a 5th word (encrypted) on all but ESP32's ROM


CHIPS: Dict[str, Chip] = {
    "esp32": Chip("ESP32", 0x00F01D83, None, 0x3FF42000, 0x24, 0x80, (0x3FF5A008, 0x3FF5A004), 0x3FF40014, False),
    "esp32c3": Chip("ESP32-C3", None, 5, 0x60002000, 0x20, 0x58, (0x60008848, 0x60008844), 0x60000014, True),
    "esp32s3": Chip("ESP32-S3", None, 9, 0x60002000, 0x20, 0x58, (0x60007048, 0x60007044), 0x60000014, True),
}
UART_DIV_40MHZ = 347  # 40 MHz / 115200 Bd, the ROM's divider
MAC = bytes.fromhex("240ac4123456")


@dataclass
class _Download:
    offset: int
    written: int = 0
    inflate: Optional["zlib._Decompress"] = None


@dataclass
class FakeEspRom:
    """`with FakeEspRom("esp32") as rom:` listens on 127.0.0.1:rom.port until the block ends.

    `silent=True` accepts connections and never answers (a board that is not in its bootloader).
    Connections are served one at a time, as a serial port would be; `commands` logs the ops seen.
    """

    chip_key: str = "esp32"
    silent: bool = False
    lifetime_s: float = 60.0
    flash: bytearray = field(default_factory=lambda: bytearray(b"\x5a" * FLASH_SIZE))
    commands: List[int] = field(default_factory=list)
    received: int = 0  # bytes from esptool, silent or not: it is talking to the port

    def __post_init__(self) -> None:
        self.chip = CHIPS[self.chip_key]
        hi, lo = self.chip.mac_regs
        self.regs: Dict[int, int] = {
            hi: int.from_bytes(MAC[:2], "big"), lo: int.from_bytes(MAC[2:], "big"),
            self.chip.uart_clkdiv: UART_DIV_40MHZ,
        }
        if self.chip.magic is not None:
            self.regs[CHIP_DETECT_MAGIC_REG] = self.chip.magic
        self._download: Optional[_Download] = None
        self._stub = False
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(STOP_POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-esp-rom", daemon=True)

    @property
    def url(self) -> str:
        return "socket://127.0.0.1:%d" % self.port

    def __enter__(self) -> "FakeEspRom":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(STOP_POLL_S)
                self._stub = False  # a new esptool run: the chip was reset into its ROM loader
                self._session(conn, deadline)

    def _session(self, conn: socket.socket, deadline: float) -> None:
        frame: Optional[bytearray] = None  # None: between frames
        escaped = False
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                return
            self.received += len(chunk)
            if self.silent:
                continue
            for b in chunk:  # SLIP (RFC 1055): 0xC0 ends a frame, 0xDB 0xDC / 0xDB 0xDD escape
                if b == 0xC0:
                    if frame:
                        conn.sendall(b"".join(self._slip(r) for r in self._handle(bytes(frame))))
                    frame = bytearray()
                elif frame is None:
                    continue
                elif escaped:
                    frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
                    escaped = False
                elif b == 0xDB:
                    escaped = True
                else:
                    frame.append(b)
                    if len(frame) > MAX_FRAME:
                        return

    @staticmethod
    def _slip(packet: bytes) -> bytes:
        return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"

    def _reply(self, op: int, value: int = 0, data: bytes = b"", error: int = 0) -> List[bytes]:
        body = data + bytes((1 if error else 0, error) if self._stub else (1 if error else 0, error, 0, 0))
        return [struct.pack("<BBHI", 1, op, len(body), value) + body]

    def _write_reg(self, addr: int, value: int) -> None:
        """Registers keep what is written, except the SPI command register: setting its USR bit
        runs the "user command" whose opcode esptool put in USR2, and the bit clears when done."""
        spi = self.chip.spi_base
        if addr == spi and value & SPI_CMD_USR:
            opcode = self.regs.get(spi + self.chip.spi_usr2, 0) & 0xFF
            self.regs[spi + self.chip.spi_w0] = {0x9F: JEDEC_ID}.get(opcode, 0)  # RDID; SFDP reads 0
            value &= ~SPI_CMD_USR
        self.regs[addr] = value

    def _handle(self, packet: bytes) -> List[bytes]:
        if len(packet) < 8 or packet[0] != 0:
            return self._reply(0, error=INVALID_MESSAGE)
        _, op, size, checksum = struct.unpack("<BBHI", packet[:8])
        data = packet[8 : 8 + size]
        self.commands.append(op)
        if op in (0x03, 0x11) and functools.reduce(operator.xor, data[16:], CHECKSUM_SEED) != checksum:
            return self._reply(op, error=INVALID_CRC)
        try:
            return self._command(op, data)
        except (struct.error, zlib.error, IndexError, ValueError):
            return self._reply(op, error=FAILED_TO_ACT)

    def _command(self, op: int, data: bytes) -> List[bytes]:
        if op == 0x08:  # SYNC: the ROM answers eight times
            return self._reply(op, SYNC_VALUE) * 8
        if op == 0x0A:  # READ_REG
            return self._reply(op, self.regs.get(struct.unpack("<I", data[:4])[0], 0))
        if op == 0x09:  # WRITE_REG: (address, value, mask, delay) groups
            for i in range(0, len(data) - 15, 16):
                addr, value, mask, _ = struct.unpack("<IIII", data[i : i + 16])
                self._write_reg(addr, (self.regs.get(addr, 0) & ~mask) | (value & mask))
            return self._reply(op)
        if op in (0x0B, 0x0D, 0x0F):  # SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE: nothing to do
            return self._reply(op)
        if op == 0x14 and self.chip.chip_id is not None:  # GET_SECURITY_INFO: flags, counts, id
            return self._reply(op, data=struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip.chip_id, 0))
        if op in (0x05, 0x07):  # MEM_BEGIN, MEM_DATA: the stub's code, accepted unread
            return self._reply(op)
        if op == 0x06:  # MEM_END with an entry point: the stub starts and greets
            entry = struct.unpack("<II", data[:8])[1]
            reply = self._reply(op)
            self._stub = self._stub or entry != 0
            return reply + ([b"OHAI"] if entry else [])
        if op in (0xD0, 0xD1) and self._stub:  # ERASE_FLASH, ERASE_REGION
            offset, size = struct.unpack("<II", data[:8]) if op == 0xD1 else (0, FLASH_SIZE)
            self.flash[offset : offset + size] = b"\xff" * min(size, FLASH_SIZE - offset)
            return self._reply(op)
        if op in (0x02, 0x10):  # FLASH_BEGIN, FLASH_DEFL_BEGIN: erase what will be written
            erase, _blocks, _block_size, offset = struct.unpack("<IIII", data[:16])
            long_form = self._stub or self.chip.long_flash_begin
            if len(data) != (20 if long_form else 16) or offset + erase > FLASH_SIZE:
                return self._reply(op, error=FAILED_TO_ACT)
            start, end = offset // SECTOR * SECTOR, -(-(offset + erase) // SECTOR) * SECTOR
            self.flash[start:end] = b"\xff" * (end - start)
            self._download = _Download(offset, inflate=zlib.decompressobj() if op == 0x10 else None)
            return self._reply(op)
        if op in (0x03, 0x11) and self._download is not None:  # FLASH_DATA, FLASH_DEFL_DATA
            length = struct.unpack("<I", data[:4])[0]
            block = data[16 : 16 + length]
            d = self._download
            if d.inflate is not None:
                block = d.inflate.decompress(block)
            at = d.offset + d.written
            self.flash[at : at + len(block)] = block
            d.written += len(block)
            return self._reply(op)
        if op in (0x04, 0x12):  # FLASH_END, FLASH_DEFL_END
            self._download = None
            return self._reply(op)
        if op == 0x13:  # SPI_FLASH_MD5: the ROM answers 32 hex digits, the stub 16 bytes
            addr, size = struct.unpack("<II", data[:8])
            md5 = hashlib.md5(self.flash[addr : addr + size])
            return self._reply(op, data=md5.digest() if self._stub else md5.hexdigest().encode())
        return self._reply(op, error=INVALID_MESSAGE)
