"""Stand-in for a board's `machine.unique_id` on the Unix port (mqtt_as calls it at import).
A file on the path takes precedence over the Unix port's own small `machine` module."""


def unique_id():
    return b"\x62\x65\x6e\x63\x68\x31"
