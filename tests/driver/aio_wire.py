# The asyncio driver's wire format, shared by the request loop (aio_driver.py) and the
# scenarios that stop at a checkpoint. JSON lines; bytes travel as {"b": "<hex>"} both ways.
#
# MicroPython 1.22+ and CPython 3.9+: only binascii, json, sys.
import binascii
import json
import sys


def encode(value):
    """JSON-ready value. Lists and dicts are converted in place: a result is encoded once, then
    dropped, and on a 64 KB heap a copy of a long list may find no contiguous block."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": binascii.hexlify(bytes(value)).decode()}
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        for i in range(len(value)):
            value[i] = encode(value[i])
        return value
    if isinstance(value, dict):
        for k in value:
            value[k] = encode(value[k])
        return value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def decode(value):
    if isinstance(value, dict):
        if len(value) == 1 and "b" in value:
            return binascii.unhexlify(value["b"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def write_line(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


def pause(label):
    """A checkpoint: tell the host, then block (event loop included) until it says go.

    Blocking the loop is the point: nothing the client does can slip in between the host's fault
    and the next line of the scenario."""
    write_line({"n": label})
    line = sys.stdin.readline()
    if not line:
        raise OSError("host gone at checkpoint " + label)
    go = json.loads(line).get("go")
    if go != label:
        raise ValueError("host answered %r at checkpoint %r" % (go, label))
