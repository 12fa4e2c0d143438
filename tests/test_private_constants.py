"""Modules keep private copies of packet.py's packet types (`_PUBACK = const(4)`): MicroPython
inlines only a module's own constants, and imported ones cost RAM and a heap tuple per packet in
`kind in (PUBACK, ...)`. Each copy must equal the name it copies; this test is that link.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from runtime import LIB

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from mqtt import packet, session  # noqa: E402

COPIES = re.compile(r"^_([A-Z][A-Z0-9_]*) = const\((\d+)\)", re.M)
ORIGINALS = {name: getattr(module, name) for module in (packet, session) for name in dir(module)
             if name.isupper() and isinstance(getattr(module, name), int)}
MODULES = sorted((LIB / "mqtt").glob("*.py"))


def copies(path: Path) -> dict:
    return {name: int(value) for name, value in COPIES.findall(path.read_text()) if name in ORIGINALS}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_every_private_copy_equals_the_constant_it_copies(path: Path) -> None:
    for name, value in copies(path).items():
        assert value == ORIGINALS[name], "%s: _%s = %d, but %s is %d" % (path.name, name, value, name, ORIGINALS[name])


def test_the_drivers_and_the_session_do_keep_copies() -> None:
    """Guards the check above against matching nothing (a renamed pattern would pass silently)."""
    for name in ("session.py", "aio.py", "client.py"):
        assert {"PUBLISH", "PUBACK"} <= set(copies(LIB / "mqtt" / name)), name
