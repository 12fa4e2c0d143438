"""Which serial port the board is on, and why it will not open: the questions every tool that
talks to a board asks first, answered once for deploy, provision (mpremote's transport) and
flash (esptool)."""
from __future__ import annotations

import os

import serial
import serial.tools.list_ports

AUTO = "auto"


class PortError(RuntimeError):
    """No single board to pick for --port auto."""


def resolve(port: str) -> str:
    """`port` as given, or for "auto" the one USB serial port there is, as `mpremote connect auto`
    looks only at USB devices (a laptop's built-in /dev/ttyS* is never a board). With none, or
    several to choose from, PortError says so and lists them."""
    if port != AUTO:
        return port
    usb = [p for p in serial.tools.list_ports.comports() if p.vid is not None]
    if len(usb) == 1:
        return usb[0].device
    if not usb:
        raise PortError("no board found: no USB serial port is there (is it plugged in, with a data cable?); "
                        "or give --port")
    raise PortError("%d USB serial ports, so give --port: %s"
                    % (len(usb), ", ".join("%s (%s)" % (p.device, p.description) for p in usb)))


def why_not_open(port: str) -> str:
    """Why `port` would not open, in words a user can act on: mpremote says only "failed to
    access", and esptool "busy or doesn't exist", whether the port is missing, not ours to open,
    or held by another program."""
    if os.name == "posix" and "://" not in port:  # a device path (not COM3, not socket://...)
        if not os.path.exists(port):
            found = ", ".join(p.device for p in serial.tools.list_ports.comports())
            return "no such port (serial ports here: %s)" % (found or "none; is the board plugged in, with a data cable?")
        if not os.access(port, os.R_OK | os.W_OK):
            import grp

            group = grp.getgrgid(os.stat(port).st_gid).gr_name
            return ("permission denied: add yourself to its group (sudo usermod -aG %s $USER), then log out and in again"
                    % group)
    try:
        serial.serial_for_url(port, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError) as e:
        if "exclusively lock" in str(e):
            return "in use by another program (a serial monitor, Thonny, another mpremote): close it and try again"
        return str(e)
    return "it would not open, then opened when tried again: try again"
