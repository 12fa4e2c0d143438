"""A ROMFS image (tools/romfs.py) mounted on the Unix port as firmware with ROMFS mounts its
partition: at /rom, with /rom and /rom/lib appended to sys.path, .mpy files executed in place.

The Unix port has no flash, so the image is read into one heap block first; whoever measures
makes that block before its baseline, or gives the heap that many bytes more. The GC's tables grow
with the heap and take back about 1.5% of those bytes, so what runs gets slightly less room than
the same heap without the image would give it: a result is on the safe side.

measure.py imports mount(). Tests run a script through it, the script's modules in the image:

    micropython -X heapsize=N bench/harness/romfs.py IMAGE SCRIPT ARGS...

SCRIPT then runs as the main file: sys.argv[1:] are ARGS, __file__ is SCRIPT, and sys.path[0]
its folder. Runs on boards' rules: no f-strings, no typing.
"""
import sys


def mount(image):
    import os
    import vfs

    buf = bytearray(os.stat(image)[6])
    with open(image, "rb") as f:
        if f.readinto(buf) != len(buf):  # readinto reads on until the buffer is full or the file ends
            raise OSError("%s: shorter than its size" % image)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    sys.path.append("/rom")
    sys.path.append("/rom/lib")


def _run(image, script):
    mount(image)
    del sys.argv[0:2]
    sys.path[0] = script.rsplit("/", 1)[0] if "/" in script else ""
    with open(script) as f:
        code = compile(f.read(), script, "exec")
    exec(code, {"__name__": "__main__", "__file__": script})


if __name__ == "__main__":
    _run(sys.argv[1], sys.argv[2])
