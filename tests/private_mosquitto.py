"""A mosquitto of one test's own, for what the session-wide broker must not be put through: being
killed with SIGKILL and restarted on the same port, or non-default limits.

    with PrivateMosquitto(tmp_path, PERSISTENT) as m:   # PERSISTENT: see below
        c = start_client(port=m.port)
        m.kill()                          # SIGKILL: no clean shutdown, no final save
        accepting_at = m.start()          # same port, same config, same persistence file

It is tests/broker.py's anonymous listener without the TLS and password ones, plus the caller's
extra configuration lines.
"""
from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Optional

from broker import HOST, BrokerError, end_process, find_mosquitto, free_ports
from mosquitto_config import MAX_QUEUED_MESSAGES

START_TIMEOUT_S = 10.0
ACCEPT_POLL_S = 0.005  # how finely start() notices the port accepting: it times reconnects
LOG_TAIL_LINES = 200


def persistence_config(directory: Path) -> str:
    """Sessions and queued messages in `directory`, saved after every change.

    mosquitto 2.0.11 saves its whole database only from its main loop: every autosave_interval
    seconds, or with autosave_on_changes after that many changes, and on a clean exit (SIGTERM,
    SIGINT). SIGKILL gets no final save: the broker restarts from the last save. What counts as a
    change (src/database.c, handle_*.c) is a message queued for an offline or full client, an
    outgoing message acknowledged, a CONNECT, SUBSCRIBE, UNSUBSCRIBE or retained message; a
    message accepted from a publisher and put in flight straight away is not one, so it is on
    disk only once something else changes in the same loop.
    """
    return "\n".join([
        "persistence true",
        "persistence_location %s/" % directory,  # mosquitto appends the file name as is
        "persistence_file mosquitto.db",
        "autosave_on_changes true",
        "autosave_interval 1",  # with autosave_on_changes: save after every single change
        "",
    ])


class PrivateMosquitto:
    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        self.executable = find_mosquitto()
        self.workdir = workdir
        self.port = free_ports(1)[0]
        self.host = HOST
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            "user %s\nlog_dest stderr\nlog_type all\nlog_timestamp_format %%H:%%M:%%S\n"
            "max_queued_messages %d\nset_tcp_nodelay true\n%s\nlistener %d %s\nallow_anonymous true\n"
            % (getpass.getuser(), MAX_QUEUED_MESSAGES, extra_config, self.port, HOST)
        )
        self.log_path = workdir / "mosquitto.log"
        self.starts = 0
        self._log: Optional[IO[bytes]] = None
        self._process: Optional[subprocess.Popen] = None

    def start(self) -> float:
        """Start (again) on the same port; returns time.time() when the port first accepted."""
        if self._process is not None:
            raise RuntimeError("mosquitto is already running")
        self._log = open(self.log_path, "ab")
        self._log.write(b"--- start %d ---\n" % (self.starts + 1))
        self._log.flush()
        self._process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        for _ in range(int(START_TIMEOUT_S / ACCEPT_POLL_S) + 1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                break
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return time.time()
            except OSError:
                time.sleep(ACCEPT_POLL_S)
        self.stop()
        raise BrokerError("mosquitto did not listen on %d; its log:\n%s" % (self.port, self.log_tail()))

    def kill(self) -> None:
        """SIGKILL: the process ends at once, without saving or closing anything cleanly."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean exit, which saves the persistence file."""
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self._process is not None:
            end_process(self._process, sig)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "PrivateMosquitto":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
