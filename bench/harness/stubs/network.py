"""Stand-in for a board's `network` module on the Unix port, for mqtt_as only: a WLAN that is
always up, so mqtt_as's WiFi handling passes straight through to its MQTT code."""
STA_IF = 0
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010


class WLAN:
    def __init__(self, interface=STA_IF):
        pass

    def active(self, *state):
        return True

    def connect(self, *args, **kwargs):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return True

    def status(self, *args):
        return STAT_GOT_IP

    def config(self, *args, **kwargs):
        pass
