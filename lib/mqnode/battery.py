"""Battery mode: one wake cycle, then deep sleep. Loaded only when config.json says "battery".

A wake reads the sensors, connects, publishes (readings kept from failed wakes first), takes the
commands queued while asleep, disconnects and deep-sleeps, all within awake_s. While WiFi or the
broker is unreachable, the readings wait in RTC memory and the sleeps grow (2x, 4x, 8x sleep_s).
"""
import asyncio
import json

from mqtt.compat import ticks_add, ticks_diff, ticks_ms
from mqtt.errors import MQTTException

from .node import log

KEPT_READINGS = 16  # readings kept in RTC memory while unreachable ...
RTC_BYTES = 2000  # ... within the ESP32's 2048 bytes of RTC memory, whatever the names' lengths
COLLECT_MS = 300  # how long to wait for commands queued while asleep


async def run(node):
    hw = node.hw
    kept = _load_rtc(hw)
    for w in node.switches:  # back to the state kept over the sleep (the pin itself lost it)
        if w.name in kept["switches"]:
            w.set(kept["switches"][w.name])
    base = len(node.base) + 1
    # Kept by topic below the node (sensor/temperature/state), not the full topic: RTC is small.
    readings = [(t[base:], v) for t, v in await node.read_sensors()]
    try:
        await asyncio.wait_for(_wake(node, kept["readings"] + readings), node.cfg["awake_s"])
        kept["fails"] = 0
        kept["readings"] = []
        sleep_s = node.cfg["sleep_s"]
    except (OSError, MQTTException, asyncio.TimeoutError) as e:
        kept["fails"] = min(kept["fails"] + 1, 3)
        kept["readings"] = (kept["readings"] + readings)[-KEPT_READINGS:]
        log("wake failed (%r); keeping %d readings" % (e, len(kept["readings"])))
        sleep_s = node.cfg["sleep_s"] * (1 << kept["fails"])  # back off while unreachable
    kept["switches"] = {w.name: w.state for w in node.switches}
    data = json.dumps(kept).encode()
    while len(data) > RTC_BYTES and kept["readings"]:
        kept["readings"].pop(0)  # the oldest reading goes first
        data = json.dumps(kept).encode()
    hw.rtc_memory(data)
    hw.deepsleep(sleep_s * 1000)


async def _wake(node, readings):
    await node.join_wifi()
    c = node.client = node.make_client(reconnect=False)
    present = await c.connect()
    try:
        await c.publish(node.status_topic, "online", qos=1, retain=True)
        if not present:
            await c.subscribe(node.base + "/switch/+/set", 1)
            await node.publish_discovery()
        for suffix, payload in readings:
            await c.publish(node.base + "/" + suffix, payload, qos=1, retain=True)
        await node.publish_info()
        # Commands sent while we slept arrive right after CONNACK (persistent session).
        deadline = ticks_add(ticks_ms(), COLLECT_MS)
        while ticks_diff(deadline, ticks_ms()) > 0:
            if c.messages.items:
                m = c.messages.items.pop(0)
                await node.handle(m.topic, m.payload)
            else:
                await asyncio.sleep(0.02)
        for w in node.switches:  # after the commands: the state kept for the next wake
            await node.publish_switch(w)
    finally:
        await c.disconnect()


def _load_rtc(hw):
    try:
        kept = json.loads(hw.rtc_memory() or b"{}")
        return {"fails": int(kept.get("fails", 0)), "readings": [tuple(r) for r in kept.get("readings", [])],
                "switches": dict(kept.get("switches", {}))}
    except (ValueError, TypeError, AttributeError):
        return {"fails": 0, "readings": [], "switches": {}}  # unreadable RTC memory: start afresh
