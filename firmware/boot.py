# Runs first at every boot. Kept minimal: a mistake here is the one thing USB cannot get past.
# Safe mode: hold the board's safe-mode pin (boards/<board>.json "safe_mode_pin": the BOOT button
# on ESP32 boards, a jumper to GND on the Pico W) low while resetting, and a /safemode file is
# created; main.py then leaves the app off until it is deleted (`mpremote rm :safemode`).
def _safe_mode_pin():
    import json

    with open("/config.json") as f:
        board = json.load(f).get("board")
    with open("/boards/%s.json" % board) as f:
        return json.load(f).get("safe_mode_pin")


try:
    import machine

    pin = _safe_mode_pin()
    if pin is not None and machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0:
        open("/safemode", "w").close()
except Exception as e:  # no config yet, no such pin, or no machine.Pin (the Unix port)
    print("boot: safe-mode pin not checked:", e)
del _safe_mode_pin
