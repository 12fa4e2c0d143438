# Starts the node from its configuration. On a board: /config.json, /secrets.json, /boards/.
# Simulated: micropython firmware/main.py path/to/config.json (lib/ on MICROPYPATH); secrets.json
# and the safemode flag are looked for next to the config file, boards/ next to firmware/.
import os
import sys


def _paths():
    if len(sys.argv) > 1:
        config = sys.argv[1]
        here = config.rsplit("/", 1)[0] if "/" in config else "."
        firmware = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
        return config, here + "/secrets.json", firmware + "/../boards", here + "/safemode"
    return "/config.json", "/secrets.json", "/boards", "/safemode"


def main():
    config, secrets, boards, safemode = _paths()
    try:
        os.stat(safemode)
        print("mqnode: safe mode (%s exists): the node is not started; delete it and reset" % safemode)
        return
    except OSError:
        pass
    from mqnode import app
    from mqtt.compat import release

    job = app.boot(config, secrets, boards)  # None: a configuration error, already printed
    del app
    release("mqnode.app")  # boot-only code: its RAM goes to the running node
    if job is not None:
        import asyncio

        asyncio.run(job)


main()
