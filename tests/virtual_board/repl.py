# The virtual board's firmware side: the REPL a MicroPython board runs on its USB serial port,
# written in MicroPython for the Unix port. tests/virtual_board.py starts it as
#     micropython repl.py ROOT CAUSE
# with stdin/stdout relayed to a pseudo-terminal that mpremote opens. ROOT (a temp folder) is
# mounted as the board's "/"; CAUSE says why this boot happened (power, hard, deepsleep, watchdog,
# soft-friendly, soft-raw).
#
# It follows MicroPython's shared/runtime/pyexec.c byte for byte where mpremote looks: the raw
# REPL (Ctrl-A, "OK", output, 0x04, error, 0x04, ">"), raw-paste mode (Ctrl-E A Ctrl-A, the
# window size and 0x01 flow control), Ctrl-B back to the friendly REPL, Ctrl-D for a soft reset
# ("MPY: soft reboot"), and boot.py then main.py (main.py only when the board restarts into the
# friendly REPL, as the ports' main.c do).
#
# A soft or hard reset ends this process with an exit code the launcher reads, and the launcher
# starts a fresh one: a new heap, closed sockets and forgotten modules, which is what a reset
# means on a board. Ctrl-C reaches running code as SIGINT (the launcher turns the byte into the
# signal), so it interrupts main.py or an exec the way a board's UART interrupt does.
import os
import sys

import machine  # the stub next to this file, imported while this folder is still on the path

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
RAW, FRIENDLY = "raw", "friendly"
# pyexec.c: the window is half of MICROPY_REPL_STDIN_BUFFER_MAX (256 by default)
PASTE_WINDOW = 128
EXIT_SOFT_FRIENDLY = 79  # soft reset, back to the friendly REPL: boot.py and main.py run
EXIT_SOFT_RAW = 80  # soft reset from the raw REPL: boot.py runs, main.py does not
HARD_EXITS = (machine.EXIT_DEEPSLEEP, machine.EXIT_RESET)
CAUSES = {
    "power": machine.PWRON_RESET,
    "hard": machine.HARD_RESET,
    "deepsleep": machine.DEEPSLEEP_RESET,
    "watchdog": machine.WDT_RESET,
    "soft-friendly": machine.SOFT_RESET,
    "soft-raw": machine.SOFT_RESET,
}
MACHINE = "virtual board (Unix port) with " + sys.platform

_in = sys.stdin.buffer
_out = sys.stdout.buffer
_os = os
g = {"__name__": "__main__"}  # the board's __main__: every exec and boot.py/main.py share it


class _SoftReset(Exception):
    pass


def tx(data):
    _out.write(data)


def say(text):
    _out.write(text.encode())


def note(word):
    # stderr is the launcher's control channel, not part of the board's serial output
    sys.stderr.write("vb:" + word + "\n")


def rx():
    """One byte from the host; Ctrl-C that arrived as SIGINT comes back as CTRL_C."""
    try:
        b = _in.read(1)
    except KeyboardInterrupt:
        note("intr")
        return CTRL_C
    if not b:
        raise EOFError  # the launcher closed the line: power off
    return b[0]


def version_text():
    v = sys.implementation.version
    return "v%d.%d.%d%s" % (v[0], v[1], v[2], "-" + v[3] if len(v) > 3 and v[3] else "")


def banner():
    say("MicroPython %s; %s\r\nType \"help()\" for more information.\r\n" % (version_text(), MACHINE))


# --- what a board's modules look like -----------------------------------------------------------


class _Uname:
    sysname = "virtual"
    nodename = "virtual"
    machine = MACHINE

    def __init__(self):
        self.release = version_text()[1:]
        self.version = sys.version


class BoardOs:
    """os as a board has it: ilistdir yields (name, type, inode, size), so `mpremote fs ls`
    shows sizes (the Unix port's yields no size), and uname() exists."""

    def __getattr__(self, name):
        return getattr(_os, name)

    def ilistdir(self, path=""):
        base = (path or ".").rstrip("/") + "/"
        for entry in _os.ilistdir(path) if path else _os.ilistdir():
            size = 0
            if entry[1] == 0x8000:
                try:
                    size = _os.stat(base + entry[0])[6]
                except OSError:
                    pass
            yield (entry[0], entry[1], entry[2], size)

    def uname(self):
        return _Uname()


class _Implementation:
    pass


class LyingSys:
    """sys with sys.implementation._mpy replaced: a board of another MicroPython release, for the
    tests of `mqnode deploy`'s .mpy version check (VB_FAKE_MPY)."""

    def __init__(self, mpy):
        impl = _Implementation()
        for name in ("name", "version", "_machine", "_build"):
            setattr(impl, name, getattr(sys.implementation, name, None))
        impl._mpy = mpy
        self.implementation = impl

    def __getattr__(self, name):
        return getattr(sys, name)


def install_modules():
    """User code's `import os` / `import sys` find these in sys.modules before the built-ins."""
    sys.modules["os"] = BoardOs()
    fake = _os.getenv("VB_FAKE_MPY")
    if fake:
        sys.modules["sys"] = LyingSys(int(fake, 0))


def mount(root):
    _os.umount("/")
    _os.mount(_os.VfsPosix(root), "/")
    _os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]  # a board's path: frozen modules, then /lib
    sys.argv.clear()  # a board has no arguments; firmware/main.py tells simulation from them


# --- running code -------------------------------------------------------------------------------


def run_code(source, name, kind, eofs):
    """Compile and run in __main__, printing what went wrong as a board does; with `eofs`, the
    raw REPL's 0x04 after the output and after the error text."""
    try:
        exec(compile(source, name, kind), g)
    except SystemExit as e:
        code = e.args[0] if e.args else None
        if code in HARD_EXITS:
            raise  # machine.reset() or deep sleep: the process ends, the launcher restarts it
        if eofs:
            tx(b"\x04\x04")
        raise _SoftReset(None)  # pyexec: sys.exit() in user code is a soft reset, same REPL mode
    except BaseException as e:
        if eofs:
            tx(b"\x04")
        sys.print_exception(e, sys.stdout)
        if isinstance(e, KeyboardInterrupt):
            note("intr")
        if eofs:
            tx(b"\x04")
        return
    if eofs:
        tx(b"\x04\x04")


def run_file(name):
    try:
        with open(name) as f:
            source = f.read()
    except OSError:
        return  # no file is the same as an empty one
    run_code(source, name, "exec", False)


def raw_paste(command):
    if command != ord("A"):
        tx(b"R\x00")  # an unknown raw-paste command
        return
    tx(b"R\x01" + bytes((PASTE_WINDOW & 0xFF, PASTE_WINDOW >> 8, 1)))
    source = bytearray()
    remain = PASTE_WINDOW
    while True:
        c = rx()
        if c == CTRL_C or c == CTRL_D:
            tx(b"\x04")  # the end of the data, acknowledged
            if c == CTRL_C:
                tx(b"\x04")
                say("KeyboardInterrupt: \r\n")
                tx(b"\x04")
                return
            break
        source.append(c)
        remain -= 1
        if remain == 0:
            tx(b"\x01")  # room for another window
            remain = PASTE_WINDOW
    run_code(bytes(source), "<stdin>", "exec", True)


def raw_repl():
    """Until Ctrl-B (returns FRIENDLY) or Ctrl-D on an empty command (a soft reset)."""
    say("raw REPL; CTRL-B to exit\r\n")
    while True:
        say(">")
        line = bytearray()
        while True:
            c = rx()
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E:
                    raw_paste(line[1])
                else:
                    say("raw REPL; CTRL-B to exit\r\n")
                break
            if c == CTRL_B:
                say("\r\n")
                return FRIENDLY
            if c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                say("OK")
                if not line:
                    say("\r\n")
                    raise _SoftReset(RAW)
                run_code(bytes(line), "<stdin>", "exec", True)
                break
            else:
                line.append(c)


def readline(prompt):
    """(control, line): control is 0 for Enter, else the Ctrl key that ended the line."""
    say(prompt)
    line = bytearray()
    while True:
        c = rx()
        if CTRL_A <= c <= CTRL_E and not line or c == CTRL_C:
            return c, line
        if c == 13:
            say("\r\n")
            return 0, line
        if c in (8, 127):
            if line:
                line = line[:-1]
                say("\b \b")
        elif c >= 32:
            line.append(c)
            tx(bytes((c,)))


def needs_more(text):
    """A rough mp_repl_continue_with_input: open brackets or strings, a block being entered."""
    if text.count('"""') % 2 or text.count("'''") % 2:
        return True
    if sum(text.count(o) for o in "([{") > sum(text.count(c) for c in ")]}"):
        return True
    last = text.split("\n")[-1]
    if last.rstrip().endswith(":") or last.endswith("\\"):
        return True
    return "\n" in text and last[:1] in (" ", "\t")


def paste_mode():
    say("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    source = bytearray()
    while True:
        c = rx()
        if c == CTRL_C:
            say("\r\n")
            return
        if c == CTRL_D:
            say("\r\n")
            break
        source.append(c)
        if c == 13:
            say("\r\n=== ")
        else:
            tx(bytes((c,)))
    run_code(bytes(source), "<stdin>", "exec", False)


def friendly_repl():
    """Until Ctrl-A (returns RAW) or Ctrl-D on an empty line (a soft reset)."""
    banner()
    while True:
        c, line = readline(">>> ")
        if c == CTRL_A:
            say("\r\n")
            return RAW
        if c == CTRL_B:
            say("\r\n")
            banner()
        elif c == CTRL_C:
            say("\r\n")
        elif c == CTRL_D:
            say("\r\n")
            raise _SoftReset(FRIENDLY)
        elif c == CTRL_E:
            paste_mode()
        elif line:
            text = line.decode()
            while text is not None and needs_more(text):
                c, more = readline("... ")
                if c == CTRL_C:
                    say("\r\n")
                    text = None
                elif c == CTRL_D or not more:
                    break
                else:
                    text += "\n" + more.decode()
            if text is not None:
                run_code(text, "<stdin>", "single", False)


def main():
    """Runs the boot; returns the exit code that tells the launcher how to start the next one."""
    global exit_code
    root, cause = sys.argv[1], sys.argv[2]
    machine._cause = CAUSES.get(cause, machine.PWRON_RESET)
    uid = _os.getenv("VB_UNIQUE_ID")
    if uid:
        machine._uid = bytes(int(uid[i : i + 2], 16) for i in range(0, len(uid), 2))
    install_modules()
    mount(root)
    mode = RAW if cause == "soft-raw" else FRIENDLY
    try:
        run_file("boot.py")
    except _SoftReset:
        say("MPY: soft reboot\r\n")
        exit_code = EXIT_SOFT_FRIENDLY
        return exit_code
    except EOFError:
        return 0
    # From "ready" on, Ctrl-C arrives as SIGINT (the launcher holds one that came during boot.py
    # and sends it now, so it stops main.py as the host meant) and may land anywhere in this
    # loop: the handler only notes it, and everything else happens inside the try.
    ready_due = True
    interrupted = False
    while True:
        try:
            if ready_due:
                # main.py runs in this pass or never: a Ctrl-C from here on stops it, whether
                # it lands in main.py or just before
                ready_due = False
                note("ready")
                if mode == FRIENDLY:
                    run_file("main.py")
            if interrupted:
                interrupted = False
                note("intr")
            if exit_code is not None:
                say("MPY: soft reboot\r\n")
                return exit_code
            mode = raw_repl() if mode == RAW else friendly_repl()
        except KeyboardInterrupt:
            interrupted = True
        except _SoftReset as e:
            exit_code = EXIT_SOFT_RAW if (e.args[0] or mode) == RAW else EXIT_SOFT_FRIENDLY
        except EOFError:
            exit_code = 0  # the launcher closed the line: power off
            return exit_code


exit_code = None
try:
    exit_code = main()
except SystemExit as e:  # machine.reset() or deep sleep from user code
    exit_code = e.args[0] if e.args else 0
except KeyboardInterrupt:
    pass  # a Ctrl-C on the way out: main() has set exit_code
if exit_code is None:
    exit_code = 0
# The process ends now, and a SIGINT on the way out would kill it before it exits with this
# code: the launcher takes the code from this line and sends no more signals.
for _ in range(3):
    try:
        note("exit %d" % exit_code)
        break
    except KeyboardInterrupt:
        pass
sys.exit(exit_code)
