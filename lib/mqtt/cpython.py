"""CPython's stand-ins for what MicroPython has built in, for the tests and host tools.

compat.py and link.py take these names from here on CPython only, so a board never loads this
file (on a board every loaded function costs heap, used or not). Same names, same behaviour:
a clock in milliseconds, const, stream helpers, and the blocking client's socket with
deadlines (socket timeouts work for plain and TLS sockets alike).
"""
import socket
import ssl as _ssl
import time
from random import getrandbits  # noqa: F401 (compat re-exports it)

from .errors import MQTTTimeout


def const(x):
    return x


def sleep_ms(ms):
    time.sleep(ms / 1000)


def ticks_ms():
    return int(time.monotonic() * 1000)


def ticks_diff(a, b):
    return a - b


def ticks_add(a, b):
    return a + b


def print_exception(e):
    import traceback

    traceback.print_exception(e)


def stream_nodelay(stream):
    pass  # asyncio sets TCP_NODELAY on every TCP transport


def stream_flushed(stream):
    """True when the transport holds nothing back, so drain() has nothing to wait for."""
    return stream.transport.get_write_buffer_size() == 0


async def stream_close(stream, abort, timeout):
    """Close an asyncio stream within timeout. abort: the link is given up, so what the transport
    holds is dropped; close() would wait for a peer that may never read it, and so would
    wait_closed(). A clean close that does not finish in time is aborted too."""
    import asyncio  # loaded already by the asyncio client, the only caller

    if abort:
        stream.transport.abort()
    else:
        stream.close()
    try:
        await asyncio.wait_for(stream.wait_closed(), timeout)
    except Exception:  # a broken socket may fail to close cleanly, or take too long
        stream.transport.abort()


def str_bytes(s):
    return s.encode()


def body_view(buf, start, end):
    """A copy: CPython refuses to resize a bytearray while a view of it lives, and a traceback
    from a bad packet would keep one alive."""
    return bytes(buf[start:end])


async def stream_read(stream, buf):
    """Awaitable: read what an asyncio stream has into buf; the count, 0 at end of stream."""
    data = await stream.read(len(buf))  # CPython's StreamReader has no readinto
    buf[: len(data)] = data
    return len(data)


def release(name):
    """A no-op here: CPython has RAM to spare, and re-importing costs time."""


def tidy_heap():
    """A no-op here: CPython's heap does not fragment the way a board's does."""


# --- the blocking client's link ------------------------------------------------------------

_WOULD_BLOCK = (socket.timeout, BlockingIOError, _ssl.SSLWantReadError)


class Link:
    def __init__(self, sock):
        self.sock = sock
        self._timeout = -1

    def _set_timeout(self, ms):
        if ms != self._timeout:  # settimeout is a syscall; skip it when unchanged
            self.sock.settimeout(ms / 1000 if ms > 0 else 0)
            self._timeout = ms

    def recv_into(self, buf, ms):
        """Bytes read into buf, 0 at end of stream, None if nothing came within ms."""
        self._set_timeout(ms)
        try:
            return self.sock.recv_into(buf)
        except _WOULD_BLOCK:
            return None

    def send(self, data, ms):
        self._set_timeout(max(ms, 1))
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise MQTTTimeout("send: peer stopped reading for %d ms" % ms) from None

    def close(self):
        self.sock.close()


def is_timeout(e):
    return isinstance(e, socket.timeout)


def legacy_wrap_socket(sock, params):
    """MicroPython's ssl.wrap_socket(sock, key=, cert=, cert_reqs=, cadata=, server_hostname=),
    for umqtt.simple's ssl=True with ssl_params: CPython's own wrap_socket takes other keywords
    (and is gone from 3.12). Keys and certificates as bytes need files here: not supported."""
    if params.get("key") or params.get("cert"):
        raise ValueError("ssl_params key/cert: pass an SSLContext with load_cert_chain on CPython")
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # first: CPython refuses CERT_NONE while host names are checked
    ctx.verify_mode = params.get("cert_reqs", _ssl.CERT_NONE)
    if params.get("cadata"):
        ctx.load_verify_locations(cadata=params["cadata"])
    host = params.get("server_hostname")
    ctx.check_hostname = bool(host) and ctx.verify_mode == _ssl.CERT_REQUIRED
    return ctx.wrap_socket(sock, server_hostname=host)
