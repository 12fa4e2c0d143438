"""mqnode: the sensor-node runtime that firmware/main.py starts."""
VERSION = "0.1.0"
