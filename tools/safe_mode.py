"""Keeping a board's node off while a host tool holds the board for longer than its watchdog.

The node runs a hardware watchdog (machine.WDT, 8 s: lib/mqnode/node.py) that nothing can stop
once started but a hard reset; a soft reset leaves it running on the ESP32 and the RP2040. A
tool that interrupts the node (Ctrl-C, as every mpremote connection does) and then copies files
for longer than that gets the board reset under it, and the node, booting again, starts its
watchdog again: the next attempt hits the same wall. So before the long part the board goes into
the node's safe mode (a /safemode file: lib/mqnode/app.py then leaves the node off) and is
hard-reset, which stops the watchdog; afterwards the flag goes. A board without /main.py runs no
node, and costs one round trip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mqnode_tools.board_link import BoardLink

FLAG = "/safemode"
# What a tool writes into the flag, so that it removes only its own (also one an interrupted run
# left behind), never one the boot button or a person put there (those are empty).
MARK = b"mqnode: safe mode while a host tool works on the board; removed when it is done\n"
STATE = """\
import os
def _read(p):
    try:
        with open(p, 'rb') as f:
            return f.read(%d)
    except OSError:
        return None
print(repr((_read('/main.py') is not None, _read(%r))))
del _read
""" % (len(MARK), FLAG)


@dataclass
class Hold:
    remove_flag: bool  # the flag is ours: take it away when done


def hold(link: BoardLink, say: Callable[[str], None]) -> Hold:
    """Safe mode and a hard reset if the board has a node that may run (it has /main.py);
    otherwise nothing. Then no node and no watchdog run until release()."""
    has_main, flag = link.eval_output(STATE)
    if not has_main:
        return Hold(remove_flag=False)  # a fresh board: no node, no watchdog
    ours = flag is None or flag == MARK
    if flag is None:
        link.write(FLAG, MARK)
        say("safe mode: wrote %s so the node stays off after a reset" % FLAG)
    elif ours:
        say("safe mode: %s is there from an earlier run that did not finish" % FLAG)
    else:
        say("safe mode: the board has its own %s; it stays there afterwards" % FLAG)
    took = link.hard_reset()
    say("hard reset: the board is back after %.1f s, the node and its watchdog off" % took)
    return Hold(remove_flag=ours)


def release(link: BoardLink, held: Hold, say: Callable[[str], None]) -> None:
    """Take our flag away: the next reset starts the node."""
    if held.remove_flag:
        link.remove([FLAG])
        say("safe mode off: removed %s" % FLAG)


def stuck_note(held: Hold) -> str:
    """What to add to a failure after hold(): where the board was left."""
    if not held.remove_flag:
        return ""
    return " (the board stays in safe mode, the node off: run this again, or delete %s and reset)" % FLAG
