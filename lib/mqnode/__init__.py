"""mqnode: the sensor-node runtime that firmware/main.py starts."""
import sys

VERSION = "0.1.0"


def forget(name):
    """Let the heap reclaim mqnode.<name>, a module needed only for a moment (boot, announce).

    `from . import name` keeps the module in sys.modules and as an attribute of this package:
    both references must go, or the module and its functions stay on the heap.
    """
    sys.modules.pop("mqnode." + name, None)
    if name in globals():
        del globals()[name]
