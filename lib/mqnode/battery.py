"""Battery mode: one wake cycle, then deep sleep. Loaded only when config.json says "battery".

A wake reads the sensors, connects, publishes (readings kept from failed wakes first), takes the
commands queued while asleep, disconnects and deep-sleeps, all within awake_s. While WiFi or the
broker is unreachable, the readings wait in RTC memory and the sleeps grow (2x, 4x, 8x sleep_s).

RTC memory is written ahead: before the connect it already holds this wake's readings and the
backoff of a failed wake, and each reading leaves it once its PUBACK is in. A reset at any point
of the wake (the watchdog's, a brown-out) loses no reading and repeats only unacknowledged ones.

The budget is hard on the ESP32: wait_for cannot end a wake whose event loop is blocked (a
blocking getaddrinfo inside open_connection, a WiFi call that hangs), so the hardware watchdog
backs it up, fed only while the wake is within awake_s (_feed).
"""
import asyncio
import json

from mqtt.compat import ticks_add, ticks_diff, ticks_ms
from mqtt.errors import SubscribeRefused

from .node import log

KEPT_READINGS = 16  # readings kept in RTC memory while unreachable ...
RTC_BYTES = 2000  # ... within the ESP32's 2048 bytes of RTC memory, whatever the names' lengths
COLLECT_MS = 300  # how long to wait for commands queued while asleep
# A blocked event loop, or a wake past awake_s, is reset this long after the last feed. Calls
# that block the loop for seconds on an ESP32 and still succeed (a TLS handshake, a slow DNS
# answer in getaddrinfo) must fit; a hung wake then ends within awake_s + 10 s.
WAKE_WDT_MS = 10000
FEED_MS = 1000


async def run(node):
    hw = node.hw
    start = ticks_ms()
    if hw.reset_cause() == "watchdog":  # the last wake hung: its readings are kept, the sleep first
        kept = _load_rtc(hw)
        log("the last wake was reset by the watchdog; keeping %d readings" % len(kept["readings"]))
        hw.deepsleep(node.cfg["sleep_s"] * (1 << kept["fails"]) * 1000)
    # Not on the RP2040: its watchdog cannot be stopped and keeps counting through the light
    # sleep that rp2's deepsleep() is (ports/rp2/modmachine.c, mp_machine_lightsleep: only
    # RP2350 needed the watchdog's clock enabled, micropython 434b9da), so at 8.4 s at most
    # (ports/rp2/machine_wdt.c, WDT_TIMEOUT_MAX) it would end every sleep; before that commit
    # (MicroPython 1.29) a timeout in light sleep even hangs the chip at power-on
    # (micropython#17228). The ESP32's deep sleep powers the task watchdog down
    # (ports/esp32/modmachine.c, esp_deep_sleep_start) and the wake is a fresh boot.
    wdt = hw.watchdog(WAKE_WDT_MS) if hw.CHIP != "rp2040" else None
    if wdt:
        asyncio.create_task(_feed(wdt, start, node.cfg["awake_s"] * 1000))
    kept = _load_rtc(hw)
    for w in node.switches:  # back to the state kept over the sleep (the pin itself lost it)
        if w.name in kept["switches"]:
            w.set(kept["switches"][w.name])
    base = len(node.base) + 1
    # Kept by topic below the node (sensor/temperature/state), not the full topic: RTC is small.
    _add_readings(kept["readings"], [(t[base:], v) for t, v in await node.read_sensors()])
    kept["fails"] = min(kept["fails"] + 1, 3)  # what the next wake finds if this one ends in a reset
    _save(node, kept)
    try:
        await asyncio.wait_for(_wake(node, kept), node.cfg["awake_s"])
        kept["fails"] = 0
        sleep_s = node.cfg["sleep_s"]
    except Exception as e:  # whatever it was, a battery node sleeps rather than stay awake at the REPL
        log("wake failed (%r); keeping %d readings" % (e, len(kept["readings"])))
        sleep_s = node.cfg["sleep_s"] * (1 << kept["fails"])  # back off while unreachable
        try:
            await _obey(node)  # offline now: the switch is set, its state goes out next wake
        except Exception as e:
            log("command after a failed wake: %r" % e)
    _save(node, kept)
    hw.deepsleep(sleep_s * 1000)


def _add_readings(readings, fresh):
    """Append this wake's readings. A sensor's "None" (it did not answer) stays only until its
    next value or None: an outage with a dead sensor must not fill RTC memory with Nones in place
    of readings."""
    for t, _ in fresh:
        for r in readings[:]:
            if r[0] == t and r[1] == "None":
                readings.remove(r)
    readings += fresh


async def _feed(wdt, start, budget_ms):
    while ticks_diff(ticks_ms(), start) < budget_ms:
        wdt.feed()
        await asyncio.sleep_ms(FEED_MS)


def _save(node, kept):
    del kept["readings"][:-KEPT_READINGS]
    kept["switches"] = {w.name: w.state for w in node.switches}
    data = json.dumps(kept).encode()
    while len(data) > RTC_BYTES and kept["readings"]:
        kept["readings"].pop(0)  # the oldest reading goes first
        data = json.dumps(kept).encode()
    node.hw.rtc_memory(data)


async def _wake(node, kept):
    await node.join_wifi()
    c = node.client
    present = await c.connect()
    try:
        await c.publish(node.status_topic, "online", qos=1, retain=True)
        # The broker keeps the session from the first wake's CONNACK on: one that ended before its
        # subscription and discovery had gone would leave the node without them for good.
        mark = _mark(node)
        if not present or kept["announced"] != mark:
            try:
                await c.subscribe(node.base + "/switch/+/set", 1)
            except SubscribeRefused as e:  # the broker's access rules: asking again will not help
                log("subscribe: %r" % e)
            # 0 when one config went unacknowledged: announced again at the next wake
            kept["announced"] = mark if await node.publish_discovery() else 0
            _save(node, kept)
        readings = kept["readings"]  # the same list as _save's (it trims it in place)
        while readings:
            if not await c.publish(node.base + "/" + readings[0][0], readings[0][1], qos=1, retain=True):
                raise OSError("the broker did not acknowledge a reading")  # the link dropped: keep it
            readings.pop(0)  # acknowledged: a reset from here on does not send it again
            _save(node, kept)
        await node.publish_info()
        # Commands sent while we slept arrive right after CONNACK (persistent session).
        deadline = ticks_add(ticks_ms(), COLLECT_MS)
        while ticks_diff(deadline, ticks_ms()) > 0:
            await _obey(node)
            await asyncio.sleep(0.02)
        for w in node.switches:  # after the commands: the state kept for the next wake
            await node.publish_switch(w)
        # No await between this and disconnect(): nothing is taken in after the queue is empty.
        await _obey(node)
    finally:
        await c.disconnect()


def _mark(node):
    """What the subscription and discovery cover, as one number kept in RTC memory. The broker
    keeps a battery node's session, so a wake announces only when this differs from the last
    announcement's: after a change of prefix, discovery settings, sleep (the configs' expiry),
    firmware version or board parts, which RTC memory outlives (a reset, a reflash on the Pico W)."""
    from binascii import crc32

    from . import VERSION

    cfg = node.cfg
    text = "%s|%s|%s|%s|%s|%s" % (node.base, node.discovery_prefix, cfg["discovery"], VERSION, cfg["sleep_s"], cfg["awake_s"])
    for s in node.sensors:
        for f in s.fields:
            text += "|" + f[0]
    for w in node.switches:
        text += "|" + w.name
    return crc32(text.encode()) or 1  # never 0, which means "not announced"


async def _obey(node):
    """Handle the commands the client has taken in. Each was acknowledged as it arrived, so the
    broker will not send it again: one left in the queue at the disconnect would be lost."""
    items = node.client.messages.items
    while items:
        m = items.pop(0)
        await node.handle(m.topic, m.payload, m.retain)


def _load_rtc(hw):
    try:
        kept = json.loads(hw.rtc_memory() or b"{}")
        mark = kept.get("announced")
        return {"fails": min(max(int(kept.get("fails", 0)), 0), 3), "announced": mark if type(mark) is int else 0,
                # only (topic below the node, text) pairs: anything else was not written by _save
                "readings": [list(r) for r in kept.get("readings", [])
                             if isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and isinstance(r[1], str)],
                "switches": dict(kept.get("switches", {}))}
    except (ValueError, TypeError, AttributeError):
        return {"fails": 0, "announced": 0, "readings": [], "switches": {}}  # unreadable: start afresh
