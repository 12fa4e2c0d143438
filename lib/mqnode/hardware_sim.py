"""The simulated board: what `machine` and `network` give a node, for the Unix port and CPython.

It sits exactly where hardware.py sits, so the drivers and the node run unchanged on top of it:
pins that record their level and fire interrupt handlers, an ADC whose temperature channel drifts
plausibly from a seed, 1-Wire, DHT and I2C buses with a part on each (sim_parts.py), WiFi that is
up (unless a wifi_down file in the node's folder says otherwise), RTC memory kept in a file, and
deep sleep or reset that end the process (exit codes below) so a launcher can start it again. A
watchdog only where the interpreter's machine module has one (see watchdog()).

Tests and people drive it through stdin, one command a line: `pin <n> <0|1>` sets an input pin
(a PIR's output, say) and fires its interrupt; `adc <channel> <fail|ok>` makes an ADC channel's
reads fail (OSError, as a sensor that stopped answering) or work again.
"""
import gc
import sys

EXIT_DEEPSLEEP = 77  # the process ended in deep sleep; restart it after the time printed
EXIT_RESET = 78  # machine.reset(): restart it now
CHIP = "sim"

state_dir = "."  # where rtc.bin lives; the node sets it next to its config file
_seed = 1


def configure(seed, directory):
    global _seed, state_dir
    _seed = seed & 0x7FFFFFFF or 1
    state_dir = directory


def _rand():
    """A small LCG, seeded per node: the same node id drifts the same way every run."""
    global _seed
    _seed = (_seed * 1103515245 + 12345) & 0x7FFFFFFF
    return _seed


class Pin:
    IN = 0
    OUT = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    pins = {}  # number -> Pin, for the stdin commands

    def __init__(self, n, mode=0, pull=None, value=None):
        self.n = n
        self.mode = mode
        self._v = 0 if value is None else value
        self._handler = None
        Pin.pins[n] = self

    def value(self, v=None):
        if v is None:
            return self._v
        changed = (1 if v else 0) != self._v
        self._v = 1 if v else 0
        if changed and self._handler:
            self._handler(self)

    def irq(self, handler=None, trigger=3):
        self._handler = handler


class irq_flag:  # named as hardware.irq_flag(), which the drivers call
    """What a pin's interrupt handler sets to wake an asyncio task. Here the handler runs on the
    loop itself (control() applies stdin), so an Event serves. hardware.py's ThreadSafeFlag would
    keep the Unix port's poll() waking every 1 ms while a task waits on it (extmod/modselect.c
    polls an object without a file descriptor that often): about 1% of a core per idle node,
    which left 200 simulated nodes no CPU to spare on 2 cores."""

    def __init__(self):
        import asyncio

        self._event = asyncio.Event()

    def set(self):
        self._event.set()

    async def wait(self):
        await self._event.wait()
        self._event.clear()


class ADC:
    """Channel 4 reads like an RP2040's temperature sensor at 21 degC, drifting +-3 degC."""

    failing = set()  # channels whose reads fail, for the stdin command

    def __init__(self, channel):
        self.channel = channel
        self._t = 21.0 + (_rand() % 200 - 100) / 100

    def read_u16(self):
        if self.channel in ADC.failing:
            raise OSError("adc %d: no reading" % self.channel)
        self._t += ((_rand() % 201) - 100) / 2000  # a random walk of up to 0.05 degC per read
        self._t = min(max(self._t, 18.0), 24.0)
        volts = 0.706 - (self._t - 27) * 0.001721  # the RP2040 datasheet's line, inverted
        return int(volts / 3.3 * 65535)


def __getattr__(name):
    """onewire(), dht(), i2c() and `parts` are in sim_parts, loaded when a board has such a bus
    (the sim board does not, and so does not pay for them)."""
    from . import sim_parts

    return getattr(sim_parts, name)


def unique_id():
    return _seed.to_bytes(4, "big")


_cause = None


def reset_cause():
    """'watchdog' when the interpreter's machine says so (the virtual board's, after its launcher
    reset a boot that stopped feeding), 'deepsleep' when the last run ended in deepsleep() (its
    marker file), else 'power-on'."""
    global _cause
    if _cause is None:
        import os

        try:
            import machine

            if machine.reset_cause() == machine.WDT_RESET:
                _cause = "watchdog"
                return _cause
        except (ImportError, AttributeError):
            pass  # the Unix port's machine and CPython know no reset causes
        try:
            os.remove(state_dir + "/slept")
            _cause = "deepsleep"
        except OSError:
            _cause = "power-on"
    return _cause


def free_mem():
    """After a collection: what the node could still allocate, not what garbage happens to hold."""
    gc.collect()
    return gc.mem_free() if hasattr(gc, "mem_free") else 0


def rtc_memory(data=None):
    """Read (no argument) or replace the RTC memory: a file here, survives 'deep sleep'."""
    path = state_dir + "/rtc.bin"
    if data is None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return b""
    with open(path, "wb") as f:
        f.write(data)


def deepsleep(ms):
    with open(state_dir + "/slept", "w") as f:
        f.write("%d" % ms)  # the next run's reset_cause()
    print("deepsleep %d" % ms)  # the launcher restarts the process after this long
    sys.exit(EXIT_DEEPSLEEP)


def reset():
    sys.exit(EXIT_RESET)


def watchdog(ms):
    """machine.WDT where the running interpreter has one: the virtual board's machine does when
    its launcher models the board's watchdog (tests/virtual_board.py, watchdog_ms), and then a
    node that stops feeding it is reset, as on a board. The Unix port's own machine module and
    CPython have none: `make demo` and the simulated nodes run without one."""
    try:
        from machine import WDT
    except ImportError:
        return None
    return WDT(timeout=ms)


async def wifi_connect(ssid, password, timeout_ms, power_save=True):
    """Up at once, unless <state_dir>/wifi_down exists (see wifi_up), or a test wrote
    <state_dir>/hang_wifi (seconds): then this one call blocks the whole interpreter that long,
    as a WiFi driver call that hangs does on a board."""
    import os
    import time

    if not wifi_up():
        raise OSError("wifi_down: no access point")
    try:
        with open(state_dir + "/hang_wifi") as f:
            seconds = float(f.read())
        os.remove(state_dir + "/hang_wifi")
    except (OSError, ValueError):
        seconds = 0
    if seconds:
        print("wifi_connect: hanging for %d s" % seconds)
        time.sleep(seconds)
    return "127.0.0.1"


def wifi_up():
    """False while <state_dir>/wifi_down exists: the access point is gone, as far as the node
    can tell (the link to the broker on 127.0.0.1 stays up; only the node's WiFi handling runs)."""
    try:
        open(state_dir + "/wifi_down").close()
    except OSError:
        return True
    return False


async def control():
    """Apply stdin commands as they come, polling every 20 ms: the simulated edge may poll;
    nothing under test does. A line it cannot use is reported and skipped: a typo at the
    terminal must not end the task (the node reboots when a task dies)."""
    import asyncio
    import select

    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    while True:
        if poller.poll(0):
            line = sys.stdin.readline()
            if not line:
                return  # stdin closed: no more commands
            words = line.split()
            if words and not _command(words):
                print("sim: ignored %r; the commands are: pin <n> 0|1, adc <channel> fail|ok" % line.strip())
        await asyncio.sleep(0.02)


def _command(words):
    """Apply one stdin command; False if it is not one."""
    if len(words) != 3 or not words[1].isdigit():
        return False
    n = int(words[1])
    if words[0] == "pin" and n in Pin.pins and words[2] in ("0", "1"):
        Pin.pins[n].value(int(words[2]))
    elif words[0] == "adc" and words[2] in ("fail", "ok"):
        (ADC.failing.add if words[2] == "fail" else ADC.failing.discard)(n)
    else:
        return False
    return True
