# Freeze mqnode into a custom MicroPython image: frozen bytecode, strings and names stay in flash,
# so the heap holds only the objects the code makes (README, "RAM and large messages"). In your
# board's manifest.py:
#     include("/path/to/mqnode/firmware/manifest.py")
# then build MicroPython as usual (make BOARD=... FROZEN_MANIFEST=...). config.json, secrets.json
# and boards/<board>.json stay on the filesystem (mqnode deploy writes them).
# The simulation (hardware_sim.py, sim_parts.py), the broker's half of the codec (broker_codec.py)
# and CPython's stand-ins (cpython.py) are frozen too but never imported on a board: they cost
# flash, not RAM.
package("mqtt", base_path="../lib")
package("mqnode", base_path="../lib")
module("boot.py")  # MicroPython runs a frozen boot.py and main.py as it runs the files
module("main.py")
