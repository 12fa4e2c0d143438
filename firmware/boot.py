# Runs first at every boot. Kept minimal: a mistake here is the one thing USB cannot get past.
# Safe mode: hold the board's safe-mode pin (the BOOT button, GPIO0, on ESP32 boards) low while
# resetting, and a /safemode file is created; main.py then leaves the app off until it is deleted
# (`mpremote rm :safemode`).
try:
    import machine

    if machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0:
        open("/safemode", "w").close()
except Exception as e:  # a port without machine.Pin (the Unix port) has no button to hold
    print("boot: no safe-mode pin:", e)
