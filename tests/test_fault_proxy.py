"""The fault proxy does what the fault tests take it to do, checked with plain sockets (no MQTT,
no client under test), so a failure here points at tests/fault_proxy.py, not at lib/mqtt.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, Tuple

import pytest

from fault_proxy import DOWN, UP, FaultProxy

HOST = "127.0.0.1"
WAIT_S = 2.0
QUIET_S = 0.3  # long enough for bytes that were going to be forwarded to have arrived


class Target:
    """Accepts one connection at a time and keeps its socket for the test."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(8)
        self.listener.settimeout(WAIT_S)
        self.port = self.listener.getsockname()[1]

    def accept(self) -> socket.socket:
        s, _ = self.listener.accept()
        s.settimeout(WAIT_S)
        return s


def _read(s: socket.socket, n: int, timeout_s: float = WAIT_S) -> bytes:
    """Up to n bytes within timeout_s; fewer if the connection ends or nothing more comes."""
    out = b""
    deadline = time.monotonic() + timeout_s
    for _ in range(n + 1):
        left = deadline - time.monotonic()
        if len(out) >= n or left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(out))
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out


def _ended(s: socket.socket) -> bool:
    """The peer closed or reset the connection (within WAIT_S)."""
    s.settimeout(WAIT_S)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _reset(s: socket.socket) -> bool:
    """The peer reset the connection (an RST, within WAIT_S): what a cut must look like, since
    the fault tests rely on the bytes in flight being lost. A plain close (FIN) is not one."""
    s.settimeout(WAIT_S)
    try:
        s.recv(1)
    except ConnectionResetError:
        return True
    except socket.timeout:
        pass
    return False


@pytest.fixture
def pair() -> Iterator[Tuple[FaultProxy, socket.socket, socket.socket]]:
    """A proxy, a client connected through it, and the target's end of that connection."""
    target = Target()
    with FaultProxy(HOST, target.port) as proxy:
        client = socket.create_connection((HOST, proxy.port), timeout=WAIT_S)
        server = target.accept()
        yield proxy, client, server
        client.close()
        server.close()
    target.listener.close()


def test_cut_after_n_bytes_forwards_exactly_n_then_resets_both_sides(pair) -> None:
    proxy, client, server = pair
    proxy.cut_after([(UP, 37)])
    client.sendall(bytes(range(100)))
    assert _read(server, 37) == bytes(range(37))
    assert _reset(server) and _reset(client)  # not one byte more, and an RST on both sides
    assert [(c.direction, c.after) for c in proxy.cut_log] == [(UP, 37)]


def test_a_cut_schedule_continues_on_the_next_connection() -> None:
    target = Target()
    with FaultProxy(HOST, target.port) as proxy:
        proxy.cut_after([(DOWN, 5), (UP, 3)])
        got = []
        for send_down, data in ((True, b"0123456789"), (False, b"abcdef")):
            client = socket.create_connection((HOST, proxy.port), timeout=WAIT_S)
            server = target.accept()
            (server if send_down else client).sendall(data)
            got.append(_read(client if send_down else server, len(data)))
            client.close()
            server.close()
        assert got == [b"01234", b"abc"]
        assert [(c.direction, c.after) for c in proxy.cut_log] == [(DOWN, 5), (UP, 3)]
    target.listener.close()


def test_stall_holds_bytes_back_both_ways_without_closing_and_resume_delivers_them(pair) -> None:
    proxy, client, server = pair
    proxy.stall()
    client.sendall(b"up")
    server.sendall(b"down")
    assert _read(server, 2, QUIET_S) == b""
    assert _read(client, 4, QUIET_S) == b""
    proxy.resume()
    assert _read(server, 2) == b"up"
    assert _read(client, 4) == b"down"
    assert proxy.counters().cuts == 0


def test_one_byte_at_a_time_and_slow_still_deliver_everything_in_order(pair) -> None:
    proxy, client, server = pair
    proxy.byte_at_a_time(True)
    proxy.slow(0.001)
    data = bytes(range(256))
    sender = threading.Thread(target=client.sendall, args=(data,), daemon=True)
    started = time.monotonic()
    sender.start()
    assert _read(server, len(data), 10.0) == data
    assert time.monotonic() - started >= 0.2  # 1 ms before each of 256 bytes: both modes were on
    sender.join(WAIT_S)
    assert proxy.counters().bytes_up == len(data)


def test_refuse_accepts_and_closes_new_connections_but_keeps_current_ones(pair) -> None:
    proxy, client, server = pair
    proxy.refuse(True)
    late = socket.create_connection((HOST, proxy.port), timeout=WAIT_S)
    assert _ended(late)
    late.close()
    client.sendall(b"still here")
    assert _read(server, 10) == b"still here"
    counters = proxy.counters()
    assert (counters.accepted, counters.refused) == (2, 1)
