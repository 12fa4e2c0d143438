"""Boot sequence: config, board, hardware, node. Any configuration problem ends here with one
clear line and the board left at the REPL, reachable over USB: never a boot loop.

The order is about RAM. The node and the MQTT client (most of the code, all of it kept) are
imported first; then the schema and the board loader (mqnode.config, mqnode.board), needed only
here, run and are released. Their ~6 KB then come back as one free region above the kept code
rather than as holes between its pieces, and the node's largest allocations (the ~300-byte
discovery payloads) need such a region: measured on the 64-bit Unix port, the smallest heap the
simulated node runs in drops from about 88k to 84k with this order. main.py releases this module
too, before it runs the coroutine start() returns.
"""
import gc

from mqtt.compat import release


def start(config=None, main_file=None):
    """boot() with the board's paths, or a simulated node's (its config file and firmware/main.py),
    unless a safemode file says to leave the app off."""
    if config:
        here = config.rsplit("/", 1)[0] if "/" in config else "."
        firmware = main_file.rsplit("/", 1)[0] if "/" in main_file else "."
        secrets, boards, safemode = here + "/secrets.json", firmware + "/../boards", here + "/safemode"
    else:
        config, secrets, boards, safemode = "/config.json", "/secrets.json", "/boards", "/safemode"
    try:
        import os

        os.stat(safemode)
        print("mqnode: safe mode (%s exists): the node is not started; delete it and reset" % safemode)
        return None
    except OSError:
        pass
    return boot(config, secrets, boards)


def boot(config_path, secrets_path, boards_dir):
    """The coroutine that runs the node (always on, or one battery wake), or None after printing
    why the configuration cannot be used."""
    from mqtt.aio import Client

    from .node import Node

    try:
        cfg, spec, hw = _settings(config_path, secrets_path, boards_dir)
        node = Node(cfg, spec["name"], _node_id(cfg, hw), hw)
        try:
            _add_parts(node, spec, hw)
        except (ValueError, KeyError, TypeError, AttributeError, ImportError) as e:
            raise ValueError("%s/%s.json: %s" % (boards_dir, cfg["board"], e))
        node.client = _client(Client, node, cfg)
    except (ValueError, KeyError, TypeError, AttributeError, ImportError) as e:  # ConfigError is a ValueError
        print("mqnode: configuration error:", e)
        print("mqnode: safe mode: fix the file over USB and reset; the node is not running")
        return None
    del spec  # the board file's contents: the drivers took what they need
    gc.collect()
    print("mqnode: %s on %s, broker %s:%d" % (node.node_id, node.board_name, cfg["broker.host"], cfg["broker.port"]))
    if cfg["battery"]:
        from .battery import run

        return run(node)
    return node.run()


def _settings(config_path, secrets_path, boards_dir):
    """(settings, board description, hardware module), read by modules released afterwards."""
    from . import board, config

    try:
        cfg = config.load(config_path, secrets_path)
        spec = board.load(cfg["board"], boards_dir)
        if not cfg["wifi.ssid"] and spec["chip"] != "sim":
            # Every board here reaches the broker over WiFi only: without it the node would log
            # connection errors and reboot every reboot_after_s, never saying why.
            raise ValueError("config.json: wifi.ssid: required on %s (%s): its only network is WiFi"
                             % (cfg["board"], spec["chip"]))
        hw = board.hardware_for(spec)
    finally:
        release("mqnode.config")
        release("mqnode.board")
    directory = config_path.rsplit("/", 1)[0] if "/" in config_path else "."
    hw.configure(_seed(cfg["node_id"] or config_path), directory)
    return cfg, spec, hw


def _node_id(cfg, hw):
    """config.json's node_id, or one made from the chip's unique id."""
    if cfg["node_id"]:
        return cfg["node_id"]
    from binascii import hexlify

    return "mqnode-" + hexlify(hw.unique_id()).decode()


def _add_parts(node, board, hw):
    """The board file's sensors and switches, made by their drivers (only the modules of the drivers
    it names are loaded) and sorted onto the node. Here, not in Node, as this code runs once."""
    from . import drivers

    groups = {"sensor": node.sensors, "binary_sensor": node.binaries, "switch": node.switches}
    try:
        for spec in board.get("sensors", []) + board.get("switches", []):
            d = drivers.make(spec, hw)
            groups[d.component].append(d)
    finally:
        release("mqnode.drivers")


def _client(Client, node, cfg):
    """The node's MQTT client, made here so that this code, run once, does not stay in RAM.
    A battery node's wake makes one connection, so it does not reconnect."""
    return Client(
        cfg["broker.host"], cfg["broker.port"], client_id=node.node_id, user=cfg["broker.user"],
        password=cfg["broker_password"], keepalive=cfg["keepalive_s"], ssl=_tls(cfg),
        clean_session=False,  # commands sent while the node was away wait for it
        will=(node.status_topic, "offline", 1, True), reconnect=not cfg["battery"], store=_store(cfg["store"]),
    )


def _store(path):
    """The message store's file, if its folder is there: with none, every QoS 1 publish would fail
    writing it, and the node would run mute. The folder is looked at, not written to: a battery
    node boots at every wake, and flash wears."""
    if path:
        import os

        folder = path.rsplit("/", 1)[0] if "/" in path else "."
        try:
            os.stat(folder or "/")
        except OSError:
            raise ValueError("config.json: store: no folder %s for %s" % (folder, path))
    return path


def _tls(cfg):
    if not cfg["broker.tls"]:
        return None
    ca = None
    if cfg["broker.ca"]:
        try:
            with open(cfg["broker.ca"], "rb") as f:
                ca = f.read()
        except OSError:  # a configuration error like any other: one line, no reboot
            raise ValueError("config.json: broker.ca: no file %s" % cfg["broker.ca"])
    import ssl  # after the file: a firmware without ssl then still names a missing CA first

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _seed(text):
    h = 5381
    for ch in text:
        h = (h * 33 + ord(ch)) & 0x7FFFFFFF
    return h
