"""Peter Hinch's mqtt_as, in its callback mode.

On the Unix port it needs `network` and `machine.unique_id`, which stubs/ provide (a WLAN that
is always up). Its connect() runs its WiFi check first, a 1 s sleep even with quick=True: it
does that on a board too, so the wake cycle keeps it.
"""
from clients import HOST, KEEPALIVE, ticks_diff, ticks_ms


class Adapter:
    is_async = True

    def prepare(self):
        # Built into a board's firmware; load the stand-ins before the heap baseline.
        import machine  # noqa: F401
        import network  # noqa: F401

    def load(self):
        import mqtt_as

        self.mod = mqtt_as
        self.got = []

    def make(self, cid, port, big=False):
        cfg = dict(self.mod.config)
        cfg["server"] = HOST
        cfg["port"] = port
        cfg["client_id"] = cid
        cfg["keepalive"] = KEEPALIVE
        cfg["subs_cb"] = lambda topic, msg, retained: self.got.append(msg)
        return self.mod.MQTTClient(cfg)

    async def connect(self, c):
        await c.connect(quick=True)

    async def disconnect(self, c):
        await c.disconnect()

    def publisher(self, c):
        def pub(topic, msg, qos):
            return c.publish(topic, msg, False, qos)  # publish(topic, msg, retain, qos)

        return pub

    async def receive(self, c, topic, ms):
        import asyncio

        await c.subscribe(topic, 0)
        t0 = ticks_ms()
        while not self.got and ticks_diff(ticks_ms(), t0) < ms:
            await asyncio.sleep_ms(1)
        return self.got[0] if self.got else None
