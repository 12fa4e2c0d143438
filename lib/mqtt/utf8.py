"""The full UTF-8 well-formedness check (RFC 3629) that MQTT strings must pass [MQTT-1.5.3-1].

packet.well_formed answers for ASCII itself and loads this module only for the first string with
a byte above 0x7F, so a node whose topics are ASCII never pays for it.
"""
from .compat import tidy_heap


def well_formed_utf8(b):
    """Whether b is well-formed UTF-8: no overlong forms, surrogates or code points above
    U+10FFFF. bytes.decode() is not enough: MicroPython's accepts all three."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            k, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            # E0 needs A0.. (else overlong); ED stops at 9F (else a surrogate)
            k, lo, hi = 2, 0xA0 if c == 0xE0 else 0x80, 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            # F0 needs 90.. (else overlong); F4 stops at 8F (else above U+10FFFF)
            k, lo, hi = 3, 0x90 if c == 0xF0 else 0x80, 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + k >= n:
            return False
        if not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True


tidy_heap()  # compat.tidy_heap: the garbage this import left, collected on a board
