"""The same few calls over every client the benchmark compares, for MicroPython and CPython.

The harness (measure.py, probe.py) only talks to adapters: one small module per client
(ad_mqnode.py, ad_umqtt_simple.py, ...), so a run under a 64 KiB heap carries one adapter, not
all of them. An adapter imports its client in load() and nowhere else, so the harness can weigh
the import on its own. In the timed loops the harness calls the client's own publish directly:
blocking clients all share umqtt.simple's publish(topic, msg, retain, qos); an async adapter's
publisher(c) gives f(topic, msg, qos) returning the client's own coroutine (a plain function, so
it adds no allocation per call).

Runs on boards' rules (MicroPython Unix port): no f-strings, no typing.
"""
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
HOST = "127.0.0.1"  # the benchmark talks to its own mosquitto on loopback, nothing else
KEEPALIVE = 60
BIG_PACKET = 1 << 20  # mqnode's max_packet in the payload probe (its default refuses > 16 KiB)

if MICROPYTHON:
    from time import sleep_ms, ticks_diff, ticks_ms, ticks_us
else:
    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_ms():
        return time.perf_counter_ns() // 1000000

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(ms):
        time.sleep(ms / 1000)


class Blocking:
    """What the umqtt.simple-style clients share; an adapter adds load() and make()."""

    is_async = False

    def prepare(self):
        pass

    def connect(self, c):
        c.connect()

    def disconnect(self, c):
        c.disconnect()

    def sent(self, c):
        """A function that returns once every message published on c has reached the socket:
        these clients write in publish() itself, so there is nothing to wait for."""
        return _nothing

    def receive(self, c, topic, ms):
        """Subscribe to topic and wait up to ms for one message; its payload, or None."""
        got = []
        c.set_callback(lambda t, m: got.append(m))
        c.subscribe(topic, 0)
        t0 = ticks_ms()
        while not got and ticks_diff(ticks_ms(), t0) < ms:
            c.check_msg()
            if not got:
                sleep_ms(1)
        return got[0] if got else None


def _nothing():
    pass


def adapter(name):
    """The adapter for a client name: mqnode, mqnode.aio, umqtt.simple, umqtt.robust, mqtt_as, paho."""
    return __import__("ad_" + name.replace(".", "_")).Adapter()
