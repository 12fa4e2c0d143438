"""The node's settings: config.json (shareable) and secrets.json (passwords), checked up front.

Every problem becomes one ConfigError line naming the file, the key and what was expected, e.g.
`config.json: broker.port: expected an integer 1..65535, got "x"`, because the person reading it
is looking at a serial console with a board that must not boot-loop.
"""
import json


class ConfigError(ValueError):
    """A ValueError, so the boot code catches it after this module has been forgotten."""


# key: (type, default, check or None). A default of REQUIRED means the key must be present.
REQUIRED = object()
ID_RULE = "1..64 letters, digits, _ or -"


def _port(v):
    return 1 <= v <= 65535


def _name(v):
    # prefixes become topic levels: no wildcards, separators or spaces
    return 0 < len(v) <= 64 and not any(c in v for c in "+#/ \x00")


def valid_id(v):
    # A node id (and a board part's name: board.py) is also a level of Home Assistant's discovery
    # topics, which take only these: with any other character (a dot, an umlaut, a space) the
    # node runs and its entities never appear.
    for c in v:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "_-"):
            return False
    return 0 < len(v) <= 64


def _filled(v):
    # "" would read as "not given" further on: no WiFi to join, a TLS broker not verified
    return len(v) > 0


def _seconds(v):
    # At most a day: a board's ticks_ms() wraps, and time differences past 2**29 ms (6.2 days)
    # come out wrong. Also keeps out JSON's 1e400, which is infinity.
    return 0 < v <= 86400


SCHEMA = {
    "node_id": (str, None, valid_id),  # None: derived from the chip's unique id
    "board": (str, "sim", _name),
    "prefix": (str, "mqnode", _name),
    "broker.host": (str, REQUIRED, _filled),
    "broker.port": (int, None, _port),  # None: 1883, or 8883 with TLS
    "broker.user": (str, None, None),
    "broker.tls": (bool, False, None),
    "broker.ca": (str, None, _filled),  # CA certificate file (DER) to verify the broker with
    "wifi.ssid": (str, None, _filled),  # required on a real board (app.py); the sim joins without
    "telemetry_s": (float, 60, _seconds),  # a number: 0.5 is fine for a simulated node
    "keepalive_s": (int, 30, _port),  # 1..65535, as MQTT's field holds it
    "discovery": (bool, True, None),
    "discovery_prefix": (str, "homeassistant", _name),
    "reboot_after_s": (int, 600, _seconds),  # no broker for this long: reboot
    "battery": (bool, False, None),  # wake, publish, deep sleep
    "sleep_s": (int, 300, _seconds),  # battery mode: time asleep between wakes
    "awake_s": (int, 20, _seconds),  # battery mode: hard budget for one wake
    "store": (str, None, None),  # file for unacknowledged messages, e.g. "/mqtt.dat"
}
SECRETS = {
    "wifi_password": (str, None, None),
    "broker_password": (str, None, None),
}


def load(config_path, secrets_path=None):
    """The settings as a flat dict {"broker.host": ..., "wifi_password": ...}; raises ConfigError."""
    cfg = _check(_read(config_path, True), SCHEMA, _base(config_path))
    if secrets_path:
        cfg.update(_check(_read(secrets_path, False), SECRETS, _base(secrets_path)))
    else:
        cfg.update({k: None for k in SECRETS})
    if cfg["broker.port"] is None:
        cfg["broker.port"] = 8883 if cfg["broker.tls"] else 1883
    if cfg["broker.ca"] and not cfg["broker.tls"]:  # a CA asks for a verified link: not plain MQTT
        raise ConfigError("%s: broker.ca: needs broker.tls true" % _base(config_path))
    if cfg["store"] and cfg["battery"]:  # both would keep an unconfirmed reading: it went out twice
        raise ConfigError("%s: store: not with battery (a battery node keeps its readings in RTC memory)"
                          % _base(config_path))
    if cfg["broker_password"] is not None and cfg["broker.user"] is None:  # MQTT allows no such CONNECT
        raise ConfigError("%s: broker_password: needs broker.user in %s" % (_base(secrets_path), _base(config_path)))
    return cfg


def _base(path):
    return path.split("/")[-1]


def _read(path, required):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        if required:
            raise ConfigError("%s: missing (expected a JSON file at %s)" % (_base(path), path))
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError("%s: not valid JSON" % _base(path))
    if not isinstance(data, dict):
        raise ConfigError("%s: expected a JSON object at the top" % _base(path))
    return data


def _check(data, schema, fname):
    out = {}
    for key, (typ, default, ok) in schema.items():
        parts = key.split(".")
        v = data
        for i, p in enumerate(parts):
            if v is _MISSING or v is None:
                break
            if not isinstance(v, dict):
                raise ConfigError("%s: %s: expected an object" % (fname, ".".join(parts[:i])))
            v = v.get(p, _MISSING)
        if v is _MISSING or v is None:
            if default is REQUIRED:
                raise ConfigError("%s: %s: required, missing" % (fname, key))
            out[key] = default
            continue
        # bool is an int subclass: reject True for an int key and 1 for a bool key. float means
        # any number, so 60 is as good as 60.0.
        t = type(v)
        if (t is not typ and not (typ is float and t is int)) or (ok and not ok(v)):
            raise ConfigError("%s: %s: expected %s, got %s" % (fname, key, _describe(typ, ok), json.dumps(v)))
        out[key] = v
    _unknown(data, "", schema, fname)
    return out


def _unknown(data, path, schema, fname):
    """A misspelt key would silently take its default: name it instead."""
    for k, v in data.items():
        key = path + k
        if key in schema:
            continue
        if isinstance(v, dict) and any(s.startswith(key + ".") for s in schema):
            _unknown(v, key + ".", schema, fname)
        else:
            # Say what fits there: the known keys at this level (a near miss is among them).
            known = []
            for name in schema:
                if name.startswith(path):
                    top = name[len(path) :].split(".")[0]
                    if top not in known:
                        known.append(top)
            raise ConfigError("%s: %s: unknown key, expected one of %s" % (fname, key, ", ".join(known)))


_MISSING = object()


def _describe(typ, ok):
    if typ is int:
        return "an integer 1..65535" if ok is _port else "an integer 1..86400"
    if typ is float:
        return "a number above 0, at most 86400"
    if typ is bool:
        return "true or false"
    if ok is _name:
        return "a name of 1..64 characters without + # / or spaces"
    if ok is valid_id:
        return ID_RULE
    if ok is _filled:
        return "a non-empty string"
    return "a string"
