"""A private mosquitto for the test session, on free 127.0.0.1 ports.

Tests never use a broker that happens to be running: they start the system mosquitto with
a config of their own, so its settings (listeners, queue limits) are known.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, List, Optional

from certs import make_tls_files
from mosquitto_config import Ports, write_config, write_password_file

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 200


class BrokerError(RuntimeError):
    pass


def find_mosquitto() -> str:
    """Debian installs mosquitto in /usr/sbin, which a non-root PATH often lacks."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if not found:
        raise BrokerError("mosquitto is missing: run 'sudo apt-get install -y mosquitto'")
    return found


def free_ports(count: int) -> List[int]:
    """Ports the kernel hands out now; all sockets stay open until all are picked, so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until_listening(port: int, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.05) + 1):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def end_process(process: subprocess.Popen, sig: int) -> None:
    """Send `sig` to a broker process (if it still runs) and reap it; SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


class Broker:
    """mosquitto with an anonymous, a username/password and a TLS listener."""

    host = HOST
    user = "mqnode"
    password = "mqnode-secret"

    def __init__(self, workdir: Path) -> None:
        self.executable = find_mosquitto()
        tls = make_tls_files(workdir)
        self.ca_pem, self.ca_der = tls.ca.pem, tls.ca.der
        self.wrong_ca_pem, self.wrong_ca_der = tls.wrong_ca.pem, tls.wrong_ca.der
        self.port, self.auth_port, self.tls_port = free_ports(3)
        password_file = workdir / "passwords"
        write_password_file(password_file, self.user, self.password)
        self.config = workdir / "mosquitto.conf"
        write_config(self.config, Ports(self.port, self.auth_port, self.tls_port), password_file, tls)
        self.log_path = workdir / "mosquitto.log"
        self._log: Optional[IO[bytes]] = None
        self._process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        for port in (self.port, self.auth_port, self.tls_port):
            if not wait_until_listening(port, self._process, START_TIMEOUT_S):
                self.stop()
                raise BrokerError("mosquitto did not listen on %d; its log:\n%s" % (port, self.log_tail()))

    def stop(self) -> None:
        if self._process is not None:
            end_process(self._process, signal.SIGTERM)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Same ports and config; in-memory sessions and retained messages are lost."""
        self.stop()
        self.start()

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_tail(self, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        """The log written after byte offset `since`, cut to its last `lines` lines."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])
