"""Can this client send (or receive) a payload of SIZE bytes? Run under `-X heapsize=64k`.

    micropython -X heapsize=64k -m probe CLIENT send PORT CLIENT_ID SIZE
    micropython -X heapsize=64k -m probe CLIENT recv PORT CLIENT_ID SIZE TOPIC

send: connect, build a SIZE-byte payload, publish it with QoS 1 (the PUBACK proves the broker
took it whole). recv: connect, subscribe to TOPIC, where the host left a retained SIZE-byte
message, and wait for it. Prints `PROBE OK` on success; a MemoryError, any other exception, a
wrong length or a timeout means this size is too large for the client in this heap.
"""
import sys

from clients import adapter

WAIT_MS = 2000
TOPIC = b"bench/probe"


def run(a, job, port, cid, size, topic):
    c = a.make(cid, port, True)
    a.connect(c)
    if job == "send":
        # umqtt returns None and raises on a failure; mqnode returns False (it keeps the message
        # to resend after a reconnect), which is a failure here too.
        ok = c.publish(TOPIC, bytes(size), False, 1) is not False
    else:
        got = a.receive(c, topic, WAIT_MS)
        ok = got is not None and len(got) == size
    a.disconnect(c)
    return ok


async def arun(a, job, port, cid, size, topic):
    c = a.make(cid, port, True)
    await a.connect(c)
    if job == "send":
        ok = await a.publisher(c)(TOPIC, bytes(size), 1) is not False
    else:
        got = await a.receive(c, topic, WAIT_MS)
        ok = got is not None and len(got) == size
    await a.disconnect(c)
    return ok


def main(argv):
    a = adapter(argv[1])
    job, port, cid, size = argv[2], int(argv[3]), argv[4], int(argv[5])
    topic = argv[6].encode() if len(argv) > 6 else TOPIC
    a.prepare()
    a.load()
    if a.is_async:
        import asyncio

        ok = asyncio.run(arun(a, job, port, cid, size, topic))
    else:
        ok = run(a, job, port, cid, size, topic)
    print("PROBE OK" if ok else "PROBE FAIL")


main(sys.argv)
