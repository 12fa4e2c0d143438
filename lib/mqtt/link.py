"""The blocking client's connection: a socket (plain or TLS) whose every call has a deadline.

On MicroPython a TLS socket has no settimeout, so the link runs non-blocking and waits with
select.poll; on CPython (cpython.py, which a board never loads) socket timeouts work for plain
and TLS sockets alike. Only MQTTClient
loads this module: the asyncio client uses asyncio's streams.
"""
import socket

from .compat import MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms, tidy_heap
from .errors import MQTTTimeout

# Linux and lwIP share these numbers; MicroPython's socket module does not export them.
_IPPROTO_TCP = const(6)
_TCP_NODELAY = const(1)


def _nodelay(sock):
    # Without it an ack-and-publish exchange waits on Nagle + delayed ACK (~40 ms a round trip).
    try:
        sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # a port without the option: slower, still correct


if MICROPYTHON:
    import select

    class Link:
        def __init__(self, sock):
            sock.setblocking(False)
            self.sock = sock
            self._poll = select.poll()
            self._poll.register(sock, select.POLLIN)

        def recv_into(self, buf, ms):
            """Bytes read into buf, 0 at end of stream, None if nothing came within ms."""
            n = self.sock.readinto(buf)
            if n is None and ms > 0:
                # ipoll yields into a callee-owned tuple: waiting allocates nothing.
                next(self._poll.ipoll(ms), None)
                n = self.sock.readinto(buf)
            return n

        def send(self, data, ms):
            sent = self.sock.write(data) or 0
            if sent != len(data):
                self._send_rest(data, sent, ms)  # apart, so the usual call's frame stays small

        def _send_rest(self, data, sent, ms):
            """The socket took only `sent` bytes: wait for room, within ms in all."""
            deadline = ticks_add(ticks_ms(), ms)
            view = memoryview(data)
            self._poll.modify(self.sock, select.POLLOUT)
            try:
                while sent < len(data):
                    left = ticks_diff(deadline, ticks_ms())
                    if left <= 0:
                        raise MQTTTimeout("send: peer stopped reading for %d ms" % ms)
                    next(self._poll.ipoll(left), None)
                    sent += self.sock.write(view[sent:]) or 0
            finally:
                self._poll.modify(self.sock, select.POLLIN)

        def close(self):
            self.sock.close()

    def is_timeout(e):
        # ETIMEDOUT on the Unix port, EAGAIN from lwIP on boards.
        return e.args[0] in (110, 11)

    def legacy_wrap_socket(sock, params):
        """umqtt.simple's ssl=True: the ssl module's wrap_socket, given its ssl_params."""
        import ssl

        return ssl.wrap_socket(sock, **params)

else:
    from .cpython import Link, is_timeout, legacy_wrap_socket


def open_link(host, port, ssl, timeout_ms, ssl_params=None):
    """Connect (TCP, then TLS), each step within timeout_ms. ssl: an SSLContext; or, as
    umqtt.simple takes it, True (TLS through ssl.wrap_socket(**ssl_params)) or False (none)."""
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(addr[0], socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_ms / 1000)
        _nodelay(sock)
        sock.connect(addr[-1])
        if ssl is True:
            params = dict(ssl_params or {})
            params.setdefault("server_hostname", host)  # SNI, and what CERT_REQUIRED checks
            sock = legacy_wrap_socket(sock, params)
        elif ssl:
            sock = ssl.wrap_socket(sock, server_hostname=host)
    except OSError as e:
        sock.close()
        if is_timeout(e):
            raise MQTTTimeout("connect to %s:%d: no answer within %d ms" % (host, port, timeout_ms))
        raise
    return Link(sock)


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
