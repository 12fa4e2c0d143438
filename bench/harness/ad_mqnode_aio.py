"""mqnode's asyncio client, `from mqtt.aio import Client`."""
from clients import BIG_PACKET, HOST, KEEPALIVE, MICROPYTHON


class Adapter:
    is_async = True

    def prepare(self):
        pass

    def load(self):
        from mqtt.aio import Client

        self.cls = Client

    def make(self, cid, port, big=False):
        if big:
            return self.cls(HOST, port, client_id=cid, keepalive=KEEPALIVE, max_packet=BIG_PACKET)
        return self.cls(HOST, port, client_id=cid, keepalive=KEEPALIVE)

    async def connect(self, c):
        await c.connect()

    async def disconnect(self, c):
        await c.disconnect()

    def publisher(self, c):
        return c.publish  # publish(topic, payload, qos)

    async def receive(self, c, topic, ms):
        import asyncio

        from clients import ticks_diff, ticks_ms

        await c.subscribe(topic, 0)
        t0 = ticks_ms()
        # Wait in short slices: when the connection task fails (a MemoryError while reading, say),
        # it records last_error and the message will never come.
        while c.last_error is None and ticks_diff(ticks_ms(), t0) < ms:
            try:
                if MICROPYTHON:
                    return (await asyncio.wait_for_ms(c.messages.__anext__(), 50)).payload
                return (await asyncio.wait_for(c.messages.__anext__(), 0.05)).payload
            except asyncio.TimeoutError:
                pass
        return None
