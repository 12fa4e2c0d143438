"""Not a client: asyncio's own floor on CPython, the reference column beside mqnode.aio.

The least a publisher can do on asyncio's event loop: a Protocol whose data_received resolves the
waiting publish's future directly (no stream, no reader task), packets built by hand, no checks,
no session, no keepalive, no reconnect. Only CONNACK and PUBACK ever come back (it subscribes to
nothing and never pings), both 4 bytes. It was meant as a bound no asyncio client could beat, to
show how far the "3x paho" target is within asyncio's reach; mqnode.aio has since beaten it
(bench/results.md), so it is a reference. CPython only: MicroPython's asyncio has no Protocol.
"""
import asyncio

from clients import HOST, KEEPALIVE


def _length(n):
    """MQTT's remaining-length varint."""
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _string(b):
    return len(b).to_bytes(2, "big") + b


class _Link(asyncio.Protocol):
    def __init__(self):
        self.waiting = {}  # packet id (0: the CONNACK) -> future
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data
        while len(buf) >= 4:
            key = 0 if buf[0] >> 4 == 2 else buf[2] << 8 | buf[3]
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(True)
            buf = buf[4:]
        self.buf = buf


class _Session:
    def __init__(self, cid, port):
        self.cid = cid.encode()
        self.port = port
        self.pid = 0
        self.loop = self.transport = self.link = None

    async def connect(self):
        self.loop = asyncio.get_running_loop()
        self.transport, self.link = await self.loop.create_connection(_Link, HOST, self.port)
        body = _string(b"MQTT") + bytes([4, 2]) + KEEPALIVE.to_bytes(2, "big") + _string(self.cid)
        done = self.link.waiting[0] = self.loop.create_future()
        self.transport.write(b"\x10" + _length(len(body)) + body)
        await done

    def publish(self, topic, msg, qos):
        """A future: done at once for QoS 0, at the PUBACK for QoS 1."""
        if isinstance(topic, str):
            topic = topic.encode()
        done = self.loop.create_future()
        if qos:
            self.pid = self.pid % 65535 + 1
            self.link.waiting[self.pid] = done
            body = _string(topic) + self.pid.to_bytes(2, "big") + msg
        else:
            done.set_result(True)
            body = _string(topic) + msg
        self.transport.write(bytes([0x30 | qos << 1]) + _length(len(body)) + body)
        return done

    async def disconnect(self):
        self.transport.write(b"\xe0\x00")
        self.transport.close()


class Adapter:
    is_async = True

    def prepare(self):
        pass

    def load(self):
        pass

    def make(self, cid, port, big=False):
        return _Session(cid, port)

    async def connect(self, c):
        await c.connect()

    async def disconnect(self, c):
        await c.disconnect()

    def publisher(self, c):
        return c.publish
