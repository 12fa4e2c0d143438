"""A board description (boards/<name>.json): its chip and the parts wired to its pins.

The same JSON is read by the host tools (flash offsets, pin maps) and by the node (which drivers
to start on which pins), so there is one place where a board's pins are defined.
"""
import json


def load(name, directory):
    path = "%s/%s.json" % (directory, name)
    try:
        with open(path) as f:
            board = json.load(f)
    except OSError:
        raise ValueError("board %r: no file %s" % (name, path))
    except ValueError:
        raise ValueError("board %r: %s is not valid JSON" % (name, path))
    if not isinstance(board, dict):
        raise ValueError("%s: expected a JSON object" % path)
    for key in ("name", "chip"):
        if not isinstance(board.get(key), str):
            raise ValueError("%s: %s: required, a string" % (path, key))
    from .config import ID_RULE, valid_id  # loaded beside this module at boot, released with it

    parts = []
    for key in ("sensors", "switches"):
        listed = board.get(key, [])
        if not isinstance(listed, list):
            raise ValueError("%s: %s: expected a list" % (path, key))
        parts += listed
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if not (isinstance(name, str) and valid_id(name)):
            # a topic level of its state topic, and Home Assistant's object id
            raise ValueError("%s: part %r: its name must be %s" % (path, name, ID_RULE))
    return board


def hardware_for(board):
    """The hardware layer: the simulated one for the 'sim' chip, machine/network otherwise."""
    if board["chip"] == "sim":
        from . import hardware_sim as hw
    else:
        from . import hardware as hw
    return hw
