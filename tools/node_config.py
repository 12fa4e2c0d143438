"""A node's config.json and secrets.json on the host: built, checked and read with the node's own
rules, lib/mqnode/config.py, loaded from the checkout (so a value the node would refuse at boot
is refused here first, with the node's own message, and the rules live in one place).
"""
from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional, Tuple

from mqnode_tools.paths import LIB

_schema: Optional[ModuleType] = None


def schema() -> ModuleType:
    """lib/mqnode/config.py as a module of its own (not the board package `mqnode`)."""
    global _schema
    if _schema is None:
        spec = importlib.util.spec_from_file_location("mqnode_board_config", LIB / "mqnode" / "config.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _schema = module
    return _schema


def config_error() -> type:
    return schema().ConfigError


def check(config: Dict[str, Any], secrets: Dict[str, Any]) -> Dict[str, Any]:
    """The node's settings (flat: {"broker.host": ...}) from these two objects, exactly as the node
    would read them from /config.json and /secrets.json; raises ConfigError otherwise."""
    config_text, secrets_text = dump(config), dump(secrets)
    with tempfile.TemporaryDirectory(prefix="mqnode-config-") as tmp:
        (Path(tmp) / "config.json").write_text(config_text)
        (Path(tmp) / "secrets.json").write_text(secrets_text)
        return schema().load(tmp + "/config.json", tmp + "/secrets.json")


def check_files(config_path: Path, secrets_path: Optional[Path]) -> Dict[str, Any]:
    """The same for files given on the command line; errors name the user's files."""
    return schema().load(str(config_path), str(secrets_path) if secrets_path else None)


def dump(data: Dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def split_broker(text: str) -> Tuple[str, Optional[int]]:
    """'host[:port]' -> (host, port or None). The port's range is the schema's to judge."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, None
    if not port.isdigit():
        raise ValueError("broker %r: the port must be a number" % text)
    return host, int(port)
