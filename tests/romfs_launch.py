# Runs a MicroPython script with its modules in a ROMFS image, as a board with ROMFS firmware holds
# them: mounted at /rom, /rom/lib on sys.path, the .mpy files executed in place.
#
#     micropython -X heapsize=N tests/romfs_launch.py IMAGE SCRIPT ARGS...
#
# The Unix port has no flash, so the image goes into one heap block, read before anything else
# runs; a test gives the heap that many bytes more than the board it stands for. The GC's tables
# grow with the heap and take a little of that back, so the script gets slightly less room than
# a board would: a result here is on the safe side. SCRIPT then runs as the main file: its
# sys.argv[1:] are ARGS and its __file__ is SCRIPT.
import sys
import vfs

_, image, script = sys.argv[0], sys.argv[1], sys.argv[2]
del sys.argv[0:2]
with open(image, "rb") as f:
    buf = bytearray(f.seek(0, 2))
    f.seek(0)
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = f.readinto(view[got:])
        if not n:
            raise OSError("%s: ended at byte %d of %d" % (image, got, len(buf)))
        got += n
vfs.mount(vfs.VfsRom(buf), "/rom")
sys.path.insert(0, "/rom/lib")
del buf, view, f, got, n, image
with open(script) as f:
    source = f.read()
code = compile(source, script, "exec")
del source, f
exec(code, {"__name__": "__main__", "__file__": script})
