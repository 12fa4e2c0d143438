"""Which serial port the board is on, and why it will not open: the questions every tool that
talks to a board asks first, answered once for deploy, provision (mpremote's transport) and
flash (esptool)."""
from __future__ import annotations

import os
import sys
from typing import List

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


def why_not_open(port: str, said: str) -> str:
    """Why `port` would not open, in words a user can act on, where the tool that tried said only
    `said` (mpremote: "failed to access"; esptool: "busy or doesn't exist"): the port is not
    there, not the user's to open, or held by another program. A URL port (socket://) is not
    probed, and `said` stands when no better reason shows."""
    if "://" in port:
        return said
    if not (os.path.exists(port) if os.name == "posix" else port in _listed()):
        return "no such port (serial ports here: %s)" % (
            ", ".join(_listed()) or "none; is the board plugged in, with a data cable?")
    if os.name == "posix" and not os.access(port, os.R_OK | os.W_OK):
        return "permission denied%s" % _join_group_hint(port)
    probe = serial.serial_for_url(port, do_not_open=True, exclusive=True)
    probe.dtr = probe.rts = False  # as esptool opens: no reset of a board on a USB-serial bridge
    try:
        probe.open()
    except (serial.SerialException, OSError, ValueError) as e:
        text = str(e)
        if any(sign in text for sign in ("exclusively lock", "Errno 16", "Access is denied", "PermissionError")):
            return "in use by another program (a serial monitor, Thonny, another mpremote): close it and try again"
        return text
    probe.close()
    return said


def _listed() -> List[str]:
    """The serial ports the OS lists (asked only when a port is missing: it scans the system)."""
    return [p.device for p in serial.tools.list_ports.comports()]


def _join_group_hint(port: str) -> str:
    """Linux: the group that may open the port (dialout on Debian and Ubuntu, uucp on Arch)."""
    if not sys.platform.startswith("linux"):
        return ""
    import grp

    gid = os.stat(port).st_gid
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return ": add yourself to its group (sudo usermod -aG %s $USER), then log out and in again" % group
