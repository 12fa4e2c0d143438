# Building blocks for the asyncio client's scenarios (aio_scenarios.py): making clients,
# collecting messages within a bound, ending a connection the hard way.
#
# MicroPython 1.22+ and CPython 3.9+: only asyncio (and ssl for TLS); no typing, no f-strings.
import asyncio

from mqtt.aio import Client
from tls_context import make_ssl_context

DELIVERY_S = 5  # default bound for a message that should arrive


def client(server, port, client_id, tls=None, **kwargs):
    if tls:
        kwargs["ssl"] = make_ssl_context(tls["ca"], tls.get("verify", True))
    return Client(server, port, client_id=client_id, **kwargs)


def record(m):
    return [m.topic, m.payload, m.qos, int(m.retain), int(m.dup)]


def sequence_number(m):
    return int(m.payload)  # a small int: no allocation per message kept


async def within(aw, seconds):
    """True if `aw` completed within `seconds`, False if the bound passed first."""
    try:
        await asyncio.wait_for(aw, seconds)
        return True
    except asyncio.TimeoutError:
        return False


async def take(c, n, seconds=DELIVERY_S, until=None, keep=record):
    """Up to n messages from c as keep(message) (a record by default), within `seconds`; stops
    early after a message whose payload is `until` (a marker published last, so everything
    before it has arrived)."""
    # Allocated whole up front: on MicroPython the client's garbage fragments the heap, and a
    # list grown one message at a time can then fail to find its next contiguous block.
    got = [None] * n
    count = [0]

    async def fill():
        async for m in c.messages:
            got[count[0]] = keep(m)
            count[0] += 1
            if count[0] >= n or (until is not None and m.payload == until):
                return

    if n > 0:
        await within(fill(), seconds)
    del got[count[0]:]
    return got


async def settle(condition, seconds):
    """Wait (bounded) until condition() is true; returns its last value."""
    for _ in range(int(seconds / 0.01) + 1):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def small_send_buffer(c, size):
    """Shrink the send buffer of c's socket to about `size` bytes, as small as a board's (lwIP
    keeps a few KB per connection), so that a stalled link backs the stream up at once. Linux's
    SOL_SOCKET and SO_SNDBUF, which MicroPython's socket module does not name."""
    w = c._writer
    sock = w.s if hasattr(w, "s") else w.get_extra_info("socket")  # MicroPython's Stream, CPython's
    sock.setsockopt(1, 7, size)


async def abort(c):
    """End c's connection as a crash or a dropped link does: no DISCONNECT. Its tasks stop first,
    so it neither reconnects nor notices."""
    for t in c._tasks:
        t.cancel()
    c._tasks = []
    w, c._writer = c._writer, None
    w.close()
    try:
        await w.wait_closed()
    except Exception:
        pass  # closed either way
    await asyncio.sleep(0)


async def close_all(clients):
    for c in clients:
        try:
            await c.disconnect()
        except Exception:
            pass  # a scenario's result is already made; cleanup must not replace it
