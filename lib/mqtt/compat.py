"""Every difference between MicroPython and CPython that mqtt depends on, decided in one place.

The rest of the package is written once against this module: a clock in milliseconds (ticks),
`const`, random bits, reading an asyncio stream into a buffer, and release(), which lets a
board's heap reclaim a module loaded only for a moment. The MicroPython versions are here;
CPython's come from cpython.py, so a board loads none of their code (every function a board
loads costs heap, called or not). The blocking client's socket with deadlines differs between
the two as well; it lives in link.py, so that asyncio programs, which use asyncio's streams,
never load it.
"""
import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    import gc
    from micropython import const
    from random import getrandbits
    from sys import print_exception
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms

    def tidy_heap():
        """Collect garbage now, on a small heap: called last by each module a client loads, and
        after connecting.

        Both leave a burst of garbage between objects that stay. Loading a .mpy leaves about 50
        bytes per function between the code it keeps (measured on the Unix port: 0.3-2.8 KB per
        module of ours), and opening a connection about 4 KB around the streams and tasks that
        stay. Collected at once, those holes take the next small objects; left until the heap
        fills, they stay as hundreds of 1-3 block gaps. In a 64 KiB heap the asyncio client
        could then take no payload above 768 B after connecting, with 13 KB free (measured when
        this was added); with it, 6 KB (bench/results.md). A heap above 512 KiB (a board with
        PSRAM) is skipped: a collection there costs tens of ms, and fragmentation does not bite.
        """
        if _SMALL_HEAP:
            gc.collect()

    # Measured once: mem_free() walks the whole allocation table, 0.3 ms on a 2 MB heap.
    _SMALL_HEAP = gc.mem_free() + gc.mem_alloc() <= 524288

    def stream_read(stream, buf):
        """Awaitable: read what an asyncio stream has into buf; the count, 0 at end of stream.

        readinto reuses buf. A read() of 512 bytes would allocate 513 contiguous bytes each time,
        which a fragmented 64 KB heap may not have even with kilobytes free.
        """
        return stream.readinto(buf)

    def stream_nodelay(stream):
        """TCP_NODELAY on an asyncio stream's socket: without it each acknowledged publish waits
        on Nagle + delayed ACK (~40 ms). CPython's asyncio sets it by itself; a TLS stream here
        hides its socket, and then stays as it is."""
        try:
            stream.s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: same numbers on Linux and lwIP
        except (AttributeError, OSError):
            pass

    def stream_flushed(stream):
        """True when what was written went straight to the socket, so drain() has nothing to wait
        for (and wrapping it in wait_for would cost a task and ~1 KB of garbage per publish)."""
        return not stream.out_buf

    async def stream_close(stream, abort, timeout):
        """Close an asyncio stream. Here wait_closed() closes the socket at once (close() does
        nothing), dropping what the stream holds: nothing to wait for, nothing to abort."""
        try:
            await stream.wait_closed()
        except Exception:
            pass  # a broken socket may fail to close cleanly; it is closed either way

    def body_view(buf, start, end):
        """A packet's body inside the input buffer, without copying it."""
        return memoryview(buf)[start:end]

    def str_bytes(s):
        """The UTF-8 bytes of str s without copying them: a str here is UTF-8 already, and a
        memoryview of it measures and reads as those bytes. A 300-byte discovery payload then
        needs no second 300-byte block, which a fragmented heap may not have."""
        return memoryview(s)

    def release(name):
        """Forget module `name` (dotted) until it is next imported, so the heap can reclaim it.

        Importing it stored it in sys.modules and as an attribute of its package; both must go.
        The package's __dict__ is used rather than hasattr, which would call a package
        __getattr__ (mqtt has one that imports submodules).
        """
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        package = sys.modules.get(name[:dot])
        if package is not None:
            package.__dict__.pop(name[dot + 1 :], None)

else:
    from .cpython import (  # the same names, for CPython: a board never loads that file
        body_view, const, getrandbits, print_exception, release, sleep_ms, str_bytes, stream_close,
        stream_flushed, stream_nodelay, stream_read, ticks_add, ticks_diff, ticks_ms, tidy_heap,
    )

tidy_heap()
