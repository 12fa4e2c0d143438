# Runs first at every boot. Kept minimal: a mistake here is the one thing USB cannot get past.
# Safe mode: hold the board's safe-mode pin (boards/<board>.json "safe_mode_pin") low and a
# /safemode file is created; main.py then leaves the app off until it is deleted
# (`mpremote rm :safemode`). On ESP32 boards that pin is the BOOT button, a strapping pin: held
# at the reset itself it starts the ROM bootloader instead of MicroPython. So after a power-on
# (which is what the EN/RESET button gives on an ESP32) the pin is watched for WINDOW_MS: press
# reset, release it, then hold BOOT. After any other reset (a deep-sleep wake above all, which
# must stay short) it is read once, which suits the Pico W's jumper from the pin to GND.
WINDOW_MS = 2000


def _safe_mode_pin():
    import json

    with open("/config.json") as f:
        board = json.load(f).get("board")
    with open("/boards/%s.json" % board) as f:
        return json.load(f).get("safe_mode_pin")


try:
    import machine
    from time import sleep_ms

    pin = _safe_mode_pin()
    if pin is not None:
        level = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value
        reads = 1
        if machine.reset_cause() == machine.PWRON_RESET:
            print("boot: hold pin %d low now for safe mode (%d s)" % (pin, WINDOW_MS // 1000))
            reads = WINDOW_MS // 20
        for i in range(reads):
            if level() == 0:
                open("/safemode", "w").close()
                print("boot: safe-mode pin %d is low: /safemode created" % pin)
                break
            if i + 1 < reads:
                sleep_ms(20)
except Exception as e:  # no config yet, no such pin, or no machine.Pin (the Unix port)
    print("boot: safe-mode pin not checked:", e)
del _safe_mode_pin
