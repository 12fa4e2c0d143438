"""Many simulated nodes in one process, for the fleet figure.

    micropython -X heapsize=... -m fleet_node PORT TOPIC_ROOT FIRST COUNT TOTAL PAYLOAD

A node here is one mqnode asyncio Client: its own TCP connection and MQTT session, keepalive
60 s, publishing a PAYLOAD-byte QoS 1 message to TOPIC_ROOT/<n> once a second. This process
holds nodes FIRST .. FIRST+COUNT-1 of TOTAL. It connects them all, prints `READY <connected>
<failed> <heap bytes>`, then waits for one line `GO <seconds> <delay_ms>` on stdin. Node n sends
at delay + (n * 1000 // TOTAL) ms + k s for k in 0 .. seconds-1, so the fleet's messages are
spread evenly over each second, and records each message's latency from its scheduled time to
its PUBACK (so a late wake-up of an overloaded event loop counts). Message k of node n starts
with b"<n> <k> ", so the bench checks delivery message by message. Then it prints `DONE <json>`
(with acked_by_node: node -> bit mask of its acknowledged messages) and exits without DISCONNECT
(the process ending closes every socket).

Runs on boards' rules (MicroPython Unix port): no f-strings, no typing.
"""
import asyncio
import gc
import json
import sys

from clients import HOST, MICROPYTHON, ticks_diff, ticks_ms, ticks_us

CONNECT_BATCH = 32  # connections opened at once: enough to be quick, few enough for the backlog
LATE_GIVE_UP_MS = 5000  # a node this far behind its schedule stops: the step has failed anyway


async def connect_all(cls, port, topic_root, first, count):
    clients = []
    failed = 0
    for start in range(first, first + count, CONNECT_BATCH):
        batch = []
        for n in range(start, min(start + CONNECT_BATCH, first + count)):
            c = cls(HOST, port, client_id="fleet-%s-%d" % (topic_root.split("/")[-1], n), keepalive=60,
                    reconnect=False)
            batch.append((n, c))
        results = await asyncio.gather(*[c.connect() for n, c in batch], return_exceptions=True)
        for (n, c), r in zip(batch, results):
            if isinstance(r, Exception):
                failed += 1
            else:
                clients.append((n, c))
    return clients, failed


async def node(n, c, topic, size, total, seconds, t0_ms, t0_us, stats, lat):
    offset = n * 1000 // total
    acked = 0  # bit k: message k acknowledged
    for k in range(seconds):
        due = offset + k * 1000
        wait = due - ticks_diff(ticks_ms(), t0_ms)
        if wait > 0:
            await asyncio.sleep_ms(wait) if MICROPYTHON else await asyncio.sleep(wait / 1000)
        elif -wait > LATE_GIVE_UP_MS:
            stats["gave_up"] += seconds - k
            break
        stats["sent"] += 1
        head = b"%d %d " % (n, k)  # which message this is, for the bench's per-message delivery check
        try:
            ok = await c.publish(topic, head + b"x" * (size - len(head)), 1)
        except Exception:
            ok = False
        if ok:
            acked |= 1 << k
            lat.append(ticks_diff(ticks_us(), t0_us) - due * 1000)
        else:
            stats["errors"] += 1
    if acked:
        stats["acked_by_node"]["%d" % n] = acked


async def main(argv):
    from mqtt.aio import Client

    port, topic_root = int(argv[1]), argv[2]
    first, count, total, size = int(argv[3]), int(argv[4]), int(argv[5]), int(argv[6])
    clients, failed = await connect_all(Client, port, topic_root, first, count)
    gc.collect()
    print("READY %d %d %d" % (len(clients), failed, gc.mem_alloc() if MICROPYTHON else 0))
    line = sys.stdin.readline().split()  # blocks the loop: nothing needs serving meanwhile
    seconds, delay_ms = int(line[1]), int(line[2])
    stats = {"sent": 0, "errors": 0, "gave_up": 0, "acked_by_node": {}}
    lat = []
    t0_ms = ticks_ms() + delay_ms  # ticks_add is not needed: the Unix port's ticks do not wrap in practice
    t0_us = ticks_us() + delay_ms * 1000
    await asyncio.gather(*[node(n, c, ("%s/%d" % (topic_root, n)).encode(), size, total, seconds, t0_ms, t0_us,
                                stats, lat) for n, c in clients])
    stats["lat_us"] = lat
    print("DONE " + json.dumps(stats))


asyncio.run(main(sys.argv))
