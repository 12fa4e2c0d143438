"""The node: sensors, switches and MQTT, put together the way Home Assistant expects.

Topics, under <prefix>/<node id>:
  status                          online (birth, retained) / offline (last will, retained)
  sensor/<name>/state             each reading as text, every telemetry period (retained);
                                  None once when the sensor stops answering (Home Assistant: unknown)
  binary_sensor/<name>/state      ON / OFF at once on change (retained)
  switch/<name>/set               commands ON, OFF, TOGGLE
  switch/<name>/state             the switch's state after it changed (retained)
  info                            retained JSON: board, versions, IP, free memory, uptime, reset
Two ways to run: run() stays connected (mains power); battery.run(node) does one wake cycle and
deep-sleeps (battery), keeping readings in RTC memory while the broker is unreachable. Each mode
loads only its own code, and the discovery configs are built only while they are published.
"""
import asyncio
import json
import sys

from mqtt.compat import print_exception, release, ticks_diff, ticks_ms
from mqtt.errors import MQTTException

from . import VERSION

WDT_MS = 8000  # the RP2040's watchdog tops out at 8.3 s
# What a publish can raise when the link fails under it (a reset not yet noticed, a drain that
# timed out, a message store that cannot be written): the message stays in the session, to go
# after the reconnect, and the task goes on. MicroPython's asyncio.TimeoutError is no OSError.
LINK_ERRORS = (OSError, MQTTException, asyncio.TimeoutError)


def log(*args):
    print("mqnode:", *args)


class Node:
    def __init__(self, cfg, board_name, node_id, hw):
        """The sensors and switches are made and added by the boot code (app.py), from the board file."""
        self.cfg = cfg
        self.hw = hw
        self.board_name = board_name
        self.node_id = node_id
        self.base = cfg["prefix"] + "/" + node_id
        self.status_topic = self.base + "/status"
        self.discovery_prefix = cfg["discovery_prefix"]
        self.sensors = []
        self.binaries = []
        self.switches = []
        self.stats = {"readings": 0, "sensor_errors": 0, "commands": 0, "bad_commands": 0}
        self.ip = None
        self.client = None  # the MQTT client, given by the boot code (app.py)
        self._up_s = 0  # uptime in whole seconds; a count of ms would leave MicroPython's small
        self._up_ms = 0  # ints (2**30 on a board) after 12.4 days: the rest, below 1000
        self._up_at = ticks_ms()
        self._down_since = ticks_ms()
        self._beat = None  # when the telemetry loop last went round; None until it starts
        self._joining = False
        self._subscribed = False
        self._failing = []  # sensors whose last read failed: their None is published already

    def topic(self, component, obj, leaf):
        return "%s/%s/%s/%s" % (self.base, component, obj, leaf)

    # --- always on -------------------------------------------------------------------------------

    async def run(self):
        asyncio.get_event_loop().set_exception_handler(self._crashed)
        asyncio.create_task(self.hw.control())
        asyncio.create_task(self._health())
        await self.join_wifi()
        c = self.client
        c.on_oversized = self._oversized
        delay = 1
        while True:
            try:
                await c.connect()
                break
            except Exception as e:  # also what ssl raises for a broker its CA did not sign: ValueError
                # on MicroPython; the client's own reconnect loop takes everything in the same way
                log("broker %s:%d: %r; retrying in %d s" % (self.cfg["broker.host"], self.cfg["broker.port"], e, delay))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        asyncio.create_task(self._announcer())
        asyncio.create_task(self._commands())
        for b in self.binaries:  # loops, not comprehensions: each of those is one more function in RAM
            asyncio.create_task(self._motion(b))
        await asyncio.sleep(0)  # the announcer sends the birth before the first reading goes
        await self._telemetry()  # in this task: one task (and gather's bookkeeping) less

    def _oversized(self, topic, size):
        """A command too large for the client: acknowledged and dropped by it, reported here."""
        self.stats["bad_commands"] += 1
        log("ignored a %d-byte message on %s: above the client's max_packet" % (size, topic.decode()))

    def _crashed(self, loop, context):
        """A task died of an error nobody handles: a node missing one of its jobs (commands,
        motion) would look healthy and be broken, so it reboots, as ESPHome does."""
        e = context.get("exception")
        log("task failed: %r; rebooting" % (e,))
        if e is not None:
            print_exception(e)
        self.hw.reset()

    async def join_wifi(self):
        self._joining = True  # (wifi.ssid is required on every board but the simulated one, which joins anyway)
        delay = 1
        while True:
            try:
                self.ip = await self.hw.wifi_connect(
                    self.cfg["wifi.ssid"], self.cfg["wifi_password"], 15000, self.cfg["battery"])
                self._joining = False
                return
            except OSError as e:
                log(e, "; retrying in %d s" % delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)

    async def _announcer(self):
        """On every (re)connect: birth, discovery, states and info, so a restarted broker (or
        Home Assistant) learns everything again."""
        c = self.client
        while True:
            await c.connected.wait()
            n = c.reconnects
            try:
                await self.announce()
            except LINK_ERRORS as e:
                log("announce failed:", repr(e))
            if c.reconnects == n:
                await c.disconnected.wait()
            # else the link dropped and came back while announcing (its publishes waited and were
            # resent): the new connection gets its own announcement.

    async def announce(self):
        c = self.client
        await c.publish(self.status_topic, "online", qos=1, retain=True)
        await self.publish_discovery()
        for w in self.switches:
            await self.publish_switch(w)
        for b in self.binaries:
            await c.publish(self.topic("binary_sensor", b.name, "state"), "ON" if b.value() else "OFF", qos=1, retain=True)
        if not self._subscribed:
            # The session (clean_session=False) keeps these across reconnects and restores them.
            # After discovery and the states, so that a subscription the broker refuses (an access
            # rule: EMQX and HiveMQ answer 0x80) ends the announcement with those sent (_announcer
            # logs it); before info, which tells watchers the node takes commands now.
            await c.subscribe(self.base + "/switch/+/set", 1)
            if self.cfg["discovery"]:
                await c.subscribe(self.discovery_prefix + "/status", 0)
            self._subscribed = True
        await self.publish_info()

    async def publish_discovery(self):
        """True when the broker acknowledged every config (or discovery is off)."""
        done = True
        if self.cfg["discovery"]:
            # Needed after a (re)connect only: loaded for the announcement, then released.
            from . import discovery

            try:
                for topic, payload in discovery.configs(self):
                    done = await self.client.publish(topic, payload, qos=1, retain=True) and done
            finally:
                del discovery
                release("mqnode.discovery")
        return done

    async def publish_info(self):
        impl = sys.implementation
        info = {
            "board": self.board_name, "firmware": VERSION,
            "micropython": "%d.%d.%d" % impl.version[:3] if impl.name == "micropython" else None,
            "ip": self.ip, "free_mem": self.hw.free_mem(),
            "uptime_s": self._up_s + (self._up_ms + ticks_diff(ticks_ms(), self._up_at)) // 1000,
            "reset_cause": self.hw.reset_cause(), "stats": self.stats,
        }
        await self.client.publish(self.base + "/info", json.dumps(info), qos=1, retain=True)

    async def _telemetry(self):
        n = 0
        while True:
            self._beat = ticks_ms()
            try:
                for topic, payload in await self.read_sensors():
                    await self.client.publish(topic, payload, qos=1, retain=True)
                n += 1
                if n % 10 == 0:
                    await self.publish_info()
            except LINK_ERRORS as e:
                log("telemetry:", repr(e))
            await asyncio.sleep(self.cfg["telemetry_s"])

    async def read_sensors(self):
        """(topic, text) per field; a sensor that fails is counted, logged and retried next time
        without holding up the others. When it stops answering, its fields say "None" once: Home
        Assistant's MQTT sensor then shows the value as unknown rather than the last reading."""
        out = []
        for s in self.sensors:
            try:
                values = await s.read()
            except Exception as e:  # OSError from the bus; anything else from a driver must not stop the node
                self.stats["sensor_errors"] += 1
                log("sensor %s: %s" % (s.fields[0][0], e))
                if s not in self._failing:
                    self._failing.append(s)
                    for obj, _, _ in s.fields:
                        out.append((self.topic("sensor", obj, "state"), "None"))
                continue
            if s in self._failing:
                self._failing.remove(s)
            for (obj, _, _), v in zip(s.fields, values):
                out.append((self.topic("sensor", obj, "state"), "%.2f" % v))
                self.stats["readings"] += 1
        return out

    async def _motion(self, b):
        topic = self.topic("binary_sensor", b.name, "state")
        while True:
            v = await b.changed()
            try:
                await self.client.publish(topic, "ON" if v else "OFF", qos=1, retain=True)
            except LINK_ERRORS as e:
                log("motion:", repr(e))

    async def _commands(self):
        async for msg in self.client.messages:
            try:
                await self.handle(msg.topic, msg.payload, msg.retain)
            except LINK_ERRORS as e:  # the switch did change; its state goes after the reconnect
                log("command:", repr(e))

    async def handle(self, topic, payload, retain=False):
        """A command or a Home Assistant status message; anything wrong is logged and counted.
        A retained TOGGLE is one: the broker hands it out again at every subscription, and the
        relay would flip at each boot (a retained ON or OFF sets the same state again)."""
        try:
            topic = topic.decode()
            text = payload.decode().strip().upper()
        except UnicodeError:
            topic, text = repr(topic), None
        if topic == self.discovery_prefix + "/status":
            if text == "ONLINE":
                await self.publish_discovery()  # Home Assistant restarted and forgot the entities
            return
        prefix = self.base + "/switch/"
        name = topic[len(prefix) : -4] if topic.startswith(prefix) and topic.endswith("/set") else None
        switch = None
        for w in self.switches:
            if w.name == name:
                switch = w
        if switch is None or text not in ("ON", "OFF", "TOGGLE") or retain and text == "TOGGLE":
            self.stats["bad_commands"] += 1
            log("ignored %scommand %r on %s" % ("retained " if retain else "", payload[:32], topic))
            return
        self.stats["commands"] += 1
        switch.set(not switch.state if text == "TOGGLE" else text == "ON")
        await self.publish_switch(switch)

    async def publish_switch(self, w):
        await self.client.publish(self.topic("switch", w.name, "state"), "ON" if w.state else "OFF", qos=1, retain=True)

    async def _health(self):
        """Feed the watchdog only while healthy: the event loop runs (this task) and, while
        connected, the telemetry loop goes round (a publish it awaits forever, a broker that answers
        pings and confirms nothing, would leave the node up and mute); reboot after reboot_after_s
        without a broker."""
        hw = self.hw
        wdt = hw.watchdog(WDT_MS)
        limit = self.cfg["reboot_after_s"] * 1000
        stuck = int(3 * self.cfg["telemetry_s"] * 1000) + WDT_MS  # three periods, and some
        while True:
            now = ticks_ms()
            # Uptime in steps, each well under the 2**29 ms one ticks_diff() spans on a board:
            # as one difference from boot it would turn negative after 6.2 days.
            ms = self._up_ms + ticks_diff(now, self._up_at)
            self._up_s += ms // 1000
            self._up_ms = ms % 1000
            self._up_at = now
            c = self.client
            if c is not None and c.connected.is_set():
                self._down_since = now
            else:
                if self._beat is not None:
                    # Without a broker telemetry waits for its PUBACK, as it should: an outage is
                    # reboot_after_s's business, and the stuck time counts from the reconnect.
                    self._beat = now
                if ticks_diff(now, self._down_since) > limit:
                    log("no broker for %d s: rebooting" % (limit // 1000))
                    hw.reset()
            if self.cfg["wifi.ssid"] and not self._joining and not hw.wifi_up():
                asyncio.create_task(self.join_wifi())
            if wdt:
                if self._beat is None or ticks_diff(now, self._beat) < stuck:
                    wdt.feed()
                else:
                    log("telemetry stuck for %d s: the watchdog will reset the board" % (ticks_diff(now, self._beat) // 1000))
            await asyncio.sleep(1)
