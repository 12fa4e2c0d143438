"""Why a serial port will not open: the one question every tool that talks to a board asks
first, answered once for deploy, provision (mpremote's transport) and flash (esptool)."""
from __future__ import annotations

import os

import serial
import serial.tools.list_ports


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
