# Scenarios that fit, with the client, in a 64 KB MicroPython heap: one client each and none of
# aio_kit's helpers (aio_driver.py loads this module instead of aio_scenarios.py when a request
# says {"from": "aio_small"}). Each returns plain data; nothing is asserted here.
#
# MicroPython 1.22+ and CPython 3.9+: only asyncio.
import asyncio

from mqtt.aio import Client

DELIVERY_S = 5


async def echo(server, port, prefix, topic, count, qos=1):
    """One client subscribes to `topic` and publishes "0".."count-1" to it at `qos`, reading its
    own message back after each publish. Returns the sequence numbers received, in order, and
    the publishes whose publish() did not return True."""
    c = Client(server, port, client_id=prefix + "-echo", incoming=4)
    received = [0] * count  # whole, up front: a list grown later may find no contiguous block
    n = 0
    not_true = 0
    await c.connect()
    try:
        await c.subscribe(topic, qos)
        it = c.messages.__aiter__()
        for i in range(count):
            if await c.publish(topic, str(i), qos=qos) is not True:
                not_true += 1
            try:
                m = await asyncio.wait_for(it.__anext__(), DELIVERY_S)
            except asyncio.TimeoutError:
                break
            received[n] = int(m.payload)
            n += 1
    finally:
        await c.disconnect()
    del received[n:]
    return {"received": received, "not_true": not_true}
