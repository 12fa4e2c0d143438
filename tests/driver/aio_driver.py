# Runs lib/mqtt's asyncio Client for a test, under CPython or MicroPython. The blocking driver
# (mqtt_driver.py) is called method by method; the asyncio client cannot be, since its tasks
# live in one event loop. So a test names a scenario: an async function in aio_scenarios.py (or
# aio_small.py) that drives the Client against the broker and returns plain data for the test to
# assert on. tests/aio_process.py is the host side.
#
# Protocol: one JSON object per line (aio_wire.py).
#   request  {"scenario": name, "params": {...}, "bound_s": seconds, "from": module}
#            ("from" defaults to "aio_scenarios")
#   reply    {"r": result} or {"e": class name, "args": [...], "msg": str(e)}
#   pause    {"n": label}: the scenario stopped at a checkpoint (aio_wire.pause) and waits, with
#            its event loop blocked, for the host's line {"go": label}: the host makes its fault
#            (cuts a link, kills this process) at a known point of the scenario.
# Bytes travel as {"b": "<hex>"} both ways. Each request runs in a fresh event loop, bounded by
# bound_s; the driver serves requests until EOF.
#
# Must run on MicroPython 1.22+ and CPython 3.9+: only asyncio, gc, json, sys; no typing, no
# f-strings.
import asyncio
import gc
import json
import sys

from aio_wire import decode, encode, write_line

IS_MICROPYTHON = sys.implementation.name == "micropython"
MAX_REQUESTS = 1000  # bounds the request loop; the host normally ends it with EOF
DEFAULT_BOUND_S = 30
DEFAULT_MODULE = "aio_scenarios"


def print_traceback(e):
    if IS_MICROPYTHON:
        sys.print_exception(e, sys.stderr)
    else:
        sys.excepthook(type(e), e, e.__traceback__)


def scenario(module, name):
    # Imported on first use: a small heap loads only the module its scenarios come from.
    if name.startswith("_"):
        raise ValueError("no scenario %r" % name)
    return getattr(__import__(module), name)


async def bounded(coro, bound_s):
    return await asyncio.wait_for(coro, bound_s)


def run(request):
    f = scenario(request.get("from", DEFAULT_MODULE), request["scenario"])
    params = decode(request.get("params", {}))
    if IS_MICROPYTHON:
        asyncio.new_event_loop()  # drops any task a previous scenario left behind
    return asyncio.run(bounded(f(**params), request.get("bound_s", DEFAULT_BOUND_S)))


def main():
    for _ in range(MAX_REQUESTS):
        line = sys.stdin.readline()
        if not line:
            return  # the host closed stdin or died
        try:
            result = run(json.loads(line))
        except Exception as e:
            print_traceback(e)
            write_line({"e": type(e).__name__, "args": encode(list(e.args)), "msg": str(e)})
        else:
            gc.collect()  # the scenario's garbage, before the reply is built
            write_line({"r": encode(result)})
        gc.collect()


main()
