"""Boot sequence: config, board, hardware, node. Any configuration problem ends here with one
clear line and the board left at the REPL, reachable over USB: never a boot loop."""
import asyncio
import gc
import sys

from .node import Node, log


def start(config_path, secrets_path, boards_dir):
    from . import board as boards
    from . import config

    try:
        cfg = config.load(config_path, secrets_path)
        spec = boards.load(cfg["board"], boards_dir)
        hw = boards.hardware_for(spec)
        directory = config_path.rsplit("/", 1)[0] if "/" in config_path else "."
        hw.configure(_seed(cfg["node_id"] or config_path), directory)
        node = Node(cfg, spec, hw)
    except (config.ConfigError, ValueError, KeyError, TypeError) as e:
        log("configuration error:", e)
        log("safe mode: fix the file over USB and reset; the node is not running")
        return None
    # The schema and the board loader are needed once, at boot: give their RAM back.
    del config, boards, spec
    for name in ("mqnode.config", "mqnode.board"):
        sys.modules.pop(name, None)
    gc.collect()
    log("%s on %s, broker %s:%d" % (node.node_id, node.board_name, cfg["broker.host"], cfg["broker.port"]))
    asyncio.run(node.run_battery() if cfg["battery"] else node.run())
    return node


def _seed(text):
    h = 5381
    for ch in text:
        h = (h * 33 + ord(ch)) & 0x7FFFFFFF
    return h
