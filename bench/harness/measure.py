"""One benchmark job for one client, in a fresh process; prints one line `BENCH <json>`.

    micropython -m measure CLIENT heap PORT CLIENT_ID [IMAGE]
    micropython -m measure CLIENT run PORT CLIENT_ID '{"q0_n": 20000, ...}'
    python measure.py paho run PORT CLIENT_ID '{...}'            (CPython: no heap figures)

heap: gc.mem_alloc() after gc.collect(), relative to the harness alone: after the import, after
connect (holding the connected client), and for asyncio clients the share of asyncio itself.
      At each of those points it also prints `QSTR <point>` and micropython.qstr_info()'s line,
      from which the host charges the client for the names it added rather than for the name
      table's pool blocks (tools/bench_run.py, charged()).
      With an IMAGE argument the client's modules come from that ROMFS image instead (mounted at
      /rom before the baseline, so the image's own block is not counted): executed in place, as
      from a board's flash when the client is frozen into its firmware or in a ROMFS partition.
run:  allocation per publish (GC off), QoS 0 / QoS 1 rates one at a time, QoS 1 pipelined
(asyncio clients, `window` concurrent publishes), and wake cycles (make a client, connect, one
QoS 1 publish, disconnect). Every loop stops at its count or its time limit, whichever is first.

Runs on boards' rules (MicroPython Unix port): no f-strings, no typing.
"""
import gc
import json
import sys

from clients import MICROPYTHON, adapter, ticks_diff, ticks_us

MARKER = "BENCH "
TOPIC = b"bench/load"


def report(result):
    print(MARKER + json.dumps(result))


def heap_now(base):
    gc.collect()
    return gc.mem_alloc() - base


def names(point):
    """The name table's size now, for the host: qstr_info() prints it, and only to stdout."""
    import micropython

    print("QSTR " + point)
    micropython.qstr_info()


def loaded_modules():
    """name -> file of every module loaded from a .mpy (the host keeps the client's own)."""
    found = {}
    for name in sys.modules:
        f = getattr(sys.modules[name], "__file__", "") or ""
        if f.endswith(".mpy"):
            found[name] = f
    return found


# --- heap ------------------------------------------------------------------------------------


def job_heap(a, port, cid):
    a.prepare()
    # made before the baseline; word: a pointer's bytes, for the size of a name-table entry
    result = {"asyncio": None, "import": 0, "connect": 0, "modules": None, "word": 8 if sys.maxsize > 1 << 32 else 4}
    gc.collect()
    base = gc.mem_alloc()
    names("base")
    if a.is_async:
        import asyncio  # its share of the asyncio client's import, reported apart

        result["asyncio"] = heap_now(base)
        names("asyncio")
    a.load()
    result["import"] = heap_now(base)
    names("import")
    if a.is_async:
        asyncio.run(_heap_connected(a, port, cid, base, result))
    else:
        c = a.make(cid, port)
        a.connect(c)
        result["connect"] = heap_now(base)
        names("connect")
        result["modules"] = loaded_modules()
        a.disconnect(c)
    report(result)


async def _heap_connected(a, port, cid, base, result):
    c = a.make(cid, port)
    await a.connect(c)
    result["connect"] = heap_now(base)
    names("connect")
    result["modules"] = loaded_modules()
    await a.disconnect(c)


# --- run: blocking clients -------------------------------------------------------------------


def rate(pub, msg, qos, n, limit_us, sent):
    """Messages per second over at most n publishes or limit_us, one at a time, the clock stopped
    once sent() says every one has gone to the socket (paho's publish() only queues a QoS 0
    message for its network thread)."""
    i = 0
    t0 = ticks_us()
    while i < n:
        pub(TOPIC, msg, False, qos)
        i += 1
        if ticks_diff(ticks_us(), t0) >= limit_us:
            break
    sent()
    return i * 1000000 / max(ticks_diff(ticks_us(), t0), 1)


def requested():
    """Bytes requested from the heap since start-up, counting blocks freed at once (a call's
    frame too large for the C stack) as well as garbage; None where the port does not keep it."""
    import micropython

    return micropython.mem_total() if hasattr(micropython, "mem_total") else None


def per_publish(r0, a0, a1, r1, i):
    """(garbage, requested) per publish from readings taken around i publishes: requested() first
    and last, gc.mem_alloc() innermost, so that nothing the readings make is counted."""
    return (a1 - a0) / i, None if r0 is None else (r1 - r0) / i


def alloc(pub, msg, qos, n, limit_us):
    """Heap per publish with the GC off, averaged over at most n publishes: what stays allocated
    (garbage the GC must collect later) and all that was requested (per_publish's pair)."""
    gc.collect()
    gc.disable()
    try:
        i = 0
        t0 = ticks_us()
        r0 = requested()
        a0 = gc.mem_alloc()
        while i < n:
            pub(TOPIC, msg, False, qos)
            i += 1
            if ticks_diff(ticks_us(), t0) >= limit_us:
                break
        a1 = gc.mem_alloc()
        r1 = requested()
    finally:
        gc.enable()
    return per_publish(r0, a0, a1, r1, i)


def wake(a, port, cid, msg, n, limit_us):
    times = []
    t_all = ticks_us()
    while len(times) < n and ticks_diff(ticks_us(), t_all) < limit_us:
        t0 = ticks_us()
        c = a.make(cid, port)
        a.connect(c)
        c.publish(TOPIC, msg, False, 1)
        a.disconnect(c)
        times.append(ticks_diff(ticks_us(), t0) / 1000)
    return times


def job_run(a, port, cid, p):
    a.load()
    msg = b"x" * p["payload"]
    c = a.make(cid, port)
    a.connect(c)
    pub = c.publish
    sent = a.sent(c)
    result = {}
    for qos in (0, 1):
        rate(pub, msg, qos, p["warm"], p["warm_s"] * 1000000, sent)
    if p["alloc"]:
        result["alloc_q0"], result["req_q0"] = alloc(pub, msg, 0, p["alloc_n"], p["alloc_s"] * 1000000)
        result["alloc_q1"], result["req_q1"] = alloc(pub, msg, 1, p["alloc_n"], p["alloc_s"] * 1000000)
    result["q0"] = rate(pub, msg, 0, p["q0_n"], p["q0_s"] * 1000000, sent)
    result["q1"] = rate(pub, msg, 1, p["q1_n"], p["q1_s"] * 1000000, sent)
    if hasattr(a, "pipelined"):  # a blocking client that can keep several QoS 1 messages in flight
        result["pipe"] = a.pipelined(c, TOPIC, msg, p["pipe_n"], p["pipe_s"] * 1000000, p["window"])
    a.disconnect(c)
    result["wake_ms"] = wake(a, port, cid, msg, p["wake_n"], p["wake_s"] * 1000000)
    report(result)


# --- run: asyncio clients ----------------------------------------------------------------------


async def arate(pub, msg, qos, n, limit_us):
    i = 0
    t0 = ticks_us()
    while i < n:
        await pub(TOPIC, msg, qos)
        i += 1
        if ticks_diff(ticks_us(), t0) >= limit_us:
            break
    return i * 1000000 / max(ticks_diff(ticks_us(), t0), 1)


async def aalloc(pub, msg, qos, n, limit_us):
    gc.collect()
    gc.disable()
    try:
        i = 0
        t0 = ticks_us()
        r0 = requested()
        a0 = gc.mem_alloc()
        while i < n:
            await pub(TOPIC, msg, qos)
            i += 1
            if ticks_diff(ticks_us(), t0) >= limit_us:
                break
        a1 = gc.mem_alloc()
        r1 = requested()
    finally:
        gc.enable()
    return per_publish(r0, a0, a1, r1, i)


async def pipelined(pub, msg, n, limit_us, window):
    """QoS 1 with `window` publishes in flight: that many tasks publish one after another."""
    import asyncio

    state = [0, 0]  # started, completed
    t0 = ticks_us()

    async def worker():
        while state[0] < n and ticks_diff(ticks_us(), t0) < limit_us:
            state[0] += 1
            await pub(TOPIC, msg, 1)
            state[1] += 1

    await asyncio.gather(*[worker() for _ in range(window)])
    return state[1] * 1000000 / max(ticks_diff(ticks_us(), t0), 1)


async def awake(a, port, cid, msg, n, limit_us):
    times = []
    t_all = ticks_us()
    while len(times) < n and ticks_diff(ticks_us(), t_all) < limit_us:
        t0 = ticks_us()
        c = a.make(cid, port)
        await a.connect(c)
        await a.publisher(c)(TOPIC, msg, 1)
        await a.disconnect(c)
        times.append(ticks_diff(ticks_us(), t0) / 1000)
    return times


async def ajob_run(a, port, cid, p):
    msg = b"x" * p["payload"]
    c = a.make(cid, port)
    await a.connect(c)
    pub = a.publisher(c)
    result = {}
    for qos in (0, 1):
        await arate(pub, msg, qos, p["warm"], p["warm_s"] * 1000000)
    if p["alloc"]:
        result["alloc_q0"], result["req_q0"] = await aalloc(pub, msg, 0, p["alloc_n"], p["alloc_s"] * 1000000)
        result["alloc_q1"], result["req_q1"] = await aalloc(pub, msg, 1, p["alloc_n"], p["alloc_s"] * 1000000)
    result["q0"] = await arate(pub, msg, 0, p["q0_n"], p["q0_s"] * 1000000)
    result["q1"] = await arate(pub, msg, 1, p["q1_n"], p["q1_s"] * 1000000)
    result["pipe"] = await pipelined(pub, msg, p["pipe_n"], p["pipe_s"] * 1000000, p["window"])
    await a.disconnect(c)
    result["wake_ms"] = await awake(a, port, cid, msg, p["wake_n"], p["wake_s"] * 1000000)
    return result


def main(argv):
    a = adapter(argv[1])
    job, port, cid = argv[2], int(argv[3]), argv[4]
    if job == "heap":
        if len(argv) > 5:
            from romfs import mount

            mount(argv[5])
        job_heap(a, port, cid)
        return
    p = json.loads(argv[5])
    p["alloc"] = MICROPYTHON and p.get("alloc", True)  # CPython has no gc.mem_alloc
    if a.is_async:
        import asyncio

        a.prepare()
        a.load()
        report(asyncio.run(ajob_run(a, port, cid, p)))
    else:
        a.prepare()
        job_run(a, port, cid, p)


if __name__ == "__main__":  # `-m measure`; tests import names() from it
    main(sys.argv)
