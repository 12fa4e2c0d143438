"""mqnode: the sensor-node runtime that firmware/main.py starts.

Modules needed only for a moment (the config schema and board loader at boot, the discovery configs
while announcing) are let go afterwards with mqtt.compat.release, so a board's heap gets them back.
"""
VERSION = "0.1.0"
