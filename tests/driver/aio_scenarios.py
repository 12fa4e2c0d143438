# The asyncio client's scenarios: each drives aio Clients against the broker and returns plain
# data for the test to assert on; nothing is asserted here. A request names one of these
# functions (tests/driver/aio_driver.py runs it); its params come as keyword arguments, always
# with server, port and prefix (a client-id prefix unique to the test).
#
# MicroPython 1.22+ and CPython 3.9+: only asyncio (and, in burst, the blocking mqtt client).
import asyncio
import gc

from aio_kit import (
    DELIVERY_S, abort, client, close_all, sequence_number, settle, small_send_buffer, take, within,
)
from aio_wire import pause

LINK_S = 10  # bound for a reconnect: backoff plus the keepalive that notices a silent link
MAX_MESSAGES = 100000  # bounds every collecting loop even if messages never stop


async def connect_only(server, port, prefix, tls=None, user=None, password=None):
    """Connects and disconnects; returns the session-present flag (errors are the result)."""
    c = client(server, port, prefix + "-c", tls, user=user, password=password)
    present = await c.connect()
    await c.disconnect()
    return present


async def pubsub(server, port, prefix, topic, payloads, pub_qos=0, sub_qos=0, retain=False, tls=None,
                 user=None, password=None, max_packet=None, seconds=DELIVERY_S):
    """A subscriber and a publisher, both aio Clients; returns granted QoS, what publish()
    returned, and what the subscriber received."""
    kw = {"tls": tls, "user": user, "password": password}
    if max_packet:
        kw["max_packet"] = max_packet
    sub = client(server, port, prefix + "-sub", **kw)
    pub = client(server, port, prefix + "-pub", **kw)
    clients = [sub, pub]
    try:
        await sub.connect()
        await pub.connect()
        granted = await sub.subscribe(topic, sub_qos)
        published = []
        for p in payloads:
            published.append(await pub.publish(topic, p, qos=pub_qos, retain=retain))
        received = await take(sub, len(payloads), seconds)
        return {"granted": granted, "published": published, "received": received}
    finally:
        await close_all(clients)


async def in_order(server, port, prefix, topic, count, qos=1, incoming=None, seconds=20):
    """count messages "0".."count-1" published one after another at `qos` while the subscriber's
    consumer reads concurrently (its queue holds `incoming`, by default all of them); returns the
    payloads in arrival order and the publish results that were not True."""
    sub = client(server, port, prefix + "-sub", incoming=incoming or count)
    pub = client(server, port, prefix + "-pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic, qos)
        consumer = asyncio.create_task(take(sub, count, seconds, keep=sequence_number))
        not_true = []
        for i in range(count):
            r = await pub.publish(topic, str(i), qos=qos)
            if r is not True:
                not_true.append([i, r])
        return {"received": await consumer, "not_true": not_true,
                "dropped_in": sub.counters()["dropped_in"]}
    finally:
        await close_all([sub, pub])


async def retained(server, port, prefix, topic):
    """A retained QoS 1 message: a live subscriber gets it with RETAIN 0, a later one with
    RETAIN 1 [MQTT-3.3.1-8/9]; after an empty retained publish clears it, a third gets nothing
    before a marker published after its SUBSCRIBE."""
    live = client(server, port, prefix + "-live")
    pub = client(server, port, prefix + "-pub")
    late = client(server, port, prefix + "-late")
    after = client(server, port, prefix + "-after")
    clients = [live, pub, late, after]
    try:
        await live.connect()
        await pub.connect()
        await live.subscribe(topic, 1)
        await pub.publish(topic, b"kept", qos=1, retain=True)
        live_got = await take(live, 1)
        await late.connect()
        await late.subscribe(topic, 1)
        late_got = await take(late, 1)
        await pub.publish(topic, b"", qos=1, retain=True)
        await after.connect()
        await after.subscribe(topic, 1)
        await pub.publish(topic, b"marker", qos=1)
        after_got = await take(after, 2, until=b"marker")
        return {"live": live_got, "late": late_got, "after_clear": after_got}
    finally:
        await close_all(clients)


async def will(server, port, prefix, topic, end, quiet_s=1.0):
    """A node with a will (QoS 1, not retained) ends by `end`: "abort" (socket closed, no
    DISCONNECT) or "disconnect". Returns what an observer received: within DELIVERY_S after an
    abort, within quiet_s after a disconnect (the will should never come)."""
    observer = client(server, port, prefix + "-observer")
    node = client(server, port, prefix + "-node", will=(topic, b"gone", 1, False))
    clients = [observer, node]
    try:
        await observer.connect()
        await observer.subscribe(topic, 1)
        await node.connect()
        if end == "abort":
            await abort(node)
            clients.remove(node)
            return await take(observer, 1)
        await node.disconnect()
        return await take(observer, 1, quiet_s)
    finally:
        await close_all(clients)


async def hold_will(server, port, prefix, topic):
    """Connects a node with a will, then pauses at "connected" for the host to kill this process."""
    node = client(server, port, prefix + "-node", will=(topic, b"gone", 1, False))
    await node.connect()
    try:
        pause("connected")
    finally:
        await close_all([node])


async def observe(server, port, prefix, topic, n, qos=1, seconds=DELIVERY_S):
    """Subscribes, pauses at "subscribed" (the host starts what it wants observed), then returns
    up to n messages received within `seconds`."""
    c = client(server, port, prefix + "-observer")
    try:
        await c.connect()
        await c.subscribe(topic, qos)
        pause("subscribed")
        return await take(c, n, seconds)
    finally:
        await close_all([c])


async def persistent(server, port, prefix, topic):
    """clean_session=False: the node subscribes (QoS 1 and 2), disconnects; four messages are
    published while it is away; a new Client with the same id (which knows of no subscription
    itself) connects again. Returns both session-present flags and what it received."""
    node_id = prefix + "-node"
    first = client(server, port, node_id, clean_session=False)
    pub = client(server, port, prefix + "-pub")
    second = client(server, port, node_id, clean_session=False)
    clients = [first, pub, second]
    try:
        first_present = await first.connect()
        granted = [await first.subscribe(topic + b"/q1", 1), await first.subscribe(topic + b"/q2", 2)]
        await first.disconnect()
        await pub.connect()
        sent = [[b"/q1", b"one", 1], [b"/q2", b"two", 2], [b"/q1", b"three", 1], [b"/q2", b"four", 2]]
        published = []
        for suffix, payload, qos in sent:
            published.append(await pub.publish(topic + suffix, payload, qos=qos))
        second_present = await second.connect()
        received = await take(second, len(sent))
        return {"first_present": first_present, "granted": granted, "published": published,
                "second_present": second_present, "received": received}
    finally:
        await close_all(clients)


async def wildcards(server, port, prefix, topic_filter, topics, marker_topic):
    """Subscribes to topic_filter (and to marker_topic), publishes one QoS 1 message to each
    topic (payload = its topic) then the marker; returns the topics received before the marker."""
    sub = client(server, port, prefix + "-sub")
    pub = client(server, port, prefix + "-pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic_filter, 1)
        await sub.subscribe(marker_topic, 1)
        for t in topics:
            await pub.publish(t, t, qos=1)
        await pub.publish(marker_topic, b"marker", qos=1)
        got = await take(sub, len(topics) + 1, until=b"marker")
        return [m[0] for m in got if m[1] != b"marker"]
    finally:
        await close_all([sub, pub])


async def unsubscribe(server, port, prefix, topic, marker_topic):
    """Receives "before", unsubscribes, then "after" is published followed by a marker on a
    topic still subscribed; returns the payloads received, in order."""
    sub = client(server, port, prefix + "-sub")
    pub = client(server, port, prefix + "-pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic, 1)
        await sub.subscribe(marker_topic, 1)
        await pub.publish(topic, b"before", qos=1)
        got = await take(sub, 1)
        await sub.unsubscribe(topic)
        await pub.publish(topic, b"after", qos=1)
        await pub.publish(marker_topic, b"marker", qos=1)
        got += await take(sub, 2, until=b"marker")
        return [m[1] for m in got]
    finally:
        await close_all([sub, pub])


async def concurrent(server, port, prefix, topic, tasks=10, per_task=10, qos=1):
    """`tasks` tasks each start `per_task` publishes at once (tasks x per_task awaiting at the
    same time, beyond the in-flight window); returns what each publish() returned and the
    payloads a subscriber received."""
    total = tasks * per_task
    sub = client(server, port, prefix + "-sub", incoming=total + 1)
    pub = client(server, port, prefix + "-pub")

    async def one_task(k):
        return await asyncio.gather(*[pub.publish(topic, "%d-%d" % (k, i), qos=qos) for i in range(per_task)])

    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic, qos)
        results = await asyncio.gather(*[one_task(k) for k in range(tasks)])
        got = await take(sub, total)
        return {"published": [r for rs in results for r in rs], "received": [m[1] for m in got],
                "inflight": pub.counters()["inflight"]}
    finally:
        await close_all([sub, pub])


async def cancel_publish(server, port, prefix, topic, qos, spins):
    """For each n in spins: a task publishes "cancelled-<n>" at `qos` and is cancelled after n
    turns of the event loop (0: before it ever ran). Then "after" is published and awaited, and
    a marker last. Returns the subscriber's payloads up to the marker, what the later publishes
    returned, and the publisher's state at the end."""
    sub = client(server, port, prefix + "-sub", incoming=len(spins) + 8)
    pub = client(server, port, prefix + "-pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic, 2)
        outcomes = []
        for n in spins:
            t = asyncio.create_task(pub.publish(topic, "cancelled-%d" % n, qos=qos))
            for _ in range(n):
                await asyncio.sleep(0)
            t.cancel()
            try:
                outcomes.append(await t)
            except asyncio.CancelledError:
                outcomes.append("cancelled")
        after = await pub.publish(topic, b"after", qos=qos)
        marker = await pub.publish(topic, b"marker", qos=qos)
        got = await take(sub, len(spins) + 2, until=b"marker")
        await settle(lambda: pub.counters()["inflight"] == 0, DELIVERY_S)
        return {"outcomes": outcomes, "after": after, "marker": marker, "received": [m[1] for m in got],
                "inflight": pub.counters()["inflight"], "waiters": len(pub._waiters)}
    finally:
        await close_all([sub, pub])


async def backpressure(server, port, prefix, topic, count=20, incoming=5):
    """A subscriber whose queue holds `incoming` messages and nobody reading: `count` QoS 0
    messages arrive. Returns the queue's content (read afterwards) and counters()["dropped_in"]."""
    sub = client(server, port, prefix + "-sub", incoming=incoming)
    pub = client(server, port, prefix + "-pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe(topic, 0)
        for i in range(count):
            await pub.publish(topic, str(i), qos=0)
        await settle(lambda: sub.counters()["dropped_in"] + len(sub.messages.items) >= count, DELIVERY_S)
        dropped = sub.counters()["dropped_in"]
        queued = len(sub.messages.items)
        got = await take(sub, queued, 1)
        return {"dropped_in": dropped, "queued": queued, "payloads": [m[1] for m in got]}
    finally:
        await close_all([sub, pub])


async def burst(server, port, prefix, topic, count=100, incoming=32):
    """A consumer waits in `async for` on a subscriber whose queue holds `incoming`; `count` QoS 0
    messages arrive in one burst while the event loop is busy: a blocking MQTTClient in this
    process publishes them (the loop is stopped meanwhile) and, being subscribed too, waits
    until its own copies are back, by which time the broker has written them to the aio
    subscriber's socket as well. Returns what the consumer got and counters()["dropped_in"]."""
    from mqtt import MQTTClient

    sub = client(server, port, prefix + "-sub", incoming=incoming)
    blocking = MQTTClient(prefix + "-blocking", server, port)
    echoes = [0]
    got = [0]

    def echo(t, m):
        echoes[0] += 1

    async def consume():
        async for m in sub.messages:
            got[0] += 1
            if got[0] >= MAX_MESSAGES:
                return

    try:
        await sub.connect()
        await sub.subscribe(topic, 0)
        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # the consumer waits in async for
        blocking.set_callback(echo)
        blocking.connect()
        blocking.subscribe(topic, 0)
        for i in range(count):
            blocking.publish(topic, str(i))
        for _ in range(count * 10):
            if echoes[0] >= count or blocking.wait_msg(timeout=DELIVERY_S) is None:
                break
        blocking.disconnect()
        # Every message is either consumed or dropped by now, or soon: wait for that, not longer.
        await settle(lambda: got[0] + sub.counters()["dropped_in"] >= echoes[0], DELIVERY_S)
        consumer.cancel()
        return {"echoes": echoes[0], "received": got[0], "dropped_in": sub.counters()["dropped_in"]}
    finally:
        await close_all([sub])


async def disconnect_during_publish(server, port, prefix, topic, proxy_port, qos=1, seconds=1.0):
    """A node talks to the broker through the host's fault proxy; checkpoint "stall": the host
    stalls it, so no acknowledgement can come back. A task publishes at `qos`, then another
    calls disconnect(). Returns whether that publish() returned within `seconds` of the
    disconnect, and what it returned."""
    node = client(server, proxy_port, prefix + "-node")
    box = {}

    async def publish():
        box["r"] = await node.publish(topic, b"in flight at disconnect", qos=qos)

    try:
        await node.connect()
        pause("stall")
        task = asyncio.create_task(publish())
        await asyncio.sleep(0.05)  # the PUBLISH is written and stuck in the stalled proxy
        early = "r" in box
        await node.disconnect()
        returned = await within(task, seconds)
        return {"early": early, "returned": returned, "result": box.get("r"),
                "inflight": node.counters()["inflight"]}
    finally:
        await close_all([node])


async def messages_end(server, port, prefix, topic, proxy_port, seconds=2):
    """Does `async for msg in c.messages` end when nothing more can arrive? Client "a" (direct)
    gets one message of its own, then disconnects while a consumer waits in the loop. Client
    "q" gets one, left unread in its queue, disconnects, and only then is read. Client "b"
    (reconnect=False) talks through the host's fault proxy; at checkpoint "cut" the host cuts
    the link under a waiting consumer, whose loop is then entered once more. Returns, for each,
    whether the loop ended within `seconds`, what it had got and how it ended, and for "b"
    whether its tasks had all stopped."""
    a = client(server, port, prefix + "-a")
    q = client(server, port, prefix + "-q")
    b = client(server, proxy_port, prefix + "-b", reconnect=False, keepalive=1)

    async def consume(c, out):
        try:
            async for m in c.messages:
                out["got"].append(m.payload)
                if len(out["got"]) >= MAX_MESSAGES:
                    return
            out["end"] = "stopped"
        except Exception as e:
            out["end"] = "OSError" if isinstance(e, OSError) else type(e).__name__  # CPython: a subclass

    try:
        await a.connect()
        await a.subscribe(topic, 1)
        out_a = {"got": [], "end": None}
        task = asyncio.create_task(consume(a, out_a))
        await a.publish(topic, b"before", qos=1)
        await settle(lambda: out_a["got"], DELIVERY_S)
        await a.disconnect()
        out_a["ended"] = await within(task, seconds)

        await q.connect()
        await q.subscribe(topic + b"/q", 1)
        await q.publish(topic + b"/q", b"queued", qos=1)
        await settle(lambda: q.messages.items, DELIVERY_S)
        await q.disconnect()
        out_q = {"got": [], "end": None}
        out_q["ended"] = await within(consume(q, out_q), seconds)

        await b.connect()
        tasks = list(b._tasks)
        out_b = {"got": [], "end": None}
        task = asyncio.create_task(consume(b, out_b))
        await asyncio.sleep(0.05)  # the consumer waits in async for
        pause("cut")
        out_b["ended"] = await within(task, seconds)
        await settle(lambda: all(t.done() for t in tasks), seconds)
        out_b["tasks_done"] = all(t.done() for t in tasks)
        again = {"got": [], "end": None}
        out_b["again"] = await within(consume(b, again), seconds) and again["end"]
        return {"a": out_a, "q": out_q, "b": out_b}
    finally:
        await close_all([a, q, b])


async def publish_across_clean_reconnect(server, port, prefix, topic, fake_port, qos=2, seconds=5):
    """A client with a clean session publishes at `qos` to the fake broker at fake_port, whose
    script drops the link mid-flow and takes the reconnect; then one QoS 1 message more.
    Returns what both publishes returned (None: not within `seconds`) and the reconnect count."""
    c = client(server, fake_port, prefix + "-node", backoff=(0.05, 0.2))
    box = {}

    async def publish(key, payload, q):
        box[key] = await c.publish(topic, payload, qos=q)

    try:
        await c.connect()
        await within(publish("first", b"across", qos), seconds)
        await within(publish("after", b"after", 1), seconds)
        return {"first": box.get("first"), "after": box.get("after"), "reconnects": c.reconnects}
    finally:
        await close_all([c])


async def link_lost(server, port, prefix, topic, proxy_port, fault, offline=3, keepalive=2):
    """A node (keepalive `keepalive`, clean_session=False) talks to the broker through the
    host's fault proxy at proxy_port; a subscriber talks to the broker directly.

    Checkpoint "stall": the host stalls the proxy. The node then publishes "inflight" (QoS 1),
    which cannot be acknowledged. Checkpoint "fault": with fault "cut", the host cuts the link
    and resumes the proxy; with "silence", it does nothing, and the node's keepalive must notice
    the silent link by itself (checkpoint "noticed": the host resumes the proxy). The node
    publishes `offline` QoS 1 messages while disconnected, and a marker once reconnected. Returns
    what the node saw and what the subscriber received up to the marker.
    """
    sub = client(server, port, prefix + "-sub", incoming=64)
    node = client(server, proxy_port, prefix + "-node", keepalive=keepalive, clean_session=False,
                  backoff=(0.05, 0.2))
    clients = [sub, node]
    try:
        await sub.connect()
        await sub.subscribe(topic + b"/#", 1)
        await node.connect()
        pause("stall")
        box = {}

        async def publish_inflight():
            box["r"] = await node.publish(topic + b"/inflight", b"inflight", qos=1)

        inflight = asyncio.create_task(publish_inflight())
        await asyncio.sleep(0.05)  # the PUBLISH is written and stuck in the stalled proxy
        inflight_done_early = "r" in box
        pause("fault")
        disconnected = await within(node.disconnected.wait(), LINK_S)
        offline_results = []
        for i in range(offline):
            offline_results.append(await node.publish(topic + b"/offline", "offline-%d" % i, qos=1))
        queued = node.counters()["queued"]
        if fault == "silence":
            pause("noticed")
        reconnected = await within(node.connected.wait(), LINK_S)
        await within(inflight, LINK_S)
        inflight_result = box.get("r")
        marker = await node.publish(topic + b"/marker", b"marker", qos=1)
        got = await take(sub, 2 * (offline + 1) + 1, until=b"marker")  # QoS 1 may repeat some
        await settle(lambda: node.counters()["inflight"] == 0, DELIVERY_S)
        counters = node.counters()
        return {"inflight_done_early": inflight_done_early, "disconnected": disconnected,
                "offline_results": offline_results, "queued_while_offline": queued,
                "reconnected": reconnected, "inflight_result": inflight_result, "marker": marker,
                "received": [m[1] for m in got], "reconnects": counters["reconnects"],
                "inflight_left": counters["inflight"], "last_error": type(node.last_error).__name__,
                "last_error_msg": str(node.last_error)}
    finally:
        await close_all(clients)


async def qos0_ways(server, port, prefix, topic, count=50):
    """QoS 0 publishes every way a program can start one: offline (by a client that drops them,
    and by one that queues them), awaited (`count` of them, their heap measured with the GC off
    on MicroPython; None on CPython), as tasks cancelled before they ran, and gathered. Returns
    what each way returned and the payloads a subscriber received."""
    sub = client(server, port, prefix + "-sub", incoming=count + 16)
    pub = client(server, port, prefix + "-pub")
    keeper = client(server, port, prefix + "-keeper", queue_qos0=True)
    try:
        await sub.connect()
        await sub.subscribe(topic, 0)
        offline = [await pub.publish(topic, b"dropped-offline", qos=0),
                   await keeper.publish(topic, b"queued-offline", qos=0)]
        await pub.connect()
        await keeper.connect()  # sends what it queued
        for i in range(4):  # the first publishes' one-time costs (a topic check loaded) come first
            await pub.publish(topic, b"warm", qos=0)
        awaited = [None] * count
        measure = hasattr(gc, "mem_alloc")
        if measure:
            gc.collect()
            gc.disable()
            before = gc.mem_alloc()
        for i in range(count):
            awaited[i] = await pub.publish(topic, b"awaited", qos=0)
        heap = gc.mem_alloc() - before if measure else None
        gc.enable()
        cancelled = []
        for n in range(3):
            t = asyncio.create_task(pub.publish(topic, b"cancelled-%d" % n, qos=0))
            t.cancel()  # before the task ever ran
            try:
                cancelled.append(await t)
            except asyncio.CancelledError:
                cancelled.append("cancelled")
        gathered = await asyncio.gather(*[pub.publish(topic, b"gathered-%d" % i, qos=0) for i in range(5)])
        await pub.publish(topic, b"marker", qos=1)
        got = await take(sub, 1 + 4 + count + 3 + 5 + 1, until=b"marker")
        return {"offline": offline, "awaited": awaited, "heap": heap, "cancelled": cancelled,
                "gathered": gathered, "received": [m[1] for m in got]}
    finally:
        await close_all([sub, pub, keeper])


async def backed_up_writers(server, port, prefix, topic, proxy_port, count=4, size=30000, seconds=10):
    """A node talks to the broker through the host's fault proxy, with a send buffer as small as a
    board's. Checkpoint "stall": the host stalls it; `count` tasks then publish `size`-byte QoS 1 messages, one after another a moment
    apart, so each writes while the stream is still backed up with the ones before, and the
    first is cancelled by its caller's 0.2 s deadline mid-drain. Checkpoint "resume": the host
    lets the link flow again. Returns what each publish returned, the message numbers a
    subscriber got, and the node's reconnects."""
    node = client(server, proxy_port, prefix + "-node")
    sub = client(server, port, prefix + "-sub", max_packet=size + 100)
    results = [None] * count

    async def publish(i):
        payload = b"%04d" % i + b"." * (size - 4)
        try:
            results[i] = await node.publish(topic, payload, qos=1)
        except Exception as e:  # noqa: BLE001 - reported to the host as the outcome
            results[i] = "%s: %s" % (type(e).__name__, e)

    try:
        await sub.connect()
        await sub.subscribe(topic, qos=1)
        await node.connect()
        small_send_buffer(node, 4096)
        pause("stall")
        try:
            await asyncio.wait_for(node.publish(topic, b"%04d" % 0 + b"." * (size - 4), qos=1), 0.2)
            results[0] = "not cancelled"
        except asyncio.TimeoutError:
            results[0] = "cancelled"  # its flow goes on: it must still arrive, once
        tasks = []
        for i in range(1, count):
            tasks.append(asyncio.create_task(publish(i)))
            await asyncio.sleep(0.05)
        pause("resume")
        for t in tasks:
            await within(t, seconds)
        got = await take(sub, count + 1, seconds=2, keep=lambda m: int(m.payload[:4]))
        return {"results": results, "received": got, "reconnects": node.counters()["reconnects"],
                "last_error": None if node.last_error is None else str(node.last_error)}
    finally:
        await close_all([node, sub])


async def stalled_backlog(server, port, prefix, topic, proxy_port, timeout=1, keepalive=2, size=200000, seconds=8):
    """A node (`keepalive` s, `timeout` s, a board-sized send buffer) behind the host's fault proxy
    publishes a `size`-byte QoS 1 message while the host has the proxy stalled (checkpoint
    "stall"), with its reader task already waiting on the socket, so the stream backs up and the
    broker takes nothing, nor answers. Then the host resumes it (checkpoint "resume"). Then,
    stalled again (checkpoint "stall again"), a QoS 0 message of that size, and disconnect() at
    once. Returns how long the client took to give the link up, whether it reconnected, why it
    said the link ended, and how long disconnect() took."""
    from mqtt.compat import ticks_diff, ticks_ms

    node = client(server, proxy_port, prefix + "-node", timeout=timeout, keepalive=keepalive)
    payload = b"." * size
    try:
        await node.connect()
        small_send_buffer(node, 4096)
        await asyncio.sleep(0.1)  # the reader task is waiting on the socket
        pause("stall")
        t0 = ticks_ms()
        pending = asyncio.create_task(node.publish(topic, payload, qos=1))
        gave_up = await within(node.disconnected.wait(), seconds)
        gave_up_s = ticks_diff(ticks_ms(), t0) / 1000
        pause("resume")
        reconnected = await within(node.connected.wait(), LINK_S)
        published = await within(pending, seconds)  # resent after the reconnect
        why = None if node.last_error is None else "%s: %s" % (type(node.last_error).__name__, node.last_error)
        small_send_buffer(node, 4096)
        await asyncio.sleep(0.1)
        pause("stall again")
        pending = asyncio.create_task(node.publish(topic, payload))  # written at once; the rest backs up
        await asyncio.sleep(0)
        t0 = ticks_ms()
        disconnected = await within(node.disconnect(), seconds)
        await within(pending, seconds)
        return {"published": published, "gave_up": gave_up, "gave_up_s": gave_up_s, "reconnected": reconnected,
                "why": why, "disconnected": disconnected, "disconnect_s": ticks_diff(ticks_ms(), t0) / 1000,
                "reconnects": node.counters()["reconnects"]}
    finally:
        await close_all([node])


async def slow_link_publish(server, port, prefix, topic, proxy_port, timeout=1, size=300000, seconds=20):
    """A node (`timeout` s, a board-sized send buffer) behind the host's fault proxy, which the
    host slows at checkpoint "slow" so that the message takes several times `timeout` to cross,
    publishes one `size`-byte QoS 1 message. Returns what publish() returned, the node's
    reconnects, and the payload length a subscriber got."""
    node = client(server, proxy_port, prefix + "-node", timeout=timeout)
    sub = client(server, port, prefix + "-sub", max_packet=size + 100)
    try:
        await sub.connect()
        await sub.subscribe(topic, qos=1)
        await node.connect()
        small_send_buffer(node, 4096)
        await asyncio.sleep(0.1)
        pause("slow")
        result = None
        try:
            result = await asyncio.wait_for(node.publish(topic, b"." * size, qos=1), seconds)
        except asyncio.TimeoutError:
            result = "no answer within %d s" % seconds
        got = await take(sub, 1, seconds=5, keep=lambda m: len(m.payload))
        return {"result": result, "reconnects": node.counters()["reconnects"], "received": got}
    finally:
        await close_all([node, sub])
