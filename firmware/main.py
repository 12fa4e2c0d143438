# Starts the node from its configuration. On a board: /config.json, /secrets.json, /boards/.
# Simulated: micropython firmware/main.py path/to/config.json (lib/ on MICROPYPATH); secrets.json
# and the safemode flag are looked for next to the config file, boards/ next to firmware/.
# Kept this small because it stays in RAM while the node runs: the boot code is in mqnode.app,
# which is released before the node starts.
import sys

from mqnode import app

if len(sys.argv) > 1:  # simulated: micropython firmware/main.py path/to/config.json
    job = app.start(sys.argv[1], __file__)
else:  # a board, where main.py has no __file__
    job = app.start()
# job is None after safe mode or a configuration error, both already printed
del app
from mqtt.compat import release

release("mqnode.app")
if job is not None:
    import asyncio

    asyncio.run(job)
