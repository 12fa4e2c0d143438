# The virtual board's `machine`: what mpremote and the firmware ask of it that the Unix port's own
# machine module lacks. repl.py imports it before it remounts "/", so it stays in sys.modules and
# every later `import machine` (mpremote's `reset`, boot.py) gets it. Pin only when the launcher
# was given a pin file (VB_PINS); otherwise the board has no GPIO, and boot.py's safe-mode check
# takes its "no machine.Pin" branch, as on the Unix port.
import os
import sys

# Exit codes the launcher (tests/virtual_board.py) reads as "start the board again, because ...";
# 77 and 78 are the same numbers lib/mqnode/hardware_sim.py uses.
EXIT_DEEPSLEEP = 77
EXIT_RESET = 78

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_cause = PWRON_RESET  # set by repl.py from how the launcher started this boot
_uid = b"\x00\x00\x00\x01"


def reset():
    sys.exit(EXIT_RESET)


def soft_reset():
    # repl.py turns any other SystemExit into a soft reset, as a board's pyexec does
    sys.exit(0)


def deepsleep(ms=0):
    print("deepsleep %d" % ms)
    sys.exit(EXIT_DEEPSLEEP)


def bootloader(*args):
    raise OSError("the virtual board has no bootloader")


def reset_cause():
    return _cause


def unique_id():
    return _uid


def freq(*args):
    return 240000000


def idle():
    pass


_WATCHDOG_MS = int(os.getenv("VB_WATCHDOG_MS") or 0)
if _WATCHDOG_MS:

    class WDT:
        """A board's hardware watchdog, there only when the launcher was given one (its
        watchdog_ms). The launcher keeps the time, as a board's watchdog is outside its CPU: it
        resets the board when a feed is late, whatever runs or hangs here, and a soft reset (a
        new process here) leaves it running, as on the ESP32 and RP2040; only a hard reset stops
        it. A longer timeout is cut to VB_WATCHDOG_MS so tests need not wait 8 s."""

        def __init__(self, id=0, timeout=5000):
            sys.stderr.write("vb:wdt %d\n" % min(timeout, _WATCHDOG_MS))

        def feed(self):
            sys.stderr.write("vb:feed\n")


_PINS = os.getenv("VB_PINS")
if _PINS:
    _pin_file = open(_PINS)  # opened now: once repl.py mounts the board's "/", host paths are gone

    class Pin:
        """Input pins whose levels the test sets, as a finger on a button does: VB_PINS names a
        file of "<pin> <level>" lines, read at every value(); a pin not listed is high (pulled up)."""

        IN = 1
        PULL_UP = 1

        def __init__(self, id, mode=-1, pull=-1):
            self.id = str(id)

        def value(self):
            _pin_file.seek(0)
            for line in _pin_file.read().splitlines():
                words = line.split()
                if len(words) == 2 and words[0] == self.id:
                    return int(words[1])
            return 1
