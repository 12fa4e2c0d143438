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
_INT = "an integer"


def _port(v):
    return 1 <= v <= 65535


def _positive(v):
    return v > 0


def _name(v):
    # node ids and prefixes become topic levels: no wildcards, separators or spaces
    return 0 < len(v) <= 64 and not any(c in v for c in "+#/ \x00")


SCHEMA = {
    "node_id": (str, None, _name),  # None: derived from the chip's unique id
    "board": (str, "sim", _name),
    "prefix": (str, "mqnode", _name),
    "broker.host": (str, REQUIRED, None),
    "broker.port": (int, None, _port),  # None: 1883, or 8883 with TLS
    "broker.user": (str, None, None),
    "broker.tls": (bool, False, None),
    "broker.ca": (str, None, None),  # CA certificate file (DER) to verify the broker with
    "wifi.ssid": (str, None, None),  # None: no WiFi to join (a wired board; the sim joins anyway)
    "telemetry_s": (float, 60, _positive),  # a number: 0.5 is fine for a simulated node
    "keepalive_s": (int, 30, _positive),
    "discovery": (bool, True, None),
    "discovery_prefix": (str, "homeassistant", _name),
    "reboot_after_s": (int, 600, _positive),  # no broker for this long: reboot
    "battery": (bool, False, None),  # wake, publish, deep sleep
    "sleep_s": (int, 300, _positive),  # battery mode: time asleep between wakes
    "awake_s": (int, 20, _positive),  # battery mode: hard budget for one wake
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
        return {_port: "an integer 1..65535", _positive: "a positive integer"}.get(ok, _INT)
    if typ is float:
        return "a positive number"
    if typ is bool:
        return "true or false"
    if ok is _name:
        return "a name of 1..64 characters without + # / or spaces"
    return "a string"
